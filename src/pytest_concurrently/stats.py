"""What a run achieved, test by test: the records behind the end-of-run
line and the timeline.

Every test that runs in a concurrent session gets one :class:`TestRecord`:
when it was ready to start, when it started and ended, its phases as pytest
reported them, what it waited for, what it held, and how it ended. The
end-of-run line sums the records, and the timeline draws them, so the two
cannot disagree.

Times are ``time.perf_counter`` readings; pytest's reports carry wall-clock
times (``time.time``), which :meth:`RunStats.reported` moves onto the same
clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

__all__ = ["FixtureRecord", "RunStats", "StallRecord", "TestRecord"]


@dataclass(slots=True, eq=False)
class TestRecord:
    """One test's run, as the timeline draws it."""

    nodeid: str
    #: Whether it ran alongside other tests (False: alone).
    concurrent: bool
    started: float
    #: When it could have started but for other tests, and what it waited
    #: for; None if it started as soon as it could.
    queued: tuple[float, str] | None = None
    ended: float | None = None
    #: Each phase's (start, stop), from pytest's reports; None if it did
    #: not reach it. (Three fields rather than a dict: one test, one object.)
    setup: tuple[float, float] | None = None
    call: tuple[float, float] | None = None
    teardown: tuple[float, float] | None = None
    #: (start, stop, what) of each wait for another test while in flight.
    waits: tuple[tuple[float, float, str], ...] = ()
    #: What it held, in words (``resource 'db'``, ``group 'payments'``).
    holds: tuple[str, ...] = ()
    #: Seconds it stood still while another test blocked the loop.
    stalled: float = 0.0
    #: How pytest counted it: passed, failed, error, skipped, xfailed,
    #: xpassed, interrupted, or rerun (pytest-rerunfailures ran it again).
    outcome: str | None = None
    #: The first line of its failure, if it failed.
    message: str | None = None

    @property
    def reported(self) -> bool:
        """Whether pytest reported an outcome for it (a test in flight at
        Ctrl-C gets none)."""
        return self.outcome is not None

    @property
    def own_seconds(self) -> float:
        """Its test time: from the start of its setup to the end of its
        teardown, less the time it stood still for other tests (locks it
        waited for, the loop blocked by another test)."""
        if self.ended is None:
            return 0.0
        waited = sum(stop - start for start, stop, _ in self.waits)
        return max(self.ended - self.started - waited - self.stalled, 0.0)


@dataclass(slots=True, eq=False)
class FixtureRecord:
    """One instance of a shared (wider than function scoped) fixture."""

    name: str
    scope: str
    #: The instance's parameter id, if the fixture is parametrized.
    param: str | None
    setup: tuple[float, float | None]
    teardown: tuple[float, float | None] | None = None

    def tearing_down(self) -> None:
        """Its teardown begins now."""
        self.teardown = (time.perf_counter(), None)

    def torn_down(self) -> None:
        """Its teardown has ended."""
        now = time.perf_counter()
        self.teardown = (self.teardown[0] if self.teardown else now, now)


@dataclass(slots=True, eq=False)
class StallRecord:
    """A time the loop stood still, and who held it."""

    began: float
    seconds: float
    nodeid: str | None
    where: str | None


def _outcome(report: pytest.TestReport) -> str:
    """How pytest's summary counts one report of a test."""
    if getattr(report, "concurrently_interrupted", False):
        return "interrupted"
    if report.outcome == "rerun":  # type: ignore[comparison-overlap]
        return "rerun"
    xfail = hasattr(report, "wasxfail")
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return "xpassed" if xfail else "passed"


#: Which outcome a test shows when its phases disagree (a passed call with
#: an error in teardown is an error).
_PRECEDENCE = {
    outcome: rank
    for rank, outcome in enumerate(
        ["passed", "xpassed", "skipped", "xfailed", "rerun", "interrupted", "failed", "error"]
    )
}


def _first_line(report: pytest.TestReport) -> str | None:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None)
    if text is None:
        if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
            text = str(report.longrepr[2])
        elif report.longrepr is not None:
            lines = str(report.longrepr).strip().splitlines()
            text = lines[-1] if lines else None
    if not text:
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:300] or None


