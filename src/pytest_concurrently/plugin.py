"""The pytest plugin: options, markers, and the hooks that wire the rest in."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from . import _plugin_adapters as plugin_adapters
from . import _pytest_adapter as adapter
from . import blocking, bridge, collector, distributed, locking, stacks, strays, timeline
from ._plugin_adapters import xdist_worker
from .loop import EventLoopHost
from .marking import (
    CONCURRENT_MARKER,
    ISOLATED_MARKER,
    ISOLATING_FIXTURES,
    MarkerError,
    Mode,
    TestPlan,
    plan_test,
)
from .rerunning import RerunLedger
from .resources import (
    RESOURCE_MARKER,
    ResourceNeed,
    collect_limits,
    declared_resources,
    parse_limits,
)
from .running import (
    INTERRUPTED,
    ConcurrentSession,
    FaultPolicy,
    needs_one_task,
    run_sequentially,
)
from .stats import RunStats
from .threads import BodyThreads
from .timeouts import RunLimits

try:
    from ._pytest_adapter import layered_mocks
except ModuleNotFoundError as error:
    # The plugin works without pytest-mock: then there is no mocker to layer.
    if error.name != "pytest_mock":
        raise
    _HAS_PYTEST_MOCK = False
else:
    _HAS_PYTEST_MOCK = True

DEFAULT_CONCURRENCY = 100


@dataclass
class _PluginState:
    mode: Mode
    concurrency: int
    loop: EventLoopHost = field(default_factory=EventLoopHost)
    stats: RunStats | None = None
    # The runner of an enclosing session (pytester runs sessions in-process).
    outer_loop_runner: bridge.IdleLoopRunner | None = None
    # Whether sync fixtures wider than function scope get owner tasks: while
    # this plugin runs the test loop, so one task sets each up and tears it
    # down, whichever tests' contexts ask for it.
    own_sync_fixtures: bool = False
    # Whether sync tests interleave ("interleave", in auto mode), run alone
    # ("alone") or run their bodies in threads ("thread").
    sync_tests: str = "interleave"
    # The worker threads of threaded sync tests, made on first use.
    body_threads: BodyThreads | None = None
    # In auto mode, why no test ran concurrently (for the end of the run).
    nothing_concurrent: str | None = None
    # node id -> why a test written for another plugin ran alone under it.
    alone_under: dict[str, str] = field(default_factory=dict)
    reruns: RerunLedger = field(default_factory=lambda: RerunLedger(enabled=False))
    # Node ids of the tests that ran concurrently, and how many of them failed.
    concurrent_ids: set[str] = field(default_factory=set)
    failed_concurrently: int = 0
    # Whether pytest-xdist's workers reported misused markers.
    usage_error_reported: bool = False
    # On pytest-xdist's controller: the waits of the workers' tests.
    worker_waits: dict[str, tuple[float, list[str]]] = field(default_factory=dict)
    # The concurrent run in progress, to stop from another thread.
    current_run: ConcurrentSession | None = None
    # Where the timeline was written, once it was.
    timeline_written: Path | None = None
    # Resource name -> its limit, from the ini option, markers and fixtures.
    limits: dict[str, int] = field(default_factory=dict)
    # Time limits, the loop's watchdog and stray tasks.
    faults: FaultPolicy = field(default_factory=FaultPolicy)


T = TypeVar("T")

_state_key = pytest.StashKey[_PluginState]()
_plan_key = pytest.StashKey[TestPlan]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--concurrently-mode`` and ``--concurrency`` and their ini keys."""
    group = parser.getgroup("concurrently", "running async tests concurrently")
    group.addoption(
        "--concurrently-mode",
        dest="concurrently_mode",
        default=None,
        metavar="MODE",
        help="off: run async tests one at a time; marked (default): run tests "
        "marked 'concurrent' concurrently; auto: run every async test concurrently "
        "unless it is marked 'isolated'.",
    )
    group.addoption(
        "--concurrency",
        dest="concurrency",
        default=None,
        metavar="N",
        help=f"the most tests in flight at once (default {DEFAULT_CONCURRENCY}).",
    )
    group.addoption(
        "--concurrently-timeline",
        dest="concurrently_timeline",
        default=None,
        metavar="PATH",
        help="write the run's timeline to PATH: a self-contained HTML page if PATH ends "
        "in .html, else JSON (every test's phases, waits and outcome; shared fixture "
        "instances; loop stalls).",
    )
    group.addoption(
        "--concurrently-timeout",
        dest="concurrently_timeout",
        default=None,
        metavar="SECONDS",
        help="fail a concurrent test still running after this many seconds, from the "
        "start of its setup (0: no limit, the default).",
    )
    group.addoption(
        "--concurrently-blocking",
        dest="concurrently_blocking",
        default=None,
        choices=["warn", "error", "off"],
        help="when a concurrent test blocks the event loop longer than the threshold: "
        "warn (the default), fail the test (error), or do not watch (off).",
    )
    group.addoption(
        "--concurrently-blocking-threshold",
        dest="concurrently_blocking_threshold",
        default=None,
        metavar="SECONDS",
        help="the shortest stall of the event loop to report (default 0.5; 0: do not watch).",
    )
    group.addoption(
        "--concurrently-sync-tests",
        dest="concurrently_sync_tests",
        default=None,
        metavar="HOW",
        help="interleave (default): in auto mode, sync test functions run between "
        "concurrent tests, each while nothing else runs; alone: each sync test runs "
        "with no other test in flight; thread: sync tests that auto mode or a "
        "'concurrent' marker makes concurrent run their bodies in worker threads, "
        "beside the other tests in flight.",
    )
    group.addoption(
        "--concurrently-rerun-alone",
        dest="concurrently_rerun_alone",
        action="store_true",
        default=None,
        help="run a test that failed while running concurrently once more, alone, "
        "after every test has run; only that run is reported.",
    )
    parser.addini(
        "concurrently_rerun_alone",
        "default for --concurrently-rerun-alone (true or false).",
        type="bool",
        default=False,
    )
    parser.addini(
        "concurrently_sync_tests",
        "default for --concurrently-sync-tests: interleave, alone or thread.",
        default="interleave",
    )
    parser.addini(
        "concurrently_timeout",
        "default for --concurrently-timeout, in seconds (0: no limit).",
        default="0",
    )
    parser.addini(
        "concurrently_blocking",
        "default for --concurrently-blocking: warn, error or off.",
        default="warn",
    )
    parser.addini(
        "concurrently_blocking_threshold",
        "default for --concurrently-blocking-threshold, in seconds.",
        default="0.5",
    )
    parser.addini(
        "concurrently_stray_tasks",
        "what to do with tasks a concurrent test leaves running when it ends: cancel "
        "(and warn), warn, or ignore.",
        default="cancel",
    )
    parser.addini(
        "concurrently_shared_state",
        "warn (the default): a concurrent test that changes os.environ, the working "
        "directory or sys.path while other tests are in flight, other than through "
        "monkeypatch, gets a SharedStateWarning; ignore: do not watch.",
        default="warn",
    )
    parser.addini(
        "concurrently_setup_timeout",
        "fail a concurrent test whose setup runs longer than this many seconds "
        "(0: only the test's own limit).",
        default="0",
    )
    parser.addini(
        "concurrently_teardown_timeout",
        "fail a concurrent test whose teardown runs longer than this many seconds "
        "(0: as long as the test's own limit).",
        default="0",
    )
    parser.addini(
        "concurrently_timeout_grace",
        "seconds a timed-out concurrent test has to stop before it is abandoned.",
        default="2",
    )
    parser.addini(
        "concurrently_isolated_fixtures",
        "fixtures that make a test that uses them run alone, since every test in flight "
        "would see what they change.",
        type="args",
        default=list(ISOLATING_FIXTURES),
    )
    parser.addini(
        "concurrently_resources",
        "limits of named resources, as name:N entries (browser:4 payments:1).",
        type="linelist",
        default=[],
    )
    parser.addini(
        "concurrently_mode",
        "default for --concurrently-mode: off, marked or auto.",
        default=Mode.MARKED.value,
    )
    parser.addini(
        "concurrency",
        f"default for --concurrency (default {DEFAULT_CONCURRENCY}).",
        default=str(DEFAULT_CONCURRENCY),
    )


