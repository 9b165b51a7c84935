"""Run a generated suite sequentially and concurrently, and list the differences.

The baseline is ``--concurrently-mode=off`` (every test alone, as sequential
pytest runs them); the candidates are ``--concurrently-mode=auto`` and the
same with ``--concurrency 3``. Each run is a real pytest subprocess with
pytest-asyncio and anyio turned off, in a directory of its own, and leaves the
event log that the suite's recorder writes (see :mod:`.generator`).

Every run is checked on its own (:func:`check_run`): each test has one
``logstart``, one setup and one teardown report, a call report exactly when
setup passed, and one ``logfinish``; every fixture instance that was set up
is torn down exactly once, never before the fixtures that depend on it, never
while a test that received it is running, never in the phase of a test
outside its scope, and never beside another live instance of the same
fixture for the same scope node; the exit status matches the reports.

Each candidate is then compared with the baseline (:func:`compare_runs`): the
same tests, the same outcome per test and phase (with the same failures), the
same fixture instances received by each test, the same number of setups per
fixture instance (definition, scope node, parameter), the same teardown
failures of shared fixtures, and the same exit status. Tests also leave
marks of their own in what the process shares (see the generator's state
actions); the comparison checks those too: the same output and log markers
in each phase's report section (:func:`_compare_captured`), the same
warnings on the same tests (:func:`_compare_warnings`), and, per run, that
the process ends with the state it started with (``process-state-leaked``).

The plugin deliberately differs from sequential pytest in a few documented
ways; they are listed in :data:`INTENDED_DIFFERENCES`, and every place where
the comparison accepts one records it in :attr:`Comparison.allowances`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

from .generator import LOG_ENV, GeneratedSuite, generate_suite, write_suite

__all__ = [
    "BASELINE",
    "CANDIDATES",
    "COMMON_OPTIONS",
    "INTENDED_DIFFERENCES",
    "Allowance",
    "Comparison",
    "Difference",
    "IntendedDifference",
    "RunMode",
    "RunResult",
    "check_run",
    "compare_runs",
    "compare_seed",
    "compare_suite",
    "load_suite",
    "run_suite",
]


@dataclass(frozen=True)
class RunMode:
    """One way of running a suite: a name and the pytest options it adds."""

    name: str
    options: tuple[str, ...]


#: Sequential pytest: the plugin runs every test alone.
BASELINE: Final = RunMode("off", ("--concurrently-mode=off",))
#: The concurrent runs that must agree with the baseline.
CANDIDATES: Final = (
    RunMode("auto", ("--concurrently-mode=auto",)),
    # At most three in flight, sync tests' bodies in threads.
    RunMode(
        "auto-c3-threads",
        (
            "--concurrently-mode=auto",
            "--concurrency",
            "3",
            "--concurrently-sync-tests=thread",
        ),
    ),
)
#: Options of every run. The hypothesis plugin is turned off only because
#: importing it costs more than running a whole generated suite; pytest-randomly
#: would give the runs of one suite different orders.
COMMON_OPTIONS: Final = (
    "-p",
    "no:asyncio",
    "-p",
    "no:anyio",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:randomly",
    "-p",
    "no:cacheprovider",
    "-rA",
)
#: A run that takes longer than this hangs: a suite runs in a second or two.
RUN_TIMEOUT_SECONDS: Final = 20.0


@dataclass(frozen=True)
class IntendedDifference:
    """A deliberate difference from sequential pytest, stated in the docs.

    :param name: how allowances refer to it.
    :param section: where docs/semantics.md states it.
    :param rule: what differs, and what the comparison accepts because of it.
    """

    name: str
    section: str
    rule: str


INTENDED_DIFFERENCES: Final[dict[str, IntendedDifference]] = {}


@dataclass(frozen=True)
class Difference:
    """One way a run broke the contract or differed from the baseline.

    :param kind: the category (``outcome-call``, ``teardown-under-running-test``...).
    :param run: the name of the run it was found in.
    :param message: what differed, for people.
    """

    kind: str
    run: str
    message: str

    def __str__(self) -> str:
        return f"[{self.run}] {self.kind}: {self.message}"


@dataclass(frozen=True)
class Allowance:
    """A place where the comparison accepted an intended difference.

    :param rule: the name of the :data:`INTENDED_DIFFERENCES` entry.
    :param run: the name of the run it was applied to.
    :param message: what differed, for people.
    """

    rule: str
    run: str
    message: str

    def __str__(self) -> str:
        return f"[{self.run}] {self.rule}: {self.message}"


@dataclass
class RunResult:
    """What one pytest run of a suite left behind.

    :param mode: the name of the run mode.
    :param exit_code: pytest's exit status (``-1`` when the run timed out).
    :param events: the parsed lines of the event log, in order.
    :param output: pytest's terminal output.
    :param seconds: how long the subprocess took.
    """

    mode: str
    exit_code: int
    events: list[dict[str, Any]]
    output: str = ""
    seconds: float = 0.0


@dataclass
class Comparison:
    """The differences found in the runs of one suite.

    :param differences: contract violations and differences from the
        baseline; empty when the runs agree.
    :param allowances: each place where an :data:`INTENDED_DIFFERENCES`
        entry was applied.
    :param runs: the runs compared, baseline first.
    """

    differences: list[Difference] = field(default_factory=list)
    allowances: list[Allowance] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)
    sequential_quirks: list[Difference] = field(default_factory=list)
    """What the sequential run itself does that the per-run checks flag
    (pytest does not know a dependency asked for with
    ``request.getfixturevalue``, so it may tear it down first). A concurrent
    run that does the very same is not different from it; anything else it
    does is."""

    def messages(self) -> list[str]:
        """The differences as text, one per line."""
        return [str(difference) for difference in self.differences]


class InstanceKey(NamedTuple):
    """A fixture instance without its setup count: what two runs can share."""

    label: str
    node: str
    param: str

    def __str__(self) -> str:
        return f"{self.label} [node {self.node or '<session>'}, param {self.param}]"


def instance_key(instance: str) -> InstanceKey:
    """``label|node|param#n`` -> (label, node, param)."""
    label, node, param = instance.rsplit("#", 1)[0].split("|", 2)
    return InstanceKey(label, node, param)