@dataclass
class RunStats:
    """The records of one concurrent session, and the end-of-run line."""

    #: node id -> its record, in the order tests started.
    records: dict[str, TestRecord] = field(default_factory=dict)
    fixtures: list[FixtureRecord] = field(default_factory=list)
    stalls: list[StallRecord] = field(default_factory=list)
    peak_in_flight: int = 0
    #: How many tests have ended.
    done: int = 0
    #: (plugin, reason) -> how many async tests ran alone under that plugin
    #: (or, with the plugin "", under this one) for that reason.
    alone_under_other_plugins: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (node id, where it was) for each test in flight at a Ctrl-C.
    interrupted: list[tuple[str, str]] = field(default_factory=list)
    #: When the run began, on both clocks: ``time.time`` and ``perf_counter``.
    began: tuple[float, float] = field(default_factory=lambda: (time.time(), time.perf_counter()))
    _in_flight: int = 0
    #: From a report's ``time.time`` to ``perf_counter``.
    _shift: float = 0.0
    #: node id -> (seconds, what) it waited to start, until it starts.
    _queued: dict[str, tuple[float, str]] = field(default_factory=dict)
    #: id of a fixture definition -> the record of its instance set up now.
    _open_fixtures: dict[int, FixtureRecord] = field(default_factory=dict)
    _started_at: float | None = None
    _ended_at: float | None = None

    def __post_init__(self) -> None:
        self._shift = self.began[1] - self.began[0]

    def test_started(self, nodeid: str, *, concurrent: bool = True) -> TestRecord:
        """Record a start; returns the record to hand to :meth:`test_ended`."""
        now = time.perf_counter()
        if self._started_at is None:
            self._started_at = now
        self._in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        record = TestRecord(nodeid, concurrent, now)
        queued = self._queued.pop(nodeid, None)
        if queued is not None:
            record.queued = (now - queued[0], queued[1])
        self.records[nodeid] = record
        return record

    def test_ended(self, record: TestRecord) -> None:
        """Record the end of the test ``record`` stands for."""
        now = time.perf_counter()
        self._in_flight -= 1
        self.done += 1
        self._ended_at = now
        record.ended = now

    def reported(self, report: pytest.TestReport) -> None:
        """Take one phase's report into its test's record."""
        record = self.records.get(report.nodeid)
        if record is None:
            return
        when = report.when
        shift = self._shift
        setattr(record, when, (report.start + shift, report.stop + shift))
        if report.passed and when != "call":
            return  # pytest counts a passed test by its call alone
        outcome = _outcome(report)
        if record.outcome is None or _PRECEDENCE[outcome] > _PRECEDENCE[record.outcome]:
            record.outcome = outcome
        if report.failed and record.message is None:
            record.message = _first_line(report)

    def stalled(
        self,
        seconds: float,
        frozen: list[str],
        culprit: str | None,
        where: str | None,
        began: float,
    ) -> None:
        """The loop stood still for ``seconds`` from ``began``, held by the
        test ``culprit`` (at ``where``): the tests ``frozen`` meanwhile do
        not count that time as theirs."""
        for nodeid in frozen:
            record = self.records.get(nodeid)
            if record is not None:
                record.stalled += seconds
        self.stalls.append(StallRecord(began, seconds, culprit, where))

    def waited(self, nodeid: str, seconds: float, what: str, *, in_flight: bool = False) -> None:
        """Record that a test waited ``seconds``, until now, for ``what``;
        ``in_flight`` when it waited while running (for a lock), which is
        then not its test time."""
        if not in_flight:
            # Told as it is admitted, just before its record is made.
            self._queued[nodeid] = (seconds, what)
            return
        record = self.records.get(nodeid)
        if record is not None:
            now = time.perf_counter()
            record.waits = (*record.waits, (now - seconds, now, what))

    def fixture_set_up(
        self, key: object, name: str, scope: str, param: str | None, began: float
    ) -> FixtureRecord:
        """Record a shared fixture instance, known by ``key`` until it is
        torn down, whose setup began at ``began`` and ends now."""
        record = FixtureRecord(name, scope, param, (began, time.perf_counter()))
        self.fixtures.append(record)
        self._open_fixtures[id(key)] = record
        return record

    def fixture_torn_down(self, key: object) -> None:
        """The shared fixture instance known by ``key`` is torn down (called
        for every fixture; most are not shared)."""
        record = self._open_fixtures.pop(id(key), None)
        if record is not None:
            record.torn_down()

    def wait_words(self, nodeid: str) -> str | None:
        """How long a test waited and for what, as ``waited 1.2 s for
        resource 'db'``; None if it did not wait."""
        found = self._waits_of(self.records.get(nodeid))
        if found is None:
            return None
        return f"waited {found[0]:,.1f} s for {' and '.join(found[1])}"

    @staticmethod
    def _waits_of(record: TestRecord | None) -> tuple[float, list[str]] | None:
        if record is None or (record.queued is None and not record.waits):
            return None
        total = 0.0
        reasons: list[str] = []
        if record.queued is not None:
            total += record.started - record.queued[0]
            reasons.append(record.queued[1])
        for start, stop, what in record.waits:
            total += stop - start
            if what not in reasons:
                reasons.append(what)
        return total, reasons

    @property
    def waits(self) -> dict[str, tuple[float, list[str]]]:
        """node id -> seconds the test waited for other tests (to start, or
        for a lock while it ran), and for what, in words."""
        found = {}
        for nodeid, record in self.records.items():
            waited = self._waits_of(record)
            if waited is not None:
                found[nodeid] = waited
        return found

    @property
    def in_flight(self) -> int:
        """How many tests are running now."""
        return self._in_flight

    @property
    def tests(self) -> int:
        """The tests pytest reported an outcome for."""
        return sum(1 for record in self.records.values() if record.reported)

    @property
    def test_seconds(self) -> float:
        """The sum of the reported tests' own times."""
        return sum(record.own_seconds for record in self.records.values() if record.reported)

    @property
    def stalled_seconds(self) -> float:
        """Seconds the loop stood still, blocked by a test."""
        return sum(stall.seconds for stall in self.stalls)

    @property
    def wall_seconds(self) -> float:
        """Seconds from the first start to the last end."""
        if self._started_at is None or self._ended_at is None:
            return 0.0
        return self._ended_at - self._started_at

    def totals(self) -> RunTotals:
        """The figures of the end-of-run line, to sum with other workers'."""
        began_wall, began_perf = self.began
        first = last = began_wall
        if self._started_at is not None and self._ended_at is not None:
            first = began_wall + (self._started_at - began_perf)
            last = began_wall + (self._ended_at - began_perf)
        waits = self.waits
        return RunTotals(
            tests=self.tests,
            first_start=first,
            last_end=last,
            test_seconds=self.test_seconds,
            peak_in_flight=self.peak_in_flight,
            waiting_tests=len(waits),
            waited_seconds=sum(seconds for seconds, _ in waits.values()),
            stalled_seconds=self.stalled_seconds,
            alone=tuple(
                (owner, reason, count)
                for (owner, reason), count in sorted(self.alone_under_other_plugins.items())
            ),
        )

    def summary_line(self) -> str:
        """The end-of-run line, such as ``concurrently: 480 tests in 12.1 s,
        2,310.4 s of test time (190.9x), up to 100 in flight``."""
        return self.totals().summary_line()