#: The markers this plugin registers, as ``pytest --markers`` lists them.
MARKERS = (
    f"{CONCURRENT_MARKER}(group=None, timeout=None, thread=False): run this async test "
    "concurrently with other concurrent tests on one event loop (a sync test with "
    "thread=True: its body in a worker thread); tests of a group never overlap tests of "
    "another group; timeout limits its setup and call, in seconds (pytest-concurrently).",
    f"{RESOURCE_MARKER}(name, *names, mode='exclusive', limit=None): the test holds the "
    "named resources from its setup to its teardown; exclusive holders overlap no "
    "other holder, shared ones only shared ones (pytest-concurrently).",
    f"{ISOLATED_MARKER}: run this test with no other test in flight, even under "
    "--concurrently-mode=auto (pytest-concurrently).",
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, validate the options and create the loop."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        limits = parse_limits(config.getini("concurrently_resources"))
    except ValueError as exc:
        raise pytest.UsageError(f"pytest-concurrently: {exc}") from None
    state = _PluginState(
        limits=limits,
        mode=_read_mode(config),
        concurrency=_read_concurrency(config),
        faults=_read_fault_policy(config),
        sync_tests=_read_sync_tests(config),
    )
    rerun = config.getoption("concurrently_rerun_alone")
    state.reruns = RerunLedger(
        enabled=bool(rerun if rerun is not None else config.getini("concurrently_rerun_alone"))
    )
    config.stash[_state_key] = state
    state.outer_loop_runner = bridge.set_idle_loop_runner(state.loop.run)
    # Registered after every plugin installed or named with -p, so that among
    # the first-called implementations of pytest_pyfunc_call it is called
    # first: anyio's would otherwise run a test claimed from it.
    config.pluginmanager.register(TestBodies(state), "concurrently-test-bodies")
    config.pluginmanager.register(FailureCounter(state), "concurrently-failure-counter")
    _hide_async_fixtures_if_wrapped(config.pluginmanager)
    adapter.register_terminal_lines(config)
    # After every plugin loaded at start, pytest-mock's included: of two
    # fixtures of one name from plugins, the one registered later is used.
    if _HAS_PYTEST_MOCK and config.pluginmanager.has_plugin("pytest_mock"):
        config.pluginmanager.register(layered_mocks, "concurrently-mockers")
    if config.pluginmanager.has_plugin("timeout"):
        config.pluginmanager.register(
            plugin_adapters.timeouts.ConcurrentTimeouts(), "concurrently-timeouts"
        )
    interactor = xdist_worker.worker_interactor(config)
    if interactor is not None:
        config.pluginmanager.register(
            distributed.XdistWorker(interactor, _plan_of), "concurrently-xdist-worker"
        )
        config.pluginmanager.register(WorkerReasons(), "concurrently-worker-reasons")
    elif config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput"):
        controller = distributed.XdistController(functools.partial(_merge_worker_output, state))
        config.pluginmanager.register(controller, "concurrently-xdist-controller")
        if config.get_verbosity() >= 1:
            config.pluginmanager.register(VerboseReasons(state), "concurrently-verbose-reasons")


def _merge_worker_output(state: _PluginState, output: dict[str, Any]) -> None:
    """On pytest-xdist's controller: take in a worker's failures and
    reruns, for the end-of-run lines."""
    state.failed_concurrently += int(output.get("failed_concurrently", 0))
    failed_concurrently, failed_alone = output.get("reruns", ({}, ()))
    state.reruns.failed_concurrently.update(failed_concurrently)
    state.reruns.failed_alone.update(failed_alone)
    for nodeid, (seconds, reasons) in output.get("waits", {}).items():
        state.worker_waits[nodeid] = (seconds, list(reasons))


def _plan_of(item: pytest.Item) -> TestPlan:
    return item.stash.get(_plan_key, TestPlan(concurrent=False))


def _read_mode(config: pytest.Config) -> Mode:
    return Mode(_read_choice(config, "concurrently_mode", [mode.value for mode in Mode]))


def _read_sync_tests(config: pytest.Config) -> str:
    return _read_choice(config, "concurrently_sync_tests", ["interleave", "alone", "thread"])


def _read_choice(config: pytest.Config, name: str, choices: list[str], *, flag: bool = True) -> str:
    """The value of the option ``--name`` (with dashes, when ``flag``), or
    else of the ini key ``name``, which must be one of ``choices``."""
    option = config.getoption(name) if flag else None
    source = "--" + name.replace("_", "-") if option is not None else f"the {name} ini option"
    value = option if option is not None else config.getini(name)
    chosen = str(value).strip().lower()
    if chosen not in choices:
        raise pytest.UsageError(f"{source} must be one of {', '.join(choices)}; got {value!r}")
    return chosen


def _read_concurrency(config: pytest.Config) -> int:
    option = config.getoption("concurrency")
    source = "--concurrency" if option is not None else "the concurrency ini option"
    value = option if option is not None else config.getini("concurrency")
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1:
        raise pytest.UsageError(
            f"{source} must be a whole number of at least 1 (1 runs one test at a time); "
            f"got {value!r}"
        )
    return number


def _read_fault_policy(config: pytest.Config) -> FaultPolicy:
    return FaultPolicy(
        time_limits=_read_time_limits(config),
        blocking=_read_choice(config, "concurrently_blocking", ["warn", "error", "off"]),
        blocking_threshold=_read_seconds(config, "concurrently_blocking_threshold", flag=True),
        stray_tasks=_read_choice(
            config, "concurrently_stray_tasks", ["cancel", "warn", "ignore"], flag=False
        ),
        shared_state=_read_choice(
            config, "concurrently_shared_state", ["warn", "ignore"], flag=False
        ),
    )


def _read_time_limits(config: pytest.Config) -> RunLimits:
    grace = _read_seconds(config, "concurrently_timeout_grace", flag=False)
    return RunLimits(
        test=_read_seconds(config, "concurrently_timeout", flag=True) or None,
        setup=_read_seconds(config, "concurrently_setup_timeout", flag=False) or None,
        teardown=_read_seconds(config, "concurrently_teardown_timeout", flag=False) or None,
        grace=grace,
    )


def _read_seconds(config: pytest.Config, name: str, *, flag: bool) -> float:
    """Seconds from the option ``--name`` (with dashes, when ``flag``) or
    else the ini key ``name``: a number, 0 or more."""
    option = config.getoption(name) if flag else None
    source = "--" + name.replace("_", "-") if option is not None else f"the {name} ini option"
    value = option if option is not None else config.getini(name)
    try:
        seconds = float(str(value).strip())
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise pytest.UsageError(
            f"{source} must be a number of seconds, 0 or more (0: no limit); got {value!r}"
        )
    return seconds


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Plan every selected test; reject misused markers by name."""
    state = config.stash[_state_key]
    problems = []
    interleave_sync = state.sync_tests == "interleave"
    isolating = frozenset(config.getini("concurrently_isolated_fixtures"))
    plans = []
    with collector.paused():
        for item in items:
            try:
                plan = plan_test(
                    item,
                    state.mode,
                    interleave_sync=interleave_sync,
                    thread_sync=state.sync_tests == "thread",
                    isolating=isolating,
                )
            except MarkerError as error:
                problems.append(error)
                continue
            plans.append(plan)
            item.stash[_plan_key] = plan
            if plan.taken_from is not None:
                plugin_adapters.take_over(item, plan.taken_from)
            elif plan.alone_because is not None:
                under = f" under {plan.owner}" if plan.owner is not None else ""
                state.alone_under[item.nodeid] = f"alone{under}: {plan.alone_because}"
    try:
        if problems:
            raise pytest.UsageError(_grouped_by_cause(problems))
        try:
            state.limits = collect_limits(state.limits, _declared_limits(items, plans))
        except ValueError as exc:
            raise pytest.UsageError(f"pytest-concurrently: {exc}") from None
        if not any(plan.concurrent and (plan.is_async or plan.threaded) for plan in plans):
            # Sync tests interleave between concurrent async tests; without
            # any, they run alone as pytest runs them.
            for item in items:
                if item.stash[_plan_key].interleaved:
                    item.stash[_plan_key] = TestPlan(concurrent=False)
        _refuse_conflicting_options(config, state, items)
    except pytest.UsageError as error:
        if not hasattr(config, "workerinput"):
            raise
        # Every pytest-xdist worker finds the same problems: as a failed
        # collection report, the controller shows them once and runs
        # nothing (a usage error would look like a crashed worker).
        report = pytest.CollectReport("", "failed", str(error), [])
        report.concurrently_usage_error = True  # type: ignore[attr-defined]
        config.hook.pytest_collectreport(report=report)
        session.testsfailed += 1
        items[:] = []
        return
    plugins = config.pluginmanager
    if (
        (state.alone_under or state.reruns.enabled or any(plan.concurrent for plan in plans))
        and config.get_verbosity() >= 1
        and not plugins.has_plugin("concurrently-verbose-reasons")
    ):
        plugins.register(VerboseReasons(state), "concurrently-verbose-reasons")


def _declared_limits(
    items: list[pytest.Item], plans: list[TestPlan]
) -> Iterator[tuple[str, ResourceNeed]]:
    """Every resource declaration that gives a limit, with where it is."""
    seen: set[int] = set()
    for item, plan in zip(items, plans, strict=True):
        for need in plan.resources:
            yield item.nodeid, need
        for name, function in adapter.fixture_functions(item):
            if id(function) in seen:
                continue
            seen.add(id(function))
            for need in declared_resources(function):
                yield f"the fixture {name}", need


def _grouped_by_cause(errors: list[MarkerError]) -> str:
    """One usage error for every misused test, a paragraph per cause with
    the fix and the tests it applies to, so that one run names everything to
    fix."""
    by_cause: dict[tuple[str, str], list[str]] = {}
    for error in errors:
        for problem in error.problems:
            by_cause.setdefault(problem, []).append(error.nodeid)
    count = len({error.nodeid for error in errors})
    lines = [
        f"pytest-concurrently: {count:,} {'test uses' if count == 1 else 'tests use'} "
        "markers wrongly; no test ran."
    ]
    for (cause, fix), nodeids in by_cause.items():
        if cause[:1].islower():
            # A cause without a subject, such as "is marked both ...".
            cause = f"{'This test' if len(nodeids) == 1 else 'Each of these tests'} {cause}"
        lines += ["", f"{cause}.", f"Fix: {fix}."]
        lines.extend(f"    {nodeid}" for nodeid in nodeids)
    return "\n".join(lines)


def _is_ours_and_async(plan: TestPlan) -> bool:
    return plan.is_async and plan.owner is None


def _refuse_conflicting_options(
    config: pytest.Config, state: _PluginState, items: list[pytest.Item]
) -> None:
    if config.getoption("trace", False):
        ours = [item for item in items if _is_ours_and_async(item.stash[_plan_key])]
        if ours:
            raise pytest.UsageError(
                f"pytest-concurrently: --trace cannot step into async tests such as "
                f"{ours[0].nodeid}; put breakpoint() in the test and run with "
                "--concurrently-mode=off instead"
            )
    concurrent = [item for item in items if item.stash[_plan_key].concurrent]
    if not concurrent:
        return
    example = concurrent[0].nodeid
    if config.getoption("usepdb", False):
        raise pytest.UsageError(
            f"pytest-concurrently: --pdb stops at one test while others run "
            f"({example} would run concurrently); debug with --concurrently-mode=off"
        )
    if config.getoption("stepwise", False) and state.concurrency > 1:
        raise pytest.UsageError(
            "pytest-concurrently: --stepwise needs the first failure to be the last one "
            f"reported, and concurrent tests ({example}, ...) finish in any order; "
            "add --concurrency=1 or --concurrently-mode=off"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Give every test that runs alone a context of its own for the async
    fixtures and the async body it runs on the idle loop: they share it, and
    the next test does not see it."""
    loop = item.config.stash[_state_key].loop
    saved, loop.idle_context = loop.idle_context, contextvars.copy_context()
    try:
        return (yield)
    finally:
        loop.idle_context = saved


@pytest.fixture
def recwarn() -> Generator[pytest.WarningsRecorder, None, None]:
    """pytest's ``recwarn``, which in a concurrent test records that test's
    warnings alone and changes no process-wide filter (see
    ``docs/semantics.md``)."""
    yield from adapter.recording_warnings()


@pytest.fixture
def monkeypatch() -> Generator[pytest.MonkeyPatch, None, None]:
    """pytest's ``monkeypatch``, whose patches come off in any order: when
    tests in flight patch the same target, each undo takes out that test's
    own patch, and after the last one the target is as it was before the
    first (see ``docs/semantics.md``)."""
    patcher = adapter.LayeredMonkeyPatch()
    yield patcher
    patcher.undo()


# pytest-mock's ``mocker``, ``class_mocker``, ``module_mocker``,
# ``package_mocker`` and ``session_mocker``, whose patches come off in any
# order the same way, are fixtures of ``_pytest_adapter.layered_mocks``:
# that module is registered as a plugin in ``pytest_configure``, when
# pytest-mock is, so that its fixtures come after pytest-mock's own and are
# the ones used.


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """Take over the test loop when some selected test is concurrent, or
    runs async code of ours (then each such test runs in one task)."""
    config = session.config
    state = config.stash[_state_key]
    if config.option.collectonly:
        return None
    worker = config.pluginmanager.get_plugin("concurrently-xdist-worker")
    if hasattr(config, "workerinput") and worker is None:
        return None
    plans = [_plan_of(item) for item in session.items]
    concurrent = any(plan.concurrent for plan in plans)
    if not concurrent:
        if state.mode is Mode.AUTO:
            state.nothing_concurrent = _why_nothing_is_concurrent(plans)
        if worker is not None or not any(
            needs_one_task(item, plan) for item, plan in zip(session.items, plans, strict=True)
        ):
            # A worker runs the tests one by one as pytest-xdist sends them.
            return None
    if session.testsfailed and not config.option.continue_on_collection_errors:
        errors = session.testsfailed
        raise session.Interrupted(f"{errors} error{'s' if errors != 1 else ''} during collection")
    if not concurrent:
        state.own_sync_fixtures = True
        try:
            run_sequentially(session, plans, state.loop)
        finally:
            state.own_sync_fixtures = False
        return True
    state.stats = RunStats()
    _count_alone(state, plans)
    state.concurrent_ids = {
        item.nodeid for item, plan in zip(session.items, plans, strict=True) if plan.concurrent
    }
    if worker is not None:
        _run_share_by_share(session, state, worker)
        return True
    _run_concurrently(session, state, session.items, plans)
    if session.shouldfail:
        raise session.Failed(session.shouldfail)
    if session.shouldstop:
        raise session.Interrupted(session.shouldstop)
    return True


def _count_alone(state: _PluginState, plans: list[TestPlan]) -> None:
    """Count, for the end-of-run line, the async tests that run alone."""
    assert state.stats is not None
    alone = state.stats.alone_under_other_plugins
    for plan in plans:
        if plan.concurrent or not plan.is_async:
            continue
        if plan.owner is not None and state.mode is Mode.AUTO:
            key = (plan.owner, plan.alone_because or "it is marked isolated")
            alone[key] = alone.get(key, 0) + 1
        elif plan.owner is None and plan.alone_because is not None:
            alone[("", plan.alone_because)] = alone.get(("", plan.alone_because), 0) + 1


def _run_concurrently(
    session: pytest.Session,
    state: _PluginState,
    items: list[pytest.Item],
    plans: list[TestPlan],
) -> None:
    """Run ``items`` with a :class:`ConcurrentSession`."""
    assert state.stats is not None
    config = session.config
    state.own_sync_fixtures = True
    try:
        state.current_run = ConcurrentSession(
            session,
            plans,
            state.concurrency,
            state.loop,
            state.stats,
            state.reruns if state.reruns.enabled else None,
            state.limits,
            state.faults,
            config.pluginmanager.get_plugin("concurrently-timeouts"),
            items=items,
        )
        state.current_run.run()
    finally:
        state.own_sync_fixtures = False
        state.current_run = None


def _run_share_by_share(
    session: pytest.Session, state: _PluginState, worker: distributed.XdistWorker
) -> None:
    """On a pytest-xdist worker, run each batch of tests the controller
    sends concurrently, until it sends no more or the run stops. Like
    pytest-xdist's own loop, this ends quietly when the run stops: the
    controller learns why from the worker's output."""

    def stop(reason: str) -> None:
        # On execnet's thread: the loop notices at its next turn.
        if not session.shouldstop:
            session.shouldstop = reason
        state.loop.call_soon_threadsafe(_stop_current_run(state))

    workers = int(session.config.workerinput.get("workercount", 1))  # type: ignore[attr-defined]
    locking.running_beside_other_workers(workers > 1)
    try:
        for items in worker.batches(session, on_stop=stop):
            _run_concurrently(session, state, items, [_plan_of(item) for item in items])
            if session.shouldfail or session.shouldstop:
                break
    finally:
        locking.running_beside_other_workers(False)
    assert state.stats is not None
    reruns = state.reruns
    extra: dict[str, Any] = {
        "failed_concurrently": state.failed_concurrently,
        "reruns": [dict(reruns.failed_concurrently), sorted(reruns.failed_alone)],
    }
    if session.config.getoption("durations", None) is not None:
        extra["waits"] = {nodeid: list(wait) for nodeid, wait in state.stats.waits.items()}
    if session.config.getoption("concurrently_timeline", None):
        extra["timeline"] = [worker.worker_id, timeline.document(state.stats)]
    worker.send_totals(session.config, state.stats, extra)


def _stop_current_run(state: _PluginState) -> Callable[[], None]:
    def stop_soon() -> None:
        if state.current_run is not None:
            state.current_run.stop_soon()

    return stop_soon


def _why_nothing_is_concurrent(plans: list[TestPlan]) -> str:
    ours = sum(
        1 for plan in plans if plan.is_async and plan.owner is None and not plan.alone_because
    )
    others: dict[tuple[str, str], int] = {}
    for plan in plans:
        if plan.owner is not None or plan.alone_because:
            key = (plan.owner or "", plan.alone_because or "it is marked isolated")
            others[key] = others.get(key, 0) + 1
    reasons = [
        f"{count:,} async {'test runs' if count == 1 else 'tests run'} alone"
        f"{f' under {owner}' if owner else ''} ({reason})"
        for (owner, reason), count in sorted(others.items())
    ]
    if ours:
        reasons.append(f"{ours:,} async {'test is' if ours == 1 else 'tests are'} marked isolated")
    if not reasons:
        reasons.append("no async test was selected")
    return "concurrently: auto mode ran no test concurrently: " + "; ".join(reasons)


#: The plugins whose ``pytest_fixture_setup`` wrappers would run ``async
#: def`` fixtures on loops of their own (pytest-asyncio's and anyio's).
_FIXTURE_WRAPPING_PLUGINS = ("asyncio", "anyio")


class AsyncFixturesHidden:
    """Hides the ``async def`` fixtures this plugin sets up from the fixture
    wrappers of pytest-asyncio and anyio. Registered only beside one of
    them: a wrapper around every fixture's setup is not free."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: adapter.FixtureDef[object], request: adapter.SubRequest
    ) -> Generator[None, object, object]:
        """Hide the fixture's ``async def`` function from the wrappers
        called inside this one; :func:`pytest_fixture_setup` shows it
        again."""
        plan = adapter.requesting_item(request).stash.get(_plan_key, None)
        # The fixtures of tests that run on the session loop; a sync test
        # that runs alone leaves its async fixtures to whichever plugin would
        # run them without this one.
        if plan is None or not (plan.concurrent or _is_ours_and_async(plan)):
            return (yield)
        with plugin_adapters.hiding_fixture_from_plugins(fixturedef):
            return (yield)


def _hide_async_fixtures_if_wrapped(manager: pytest.PytestPluginManager) -> None:
    name = "concurrently-async-fixtures-hidden"
    if manager.has_plugin(name) or manager.is_blocked(name):
        return
    if any(manager.has_plugin(plugin) for plugin in _FIXTURE_WRAPPING_PLUGINS):
        manager.register(AsyncFixturesHidden(), name)


def pytest_plugin_registered(
    plugin: object, plugin_name: str, manager: pytest.PytestPluginManager
) -> None:
    """Hide async fixtures from pytest-asyncio or anyio registered late
    (named in a conftest's ``pytest_plugins``)."""
    if plugin_name in _FIXTURE_WRAPPING_PLUGINS:
        _hide_async_fixtures_if_wrapped(manager)


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(
    fixturedef: adapter.FixtureDef[object], request: adapter.SubRequest
) -> object | None:
    """Set up ``async def`` fixtures on the session loop, and shared fixtures
    in an owner task of their own.

    A fixture wider than function scope is set up and torn down by one owner
    task when it is ``async def``, and, while this plugin runs the test loop
    (some test is concurrent or has async code of ours), when it is sync too.
    The ``async def`` fixtures of tests that another plugin runs are left to
    that plugin.
    """
    plugin_adapters.reveal_fixture(fixturedef)
    if request.config.getoption("setupplan", False):
        return None  # --setup-plan shows fixtures without running them
    state = request.config.stash[_state_key]
    is_async = adapter.is_async_fixture(fixturedef)
    plan = adapter.requesting_item(request).stash.get(_plan_key, None)
    theirs = plan is not None and plan.owner is not None
    if is_async:
        if theirs:
            return None  # the other plugin's test: it runs its async fixtures
    elif not state.own_sync_fixtures or not bridge.can_wait():
        # A sync fixture asked for with request.getfixturevalue straight
        # from an async def body cannot wait for an owner: set it up there,
        # as pytest would. (The other plugins' wrappers of their async
        # fixtures are sync: owned like any, so their teardown runs in the
        # context their setup ran in, wherever the scope ends.)
        return None
    if adapter.is_shared_request(request):
        if state.stats is None:
            return adapter.setup_in_owner(
                fixturedef, request, state.loop.session_context, share_context=not theirs
            )
        began = time.perf_counter()
        try:
            return adapter.setup_in_owner(
                fixturedef, request, state.loop.session_context, share_context=not theirs
            )
        finally:
            param = getattr(request, "param", None)
            record = state.stats.fixture_set_up(
                fixturedef,
                fixturedef.argname,
                fixturedef.scope,
                None if param is None else str(param)[:60],
                began,
            )
            # Finalizers run last first: this one marks the teardown's start.
            fixturedef.addfinalizer(record.tearing_down)
    if is_async:
        return adapter.setup_async_fixture(fixturedef, request)
    return None


def pytest_fixture_post_finalizer(
    fixturedef: adapter.FixtureDef[object], request: adapter.SubRequest
) -> None:
    """Note the end of a shared fixture instance's teardown, for the timeline."""
    stats = request.config.stash[_state_key].stats
    if stats is not None:
        stats.fixture_torn_down(fixturedef)


class TestBodies:
    """Runs the bodies of the ``async def`` tests this plugin runs, and of
    threaded sync tests."""

    def __init__(self, state: _PluginState) -> None:
        self._state = state

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run the body of an ``async def`` test that no other plugin runs,
        or of a threaded sync test in a worker thread."""
        __tracebackhide__ = True
        plan = pyfuncitem.stash.get(_plan_key, None)
        if plan is not None and plan.threaded and bridge.can_wait():
            self._call_in_a_thread(pyfuncitem)
            return True
        # Decided at collection: --trace later wraps the test function in a
        # sync function that returns the coroutine.
        if plan is None or not _is_ours_and_async(plan):
            return None
        if plugin_adapters.async_inner_test(pyfuncitem.obj) is not None:
            with plugin_adapters.examples_through_the_bridge(pyfuncitem.obj):
                adapter.call_async_test(pyfuncitem)
        else:
            adapter.call_async_test(pyfuncitem)
        return True

    def _call_in_a_thread(self, item: pytest.Function) -> None:
        __tracebackhide__ = True
        state = self._state
        if state.body_threads is None:
            state.body_threads = BodyThreads()
        running = state.body_threads.start(adapter.sync_test_body(item), contextvars.copy_context())
        try:
            result = bridge.wait_for(_outcome_of(running.future))
        except BaseException as exc:
            if running.future.done():
                raise
            # Stopped waiting (a time limit, -x, Ctrl-C): the thread runs on.
            places = stacks.thread_places(running.thread_id)
            place = stacks.users_place(places, item.config.rootpath)
            where = f" at {stacks.describe(place, item.config.rootpath)}" if place else ""
            note = (
                f"the test's thread, still running{where}, cannot be stopped: it runs on, "
                "and what it returns or raises is dropped"
            )
            if isinstance(exc, pytest.fail.Exception):
                raise pytest.fail.Exception(f"{exc.msg}; {note}", pytrace=exc.pytrace) from None
            if isinstance(exc, pytest.skip.Exception):
                raise pytest.skip.Exception(f"{exc.msg}; {note}") from None
            raise
        if result is not None:
            warnings.warn(
                pytest.PytestReturnNotNoneWarning(
                    f"the test function returned {type(result).__name__}, and pytest expects "
                    "None; use assert to check a result"
                ),
                stacklevel=1,
            )


async def _outcome_of(future: concurrent.futures.Future[T]) -> T:
    """Wait on the session loop for ``future``, set by another thread."""
    return await asyncio.wrap_future(future)


class VerboseReasons:
    """In verbose output, says why a test ran alone (it was written for
    another plugin that needs it, or it failed concurrently and ran again)
    and how long it waited for other tests. Registered only when there may
    be something to say."""

    def __init__(self, state: _PluginState) -> None:
        self._state = state

    def reason(self, report: pytest.TestReport) -> str | None:
        """Why the test of ``report`` ran alone, and how long it waited, in
        words; None when there is nothing to say."""
        state = self._state
        reason = state.alone_under.get(report.nodeid)
        if report.nodeid in state.reruns.failed_concurrently:
            reason = "run again alone after failing concurrently"
        waited = state.stats.wait_words(report.nodeid) if state.stats is not None else None
        if waited is not None and report.when != "teardown":
            reason = f"{reason}; {waited}" if reason else waited
        return reason

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> Generator[None, object, object]:
        """Add the reason to the verbose status word of such a test."""
        status = yield
        # A pytest-xdist worker's report brings its reason along.
        reason = getattr(report, "concurrently_reason", None) or self.reason(report)
        if reason is None or not isinstance(status, tuple):
            return status
        category, letter, word = status
        if isinstance(word, tuple):
            text, markup = word
            return category, letter, (f"{text} ({reason})", markup) if text else word
        return category, letter, f"{word} ({reason})" if word else word


class FailureCounter:
    """Counts the failures of concurrent tests, and of their runs alone, and
    hands every report of a concurrent session to its records."""

    def __init__(self, state: _PluginState) -> None:
        self._state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count ``report`` if it is a failure of a concurrent test."""
        state = self._state
        if state.stats is not None:
            state.stats.reported(report)
        if not report.failed:
            return
        state.reruns.record(report)
        if report.nodeid in state.concurrent_ids and report.nodeid not in state.reruns.failed_alone:
            state.failed_concurrently += 1

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """On the pytest-xdist controller, note the workers' report of
        misused markers: the run ends as a usage error, as without xdist."""
        if getattr(report, "concurrently_usage_error", False):
            self._state.usage_error_reported = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Leave the time a phase waited for run-time locks out of its duration,
    and mark a test the runner interrupted to stop the session."""
    if call.excinfo is not None:
        adapter.trim_warning_frames(call.excinfo.value)
    report = yield
    waited = locking.unreported_wait(item)
    if waited:
        report.duration = max(report.duration - waited, 0.0)
    stalls = blocking.current()
    if stalls is not None:
        stalls.report(item, report)
    if report.skipped and INTERRUPTED in item.stash:
        report.concurrently_interrupted = True  # type: ignore[attr-defined]
    return report


class WorkerReasons:
    """On a pytest-xdist worker: sends along with each report why its test
    ran alone and how long it waited, for the controller's verbose output."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the reason to the report."""
        report = yield
        verbose = item.config.pluginmanager.get_plugin("concurrently-verbose-reasons")
        reason = verbose.reason(report) if verbose is not None else None
        if reason:
            report.concurrently_reason = reason  # type: ignore[attr-defined]
        return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Once a test's fixtures are torn down, deal with the tasks it left
    running (see :mod:`.strays`); warn only when the teardown went well."""
    try:
        result = yield
    except BaseException:
        left = strays.current()
        if left is not None:
            left.settle(item, warn=False)
        raise
    left = strays.current()
    if left is not None:
        left.settle(item, warn=True)
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """Show a test interrupted by ``-x`` or ``--maxfail`` as interrupted,
    not as skipped."""
    if getattr(report, "concurrently_interrupted", False):
        return "interrupted", "!", "INTERRUPTED"
    return None


def _write_interrupted(terminalreporter: pytest.TerminalReporter, stats: RunStats) -> None:
    """After Ctrl-C, the tests that were in flight and where each was."""
    if not stats.interrupted:
        return
    count = len(stats.interrupted)
    terminalreporter.write_sep(
        "=", f"{count} {'test' if count == 1 else 'tests'} in flight when interrupted"
    )
    for nodeid, where in stats.interrupted:
        terminalreporter.write_line(f"{nodeid}: {where}")


def _write_waits(
    terminalreporter: pytest.TerminalReporter, waits: dict[str, tuple[float, list[str]]]
) -> None:
    """With ``--durations``, the longest waits for other tests, which the
    durations above leave out."""
    durations = terminalreporter.config.getoption("durations", None)
    if durations is None or not waits:
        return
    longest = sorted(waits.items(), key=lambda entry: entry[1][0], reverse=True)
    if durations > 0:
        longest = longest[:durations]
    terminalreporter.write_sep("=", f"slowest {len(longest)} waits for other tests")
    for nodeid, (seconds, reasons) in longest:
        terminalreporter.write_line(f"{seconds:02.2f}s {' and '.join(reasons)}: {nodeid}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Write the sections of a concurrent run: tests run again alone, the
    longest waits, the tests in flight at a Ctrl-C."""
    state = terminalreporter.config.stash[_state_key]
    state.reruns.summary(terminalreporter)
    if state.stats is not None:
        _write_waits(terminalreporter, state.stats.waits)
        _write_interrupted(terminalreporter, state.stats)
    elif state.worker_waits:
        _write_waits(terminalreporter, state.worker_waits)


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_terminal_summary")
def pytest_terminal_summary_end_of_run_line(
    terminalreporter: pytest.TerminalReporter,
) -> Generator[None, None, None]:
    """Print the end-of-run line after every other summary section (the
    short test summary among them), just above pytest's final line."""
    result = yield
    config = terminalreporter.config
    state = config.stash[_state_key]
    controller = config.pluginmanager.get_plugin("concurrently-xdist-controller")
    totals = controller.totals() if controller is not None else None
    if totals is None and state.stats is not None:
        totals = state.stats.totals()
    if totals is not None and totals.tests:
        line = totals.summary_line()
        reruns = state.reruns.failed_concurrently
        if reruns:
            passed = len(reruns) - len(state.reruns.failed_alone)
            line += f"; {len(reruns):,} failed concurrently and ran again alone ({passed:,} passed)"
        elif state.failed_concurrently and not state.reruns.enabled:
            line += (
                f"; {state.failed_concurrently:,} failed while running concurrently "
                "(--concurrently-rerun-alone runs them again alone)"
            )
        terminalreporter.write_line(line)
    elif state.nothing_concurrent is not None:
        terminalreporter.write_line(state.nothing_concurrent)
    if state.timeline_written is not None:
        terminalreporter.write_line(f"concurrently: timeline written to {state.timeline_written}")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    """Close the session loop after pytest has torn down what was left, and
    write the timeline, which the last teardowns end."""
    state = session.config.stash[_state_key]
    try:
        return (yield)
    finally:
        state.loop.close()
        _write_timeline(session.config, state)
        if state.usage_error_reported:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR


def _write_timeline(config: pytest.Config, state: _PluginState) -> None:
    where = config.getoption("concurrently_timeline", None)
    if not where or hasattr(config, "workerinput"):
        return
    path = Path(where)
    if not path.is_absolute():
        path = config.invocation_params.dir / path
    command = " ".join(["pytest", *config.invocation_params.args])
    controller = config.pluginmanager.get_plugin("concurrently-xdist-controller")
    if controller is not None:
        parts = [tuple(output["timeline"]) for output in controller.worker_outputs]
        data = timeline.merged([(str(w), d) for w, d in parts], command=command)
        timeline.write_document(path, data)
    else:
        timeline.write(path, state.stats or RunStats(), command=command)
    state.timeline_written = path


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put back the loop runner that was installed before :func:`pytest_configure`."""
    if _state_key in config.stash:
        bridge.set_idle_loop_runner(config.stash[_state_key].outer_loop_runner)