def under(test: str, node: str) -> bool:
    """Whether the test with node id ``test`` belongs to the node ``node``."""
    return node == "" or test == node or test.startswith((node + "::", node + "/"))


# -- parsing a run -------------------------------------------------------------

#: Records a difference: (kind, message).
_Add = Callable[[str, str], None]
#: Records the use of an intended difference.


@dataclass(frozen=True)
class _Setup:
    position: int
    instance: str
    key: InstanceKey
    scope: str
    test: str | None
    deps: tuple[str, ...]
    finalized: bool
    failed: bool


@dataclass(frozen=True)
class _Report:
    position: int
    test: str
    when: str
    outcome: str
    wasxfail: str | None
    tokens: frozenset[str]
    summary: str
    # Section name -> the output and log markers in it.
    out: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def result(self) -> str:
        """passed, failed, skipped, xfailed or xpassed."""
        if self.wasxfail is not None:
            return "xfailed" if self.outcome == "skipped" else "xpassed"
        return self.outcome


class _Lineaged(NamedTuple):
    """An instance key with the keys of everything the instance was built from."""

    key: InstanceKey
    lineage: frozenset[InstanceKey]

    def __str__(self) -> str:
        if not self.lineage:
            return str(self.key)
        return f"{self.key} built on {', '.join(sorted(map(str, self.lineage)))}"


class _Token(NamedTuple):
    """A failure raised by the suite: ``phase|fx|instance`` or ``phase|test|nodeid``."""

    phase: str
    source: str
    what: str

    @classmethod
    def parse(cls, text: str) -> _Token:
        phase, source, what = text.split("|", 2)
        return cls(phase, source, what)

    def normalized(self) -> str:
        """The token without setup counts, comparable across runs."""
        if self.source == "fx":
            return f"{self.phase} of {instance_key(self.what)}"
        return f"{self.phase} of test {self.what}"

    def wider_than(self, test: str) -> bool:
        """Whether this is a fixture teardown failure of a scope wider than
        ``test``: the ones the plugin may report on another test."""
        return (
            self.phase == "teardown"
            and self.source == "fx"
            and instance_key(self.what).node != test
        )