@dataclass(frozen=True)
class RunTotals:
    """The figures of the end-of-run line, of one process or summed over
    pytest-xdist's workers (:meth:`sum`).

    :param first_start: when the first test started (``time.time``).
    :param last_end: when the last test ended (``time.time``).
    :param peak_in_flight: the most tests in flight at once in one process.
    :param alone: (plugin, reason, count) of async tests that ran alone.
    :param workers: how many processes the figures come from.
    """

    tests: int
    first_start: float
    last_end: float
    test_seconds: float
    peak_in_flight: int
    waiting_tests: int
    waited_seconds: float
    stalled_seconds: float
    alone: tuple[tuple[str, str, int], ...] = ()
    workers: int = 1

    @classmethod
    def sum(cls, parts: Sequence[RunTotals]) -> RunTotals:
        """The totals of a run whose workers ran ``parts`` (not empty)."""
        ran = [part for part in parts if part.tests] or list(parts)
        alone: dict[tuple[str, str], int] = {}
        for part in parts:
            for owner, reason, count in part.alone:
                alone[(owner, reason)] = alone.get((owner, reason), 0) + count
        return cls(
            tests=sum(part.tests for part in parts),
            first_start=min(part.first_start for part in ran),
            last_end=max(part.last_end for part in ran),
            test_seconds=sum(part.test_seconds for part in parts),
            peak_in_flight=max(part.peak_in_flight for part in parts),
            waiting_tests=sum(part.waiting_tests for part in parts),
            waited_seconds=sum(part.waited_seconds for part in parts),
            stalled_seconds=sum(part.stalled_seconds for part in parts),
            alone=tuple((owner, reason, count) for (owner, reason), count in sorted(alone.items())),
            # The workers that ran tests: with fewer tests than workers,
            # some get none.
            workers=sum(part.workers for part in ran),
        )

    def summary_line(self) -> str:
        """The end-of-run line."""
        wall = max(self.last_end - self.first_start, 0.0)
        test_seconds = self.test_seconds
        speedup = f" ({test_seconds / wall:,.1f}x)" if wall > 0 else ""
        tests = self.tests
        noun = "test" if tests == 1 else "tests"
        on_workers = f" on {self.workers:,} workers" if self.workers > 1 else ""
        per_worker = " per worker" if self.workers > 1 else ""
        line = (
            f"concurrently: {tests:,} {noun}{on_workers} in {wall:,.1f} s, "
            f"{test_seconds:,.1f} s of test time{speedup}, "
            f"up to {self.peak_in_flight:,} in flight{per_worker}"
        )
        if self.waiting_tests:
            count = self.waiting_tests
            line += (
                f"; {count:,} {'test' if count == 1 else 'tests'} waited "
                f"{self.waited_seconds:,.1f} s for others"
            )
        if self.stalled_seconds >= 0.05:
            line += f"; tests blocked the loop for {self.stalled_seconds:,.1f} s"
        for owner, reason, count in self.alone:
            under = f" under {owner}" if owner else ""
            line += f"; {count:,} ran alone{under} ({reason})"
        return line
