"""``--concurrently-rerun-alone``: a second chance, alone, for tests that
failed while running concurrently.

A suite not written with concurrency in mind has tests that share state
without saying so. With the option, a concurrent test whose setup, call or
teardown fails is not reported yet: once every test has run, it runs again
with nothing else in flight, and only that run is reported, through the
usual hooks, so ``--junitxml``, ``--lf`` and the counts see one outcome per
test. The end of the run lists what each such test failed with when it ran
concurrently, and whether it passed alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

__all__ = ["RerunLedger"]

RERUN_ADVICE = (
    "failed when run concurrently, passed alone: mark it isolated or fix the state it "
    "shares with other tests"
)


@dataclass
class RerunLedger:
    """Which tests failed concurrently, and how their second run went.

    :param enabled: whether failed tests run again alone.
    """

    enabled: bool
    #: node id -> the first line of what it failed with, concurrently.
    failed_concurrently: dict[str, str] = field(default_factory=dict)
    #: node ids whose run alone failed too.
    failed_alone: set[str] = field(default_factory=set)
    _rerunning: set[str] = field(default_factory=set)

    def keep(self, item: pytest.Item, reports: list[pytest.TestReport]) -> bool:
        """Hold the failed concurrent run of ``item`` back, to run it again
        alone; False (report it now) when reruns are off."""
        if not self.enabled:
            return False
        failure = next(report for report in reports if report.failed)
        self.failed_concurrently[item.nodeid] = _first_line(failure)
        return True

    def rerunning(self, item: pytest.Item) -> None:
        """Note that ``item`` is about to run again, alone."""
        self._rerunning.add(item.nodeid)

    def record(self, report: pytest.TestReport) -> None:
        """Note a report of a test's run alone (``pytest_runtest_logreport``)."""
        if report.failed and report.nodeid in self._rerunning:
            self.failed_alone.add(report.nodeid)

    def summary(self, reporter: pytest.TerminalReporter) -> None:
        """Write the end-of-run section on the tests that ran again alone."""
        if not self.failed_concurrently:
            return
        passed = [n for n in self.failed_concurrently if n not in self.failed_alone]
        failed = [n for n in self.failed_concurrently if n in self.failed_alone]
        if passed:
            reporter.write_sep("=", "failed when run concurrently, passed alone", yellow=True)
            for nodeid in passed:
                reporter.write_line(f"{nodeid}: {self.failed_concurrently[nodeid]}")
            reporter.write_line(
                "Each of these tests failed when run concurrently and passed alone: "
                "mark it @pytest.mark.isolated, or fix the state it shares with other tests."
            )
        if failed:
            reporter.write_sep("=", "failed when run concurrently, and alone", red=True)
            for nodeid in failed:
                reporter.write_line(f"{nodeid}: {self.failed_concurrently[nodeid]}")


def _first_line(report: pytest.TestReport) -> str:
    text = report.longreprtext.strip()
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    chosen = lines[0][1:].strip() if lines else (text.splitlines()[-1] if text else "")
    return f"{report.when}: {chosen}"