class _RunLog:
    """A run's event log, indexed."""

    def __init__(self, run: RunResult) -> None:
        self.run = run
        self.collected: list[str] = []
        self.collect_errors: list[str] = []
        self.logstarts: Counter[str] = Counter()
        self.logfinishes: Counter[str] = Counter()
        self.setups: dict[str, _Setup] = {}
        self.teardowns: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
        self.starts: dict[str, list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
        self.ends: dict[str, list[int]] = defaultdict(list)
        self.reports: dict[str, dict[str, list[_Report]]] = defaultdict(lambda: defaultdict(list))
        self.sessionfinish: int | None = None
        self.warnings: Counter[tuple[str, str, str]] = Counter()
        self.final_state: dict[str, Any] | None = None
        self.original_state: dict[str, Any] | None = None
        self.unknown: list[str] = []
        for position, event in enumerate(run.events):
            self._add(position, event)

    def _add(self, position: int, event: Mapping[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "collected":
            self.collected = list(event["items"])
        elif kind == "collect_error":
            self.collect_errors.append(f"{event['node']}: {event['text'][-500:]}")
        elif kind == "logstart":
            self.logstarts[event["test"]] += 1
        elif kind == "logfinish":
            self.logfinishes[event["test"]] += 1
        elif kind in ("setup", "setup_error"):
            instance = event["instance"]
            self.setups[instance] = _Setup(
                position,
                instance,
                instance_key(instance),
                event["scope"],
                event["test"],
                tuple(event["deps"]),
                bool(event["finalized"]),
                kind == "setup_error",
            )
        elif kind == "teardown":
            self.teardowns[event["instance"]].append((position, event["test"]))
        elif kind == "start":
            self.starts[event["test"]].append((position, tuple(event["received"])))
        elif kind == "end":
            self.ends[event["test"]].append(position)
        elif kind == "report":
            report = _Report(
                position,
                event["test"],
                event["when"],
                event["outcome"],
                event["wasxfail"],
                frozenset(event["tokens"]),
                event["summary"],
                tuple(sorted((name, tuple(found)) for name, found in event.get("out", {}).items())),
            )
            self.reports[report.test][report.when].append(report)
        elif kind == "sessionfinish":
            self.sessionfinish = position
        elif kind == "warning":
            self.warnings[(event["test"], event["when"], event["message"])] += 1
        elif kind == "final_state":
            self.final_state = dict(event["state"])
            self.original_state = dict(event["original"])
        elif kind != "test_finalizer":
            self.unknown.append(str(event))

    def report(self, test: str, when: str) -> _Report | None:
        reports = self.reports.get(test, {}).get(when, [])
        return reports[0] if len(reports) == 1 else None

    def lineage(self, instance: str) -> frozenset[InstanceKey]:
        """The keys of every instance ``instance`` was built from, directly or
        not: two setups of one key with different lineages are different
        values (a fixture that depends on a parametrized one), not a repeat."""
        found: set[InstanceKey] = set()
        pending = list(self.setups[instance].deps) if instance in self.setups else []
        while pending:
            dep = pending.pop()
            key = instance_key(dep)
            if key not in found:
                found.add(key)
                pending.extend(self.setups[dep].deps if dep in self.setups else ())
        return frozenset(found)

    def setup_counts(self) -> tuple[Counter[_Lineaged], Counter[_Lineaged]]:
        """Successful and failed setups per instance key and lineage."""
        succeeded: Counter[_Lineaged] = Counter()
        failed: Counter[_Lineaged] = Counter()
        for setup in self.setups.values():
            key = _Lineaged(setup.key, self.lineage(setup.instance))
            (failed if setup.failed else succeeded)[key] += 1
        return succeeded, failed

    def wider_teardown_failures(self) -> list[tuple[_Token, _Report]]:
        """Teardown failures of shared fixtures, with the report carrying each."""
        found = []
        for per_phase in self.reports.values():
            for reports in per_phase.values():
                for report in reports:
                    for text in report.tokens:
                        token = _Token.parse(text)
                        if token.wider_than(report.test):
                            found.append((token, report))
        return found

    def expected_exit_code(self) -> int:
        if self.collect_errors:
            return 2
        if not self.collected:
            return 5
        failed = any(
            report.outcome == "failed"
            for per_phase in self.reports.values()
            for reports in per_phase.values()
            for report in reports
        )
        return 1 if failed else 0


# -- checks of one run ---------------------------------------------------------


def check_run(run: RunResult) -> list[Difference]:
    """Contract violations visible in one run alone."""
    log = _RunLog(run)
    found: list[Difference] = []

    def add(kind: str, message: str) -> None:
        found.append(Difference(kind, run.mode, message))

    if run.exit_code == -1:
        seconds = f"{RUN_TIMEOUT_SECONDS:.0f} s"
        add("run-timeout", f"pytest did not finish in {seconds}: {_tail(run.output)}")
        return found
    if _crashed(run):
        # Everything else would be a consequence; one line says more.
        add("run-crashed", f"pytest exited with {run.exit_code}: {_tail(run.output)}")
        return found
    for error in log.collect_errors:
        add("collection-error", error)
    for event in log.unknown:
        add("unreadable-log", event)
    _check_reports(log, add)
    _check_lifetimes(log, add)
    _check_final_state(log, add)
    if run.exit_code not in (-1, log.expected_exit_code()):
        add(
            "exit-status",
            f"pytest exited with {run.exit_code}, its reports say "
            f"{log.expected_exit_code()}; output ends: {_tail(run.output)}",
        )
    return found


def _crashed(run: RunResult) -> bool:
    """A hang, an internal error, a usage error or an interrupted session."""
    collection_failed = any(event.get("kind") == "collect_error" for event in run.events)
    return run.exit_code == -1 or (run.exit_code in (2, 3, 4) and not collection_failed)


def _tail(output: str, lines: int = 6) -> str:
    return " | ".join(line for line in output.strip().splitlines()[-lines:])


def _check_reports(log: _RunLog, add: _Add) -> None:
    collected = set(log.collected)
    for test in log.collected:
        counts = {
            "logstart": log.logstarts[test],
            "logfinish": log.logfinishes[test],
            "setup report": len(log.reports[test]["setup"]),
            "teardown report": len(log.reports[test]["teardown"]),
        }
        setup = log.report(test, "setup")
        calls = len(log.reports[test]["call"])
        expected_calls = 1 if setup is not None and setup.outcome == "passed" else 0
        for what, count in [*counts.items(), ("call report", calls)]:
            expected = expected_calls if what == "call report" else 1
            if count < expected:
                add("report-missing", f"{test}: {count} {what}s, expected {expected}")
            elif count > expected:
                add("report-duplicate", f"{test}: {count} {what}s, expected {expected}")
    reported = set(log.reports) | set(log.logstarts)
    for test in sorted(reported - collected):
        add("report-unexpected", f"{test} was reported but not collected")


def _check_final_state(log: _RunLog, add: _Add) -> None:
    """What tests patched is back as it was once everything is torn down."""
    if log.final_state is None or log.original_state is None:
        return
    for name in sorted(set(log.final_state) | set(log.original_state)):
        final, original = log.final_state.get(name), log.original_state.get(name)
        if final != original:
            add("process-state-leaked", f"{name} is {final!r} at the end, was {original!r}")


def _check_lifetimes(log: _RunLog, add: _Add) -> None:
    teardown_at = {instance: events[0][0] for instance, events in log.teardowns.items()}
    for instance, events in log.teardowns.items():
        setup = log.setups.get(instance)
        if setup is None or setup.failed:
            add("teardown-without-setup", f"{instance} was torn down but never set up")
            continue
        if len(events) > 1:
            add("torn-down-twice", f"{instance} was torn down {len(events)} times")
        for position, test in events:
            if test is not None and not under(test, setup.key.node):
                add(
                    "teardown-in-foreign-test",
                    f"{instance} was torn down while {test} was running, outside its scope",
                )
            if log.sessionfinish is not None and position > log.sessionfinish:
                add("teardown-at-session-end", f"{instance} was left for pytest's session end")
    for instance, setup in log.setups.items():
        if setup.failed or not setup.finalized:
            continue
        if instance not in log.teardowns:
            add("never-torn-down", f"{instance} was set up and never torn down")
            continue
        for dep in setup.deps:
            dep_setup = log.setups.get(dep)
            if dep_setup is None or not dep_setup.finalized or dep not in teardown_at:
                continue
            if teardown_at[dep] < teardown_at[instance]:
                add(
                    "dependency-torn-down-first",
                    f"{dep} was torn down before {instance}, which depends on it",
                )
    _check_received(log, teardown_at, add)
    _check_overlaps(log, teardown_at, add)


def _check_received(log: _RunLog, teardown_at: Mapping[str, int], add: _Add) -> None:
    for test, starts in log.starts.items():
        ends = log.ends.get(test, [])
        for index, (start, received) in enumerate(starts):
            end = ends[index] if index < len(ends) else None
            for instance in received:
                setup = log.setups.get(instance)
                torn = teardown_at.get(instance)
                if setup is None or setup.position > start or (torn is not None and torn < start):
                    add("stale-instance", f"{test} started with {instance}, which was not live")
                elif torn is not None and end is not None and start < torn < end:
                    add(
                        "teardown-under-running-test",
                        f"{instance} was torn down while {test}, which received it, was running",
                    )


def _check_overlaps(log: _RunLog, teardown_at: Mapping[str, int], add: _Add) -> None:
    """Two live instances of one fixture for one scope node: set up twice for
    the same scope, or two parameter values at once."""
    end_of_log = len(log.run.events)
    lives: dict[tuple[str, str], list[tuple[int, int, _Setup]]] = defaultdict(list)
    for setup in log.setups.values():
        if setup.failed or not setup.finalized or setup.scope == "function":
            continue
        lives[(setup.key.label, setup.key.node)].append(
            (setup.position, teardown_at.get(setup.instance, end_of_log), setup)
        )
    for spans in lives.values():
        spans.sort(key=lambda span: span[0])
        for index, (start, _, later) in enumerate(spans):
            for _, end, earlier in spans[:index]:
                if start < end:
                    kind = (
                        "duplicate-live-instance"
                        if earlier.key == later.key
                        else "param-values-overlap"
                    )
                    add(kind, f"{later.instance} was set up while {earlier.instance} was live")


# -- comparing two runs ----------------------------------------------------------


def compare_runs(baseline: RunResult, candidate: RunResult) -> Comparison:
    """Check ``candidate`` on its own and compare it with ``baseline``."""
    quirks = {(quirk.kind, quirk.message) for quirk in check_run(baseline)}
    problems = [
        problem for problem in check_run(candidate) if (problem.kind, problem.message) not in quirks
    ]
    comparison = Comparison(differences=problems, runs=[baseline, candidate])
    if _crashed(baseline) or _crashed(candidate):
        return comparison
    base, cand = _RunLog(baseline), _RunLog(candidate)

    def add(kind: str, message: str) -> None:
        comparison.differences.append(Difference(kind, candidate.mode, message))

    if set(base.collected) != set(cand.collected):
        missing = sorted(set(base.collected) - set(cand.collected))
        extra = sorted(set(cand.collected) - set(base.collected))
        add("test-set", f"missing {missing}, extra {extra}")
    elif base.collected != cand.collected:
        add("collection-order", "the tests were collected in another order")

    _compare_wider_teardown_failures(base, cand, add)
    _compare_outcomes(base, cand, add)
    _compare_setup_counts(base, cand, add)
    _compare_received(base, cand, add)
    _compare_captured(base, cand, add)
    _compare_warnings(base, cand, add)
    if base.final_state is not None and cand.final_state is None:
        # Whether it is what it was is checked on each run by check_run.
        add("final-state-missing", "the process state at the end was not recorded")

    if baseline.exit_code != candidate.exit_code:
        add("exit-status", f"exited with {candidate.exit_code}, baseline with {baseline.exit_code}")
    return comparison


def _compare_wider_teardown_failures(base: _RunLog, cand: _RunLog, add: _Add) -> None:
    """Shared fixtures' teardown failures: the same ones, reported on the same
    tests in the same phases."""
    base_failures = base.wider_teardown_failures()
    cand_failures = cand.wider_teardown_failures()
    base_places_of = {(token.normalized(), rep.when, rep.test) for token, rep in base_failures}
    for token, report in cand_failures:
        if (token.normalized(), report.when, report.test) not in base_places_of:
            add(
                "teardown-error-wrong-test",
                f"teardown failure of {instance_key(token.what)} reported in the "
                f"{report.when} of {report.test}",
            )
    by_key_base: dict[str, list[str]] = defaultdict(list)
    by_key_cand: dict[str, list[str]] = defaultdict(list)
    for token, report in base_failures:
        by_key_base[token.normalized()].append(f"{report.when} of {report.test}")
    for token, report in cand_failures:
        by_key_cand[token.normalized()].append(f"{report.when} of {report.test}")
    for name in sorted(set(by_key_base) | set(by_key_cand)):
        base_places, cand_places = by_key_base[name], by_key_cand[name]
        if len(base_places) != len(cand_places):
            add(
                "teardown-failure-count",
                f"{name}: reported {len(cand_places)} times {cand_places}, "
                f"baseline {len(base_places)} times {base_places}",
            )


def _phase_view(report: _Report | None, ignored: Set[str] = frozenset()) -> tuple[str, ...]:
    """What must match between runs for one report: its result and the
    failures in it. With ``ignored`` failures, only the other failures."""
    if report is None:
        return ("absent",)
    tokens = sorted(_Token.parse(text).normalized() for text in report.tokens)
    if ignored:
        return ("-", *(token for token in tokens if token not in ignored))
    return (report.result, *tokens)


def _describe(view: tuple[str, ...], report: _Report | None) -> str:
    result, *tokens = view
    text = result if not tokens else f"{result} by {', '.join(tokens)}"
    if report is not None and not report.tokens and report.outcome == "failed":
        text += f" ({report.summary})"
    return text


def _compare_outcomes(base: _RunLog, cand: _RunLog, add: _Add) -> None:
    for test in base.collected:
        if test not in cand.reports and test not in cand.logstarts:
            continue
        for when in ("setup", "call", "teardown"):
            base_report, cand_report = base.report(test, when), cand.report(test, when)
            if base_report is None and cand_report is None:
                continue
            base_view = _phase_view(base_report)
            cand_view = _phase_view(cand_report)
            if base_view == cand_view:
                continue
            kind = f"outcome-{when}"
            if when == "setup" and any(
                _Token.parse(text).wider_than(test)
                for text in (base_report.tokens if base_report else ())
            ):
                # pytest tears a parametrized shared fixture down when the
                # next test needs another value, inside that test's setup.
                kind = "replaced-instance-teardown-error"
            add(
                kind,
                f"{test}: {_describe(cand_view, cand_report)}, "
                f"baseline {_describe(base_view, base_report)}",
            )


def _compare_setup_counts(base: _RunLog, cand: _RunLog, add: _Add) -> None:
    base_ok, base_failed = base.setup_counts()
    cand_ok, cand_failed = cand.setup_counts()
    for label, base_counts, cand_counts in (
        ("set up", base_ok, cand_ok),
        ("failed in setup", base_failed, cand_failed),
    ):
        for key in sorted(set(base_counts) | set(cand_counts), key=str):
            base_count, cand_count = base_counts[key], cand_counts[key]
            if base_count == cand_count:
                continue
            message = f"{key}: {label} {cand_count} times, baseline {base_count}"
            if label == "failed in setup":
                add("fixture-setup-error-count", message)
            elif cand_count > base_count:
                add("fixture-set-up-more-often", message)
            else:
                add("fixture-set-up-less-often", message)


def _compare_received(base: _RunLog, cand: _RunLog, add: _Add) -> None:
    for test, base_starts in base.starts.items():
        cand_starts = cand.starts.get(test)
        if not cand_starts or len(base_starts) != 1 or len(cand_starts) != 1:
            continue
        base_keys = {instance_key(i) for i in base_starts[0][1]}
        cand_keys = {instance_key(i) for i in cand_starts[0][1]}
        if base_keys != cand_keys:
            add(
                "received-different-instances",
                f"{test} received {sorted(map(str, cand_keys - base_keys))} instead of "
                f"{sorted(map(str, base_keys - cand_keys))}",
            )


def _marker_owner(marker: str) -> str:
    """The node id in an ``OUT<nodeid:what>`` or ``LOG<nodeid:what>`` marker."""
    return marker[4:-1].rsplit(":", 1)[0]


def _compare_captured(base: _RunLog, cand: _RunLog, add: _Add) -> None:
    """Each phase's captured output and log records, as the markers in the
    section of that phase in the report of that phase (later reports repeat
    earlier phases' sections)."""
    for test in base.collected:
        for when in ("setup", "call", "teardown"):
            base_report, cand_report = base.report(test, when), cand.report(test, when)
            if base_report is None or cand_report is None:
                # A missing report is an outcome difference, found elsewhere.
                continue
            base_out, cand_out = dict(base_report.out), dict(cand_report.out)
            for section in sorted(set(base_out) | set(cand_out)):
                if not section.endswith(f" {when}"):
                    continue
                base_markers = base_out.get(section, ())
                cand_markers = cand_out.get(section, ())
                if base_markers == cand_markers:
                    continue
                if any(_marker_owner(marker) != test for marker in cand_markers):
                    kind = "captured-from-another-test"
                elif section.startswith("Captured log"):
                    kind = "captured-log"
                else:
                    kind = "captured-output"
                add(
                    kind,
                    f"{test}, {section}: {list(cand_markers)}, baseline {list(base_markers)}",
                )


def _compare_warnings(base: _RunLog, cand: _RunLog, add: _Add) -> None:
    """The warnings of ``pytest_warning_recorded``: the same ones on the same
    tests, as many times."""
    missing = base.warnings - cand.warnings
    extra = cand.warnings - base.warnings
    missing_by_message: dict[str, list[str]] = defaultdict(list)
    extra_by_message: dict[str, list[str]] = defaultdict(list)
    for (test, when, message), count in missing.items():
        missing_by_message[message] += [f"{test or '<no test>'} ({when})"] * count
    for (test, when, message), count in extra.items():
        extra_by_message[message] += [f"{test or '<no test>'} ({when})"] * count
    for message in sorted(set(missing_by_message) | set(extra_by_message)):
        lost, gained = missing_by_message[message], extra_by_message[message]
        if lost and gained:
            kind = "warning-on-another-test"
        elif lost:
            kind = "warning-missing"
        else:
            kind = "warning-extra"
        add(kind, f"{message!r}: recorded on {sorted(gained)} instead of {sorted(lost)}")


# -- running ---------------------------------------------------------------------


def run_suite(
    suite: GeneratedSuite,
    directory: Path,
    mode: RunMode,
    python_path: Sequence[Path] = (),
) -> RunResult:
    """Write ``suite`` into ``directory`` and run pytest on it in ``mode``.

    :param python_path: directories put before everything else on the run's
        ``sys.path``, to test another copy of the plugin.
    """
    write_suite(suite, directory)
    log = directory / "events.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PY_COLORS"))}
    env[LOG_ENV] = str(log)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [*map(str, python_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    # A base directory of its own: pytest's default one is shared by every
    # pytest process of the user, and removing another process's stale
    # directories there races and warns, on whichever run happens to lose.
    basetemp = directory.with_name(f"{directory.name}-basetemp")
    command = [
        sys.executable,
        "-m",
        "pytest",
        *COMMON_OPTIONS,
        *mode.options,
        f"--basetemp={basetemp}",
    ]
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            command,
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
        exit_code, output = completed.returncode, completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as timeout:
        # The output captured so far is bytes, whatever ``text`` says.
        partial = timeout.stdout or b""
        text = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        exit_code, output = -1, text
    seconds = time.perf_counter() - started
    events = []
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                events.append({"kind": "unreadable", "line": line})
    return RunResult(mode.name, exit_code, events, output, seconds)


def compare_suite(
    suite: GeneratedSuite,
    directory: Path,
    parallel: bool = True,
    candidates: Sequence[RunMode] = CANDIDATES,
    python_path: Sequence[Path] = (),
) -> Comparison:
    """Run ``suite`` in the baseline mode and every candidate mode, each in a
    directory of its own under ``directory``, and compare.

    :param parallel: run the modes at the same time (one subprocess each).
    """
    modes = [BASELINE, *candidates]

    def run(mode: RunMode) -> RunResult:
        return run_suite(suite, directory / mode.name, mode, python_path)

    if parallel:
        with ThreadPoolExecutor(max_workers=len(modes)) as pool:
            runs = list(pool.map(run, modes))
    else:
        runs = [run(mode) for mode in modes]
    baseline = runs[0]
    comparison = Comparison(runs=[baseline], sequential_quirks=check_run(baseline))
    for candidate in runs[1:]:
        result = compare_runs(baseline, candidate)
        comparison.differences += result.differences
        comparison.allowances += result.allowances
        comparison.runs.append(candidate)
    return comparison


def load_suite(directory: Path) -> GeneratedSuite:
    """Read a suite back from ``directory`` (written by :func:`write_suite`
    and perhaps edited by hand, to shrink a failing seed)."""
    files = {
        path.relative_to(directory).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(directory.rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    ini = (directory / "pytest.ini").read_text(encoding="utf-8")
    return GeneratedSuite(seed=-1, files=files, ini=ini, test_count=-1)


def compare_seed(
    seed: int,
    parallel: bool = True,
    candidates: Sequence[RunMode] = CANDIDATES,
    python_path: Sequence[Path] = (),
) -> Comparison:
    """Generate the suite of ``seed``, run it in a temporary directory, compare."""
    suite = generate_suite(seed)
    with tempfile.TemporaryDirectory(prefix=f"differential-{seed}-") as directory:
        return compare_suite(suite, Path(directory), parallel, candidates, python_path)
