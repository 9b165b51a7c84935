"""Which tests run concurrently: modes, markers and their validation."""

from __future__ import annotations

import enum
import inspect
from dataclasses import dataclass, replace

import pytest

from . import _plugin_adapters as plugin_adapters
from ._pytest_adapter import fixture_functions, is_plain_test_function
from .resources import (
    RESOURCE_MARKER,
    ResourceNeed,
    declared_resources,
    parse_resource_arguments,
)

__all__ = [
    "CONCURRENT_MARKER",
    "ISOLATED_MARKER",
    "ISOLATING_FIXTURES",
    "Mode",
    "TestPlan",
    "plan_test",
]

CONCURRENT_MARKER = "concurrent"
ISOLATED_MARKER = "isolated"

#: The default of ``concurrently_isolated_fixtures``: fixtures whose changes
#: every test in flight would see, which make a test run alone.
ISOLATING_FIXTURES = ("monkeypatch", "mocker", "capfd", "capfdbinary")

#: Fixtures that make a test run alone whatever that option says: what they
#: capture cannot be told apart per test.
_ALWAYS_ISOLATING = {
    "capfd": "captures the process's file descriptors 1 and 2, which cannot be told apart per test",
    "capfdbinary": "captures the process's file descriptors 1 and 2, which cannot be told "
    "apart per test",
}


#: Fixtures whose patches a threaded body cannot make: the layers that let
#: overlapping tests patch and unpatch in any order assume that a test is
#: only ever switched away from at an ``await``, and a thread is preempted
#: anywhere. A sync test that uses one runs on the loop's thread instead.
_NOT_IN_THREADS = frozenset(
    {"monkeypatch", "mocker", "class_mocker", "module_mocker", "package_mocker", "session_mocker"}
)


class Mode(enum.Enum):
    """The value of ``concurrently_mode``."""

    OFF = "off"
    """Nothing runs concurrently; async tests still run, one at a time."""
    MARKED = "marked"
    """Async tests marked ``concurrent`` run concurrently."""
    AUTO = "auto"
    """Every async test the plugin runs is concurrent unless marked ``isolated``."""


@dataclass(frozen=True, slots=True)
class TestPlan:
    """How one collected test will run.

    :param concurrent: it may be in flight beside other concurrent tests.
    :param owner: the plugin that runs its async body, when that is not this
        one (``"pytest-asyncio"``, ``"anyio"``); None for ours or sync tests.
    :param is_async: it is an ``async def`` test function.
    :param taken_from: the plugin it was written for, when this plugin runs
        it instead (see :mod:`._plugin_adapters`).
    :param alone_because: why an async test that would be concurrent runs
        alone instead (a test written for another plugin stays with it; a
        test uses a fixture that isolates it), in words for the user.
    :param interleaved: a sync test that runs between concurrent tests: it
        is admitted like them, and while its code runs, nothing else does.
    :param resources: the resources its markers say it holds, every
        declaration as written (the limits they give are checked across the
        run).
    :param group: the group of a concurrent test (``concurrent(group=...)``).
    :param timeout: its own time limit in seconds, 0 for none
        (``concurrent(timeout=...)``); None to take the run's.
    :param threaded: a sync test whose body runs in a worker thread, in
        flight beside other tests (``concurrent(thread=True)``, or
        ``concurrently_sync_tests = thread``).
    """

    concurrent: bool
    owner: str | None = None
    is_async: bool = False
    taken_from: str | None = None
    alone_because: str | None = None
    interleaved: bool = False
    resources: tuple[ResourceNeed, ...] = ()
    group: str | None = None
    timeout: float | None = None
    threaded: bool = False


class MarkerError(Exception):
    """A test is marked in a way that cannot work.

    :param nodeid: the test.
    :param problems: (cause, fix) pairs in words for the user, one per thing
        that is wrong (each fixture that cannot be used, say).
    """

    def __init__(self, nodeid: str, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{nodeid}: {cause}; {fix}" for cause, fix in problems))
        self.nodeid = nodeid
        self.problems = problems


def plan_test(
    item: pytest.Item,
    mode: Mode,
    *,
    interleave_sync: bool = False,
    thread_sync: bool = False,
    isolating: frozenset[str] = frozenset(ISOLATING_FIXTURES),
) -> TestPlan:
    """Decide how ``item`` runs under ``mode``.

    :param interleave_sync: in auto mode, let a plain sync test function run
        between concurrent tests instead of alone (see docs/semantics.md).
    :param thread_sync: run the body of every sync test that auto mode, or a
        ``concurrent`` marker, makes concurrent in a worker thread
        (``concurrently_sync_tests = thread``).
    :param isolating: fixture names that make a test run alone
        (``concurrently_isolated_fixtures``).
    :raises MarkerError: for a misused ``concurrent``, ``isolated`` or
        ``resource`` marker.
    """
    plan = _plan_running(item, mode, interleave_sync, thread_sync, isolating)
    resources = _resource_needs(item)
    concurrent_mark = item.get_closest_marker(CONCURRENT_MARKER) if plan.concurrent else None
    group = timeout = None
    if concurrent_mark is not None:
        group = concurrent_mark.kwargs.get("group")
        timeout = concurrent_mark.kwargs.get("timeout")
    if resources or group is not None or timeout is not None:
        return replace(
            plan,
            resources=resources,
            group=group,
            timeout=float(timeout) if timeout is not None else None,
        )
    return plan


def _resource_needs(item: pytest.Item) -> tuple[ResourceNeed, ...]:
    if declared_resources(getattr(item, "obj", None)):
        cause = "is decorated with pytest_concurrently.resource, which is for fixtures"
        fix = "mark the test @pytest.mark.resource(...) instead"
        raise MarkerError(item.nodeid, [(cause, fix)])
    needs: list[ResourceNeed] = []
    for mark in item.iter_markers(RESOURCE_MARKER):
        try:
            needs += parse_resource_arguments(mark.args, mark.kwargs)
        except ValueError as exc:
            cause = f"@pytest.mark.resource{_format_arguments(mark)} {exc}"
            fix = (
                "write it as @pytest.mark.resource('name', ..., mode='exclusive'|'shared', limit=N)"
            )
            raise MarkerError(item.nodeid, [(cause, fix)]) from None
    return tuple(needs)


def _plan_running(
    item: pytest.Item,
    mode: Mode,
    interleave_sync: bool,
    thread_sync: bool,
    isolating: frozenset[str],
) -> TestPlan:
    closest = _closest_marks(item)
    concurrent_mark = closest.get(CONCURRENT_MARKER)
    isolated_mark = closest.get(ISOLATED_MARKER)
    # Markers written on the function itself; a hook that adds ``concurrent``
    # to every item, sync ones included, is not misusing it.
    own_names = {mark.name for mark in getattr(getattr(item, "obj", None), "pytestmark", ())}
    is_async = is_async_test(item)
    _check_markers(item, closest, own_names, is_async, thread_sync)
    if not is_async:
        threaded = _runs_in_a_thread(item, mode, closest, thread_sync, isolating)
        if threaded:
            return TestPlan(concurrent=True, threaded=True)
        interleaves = (
            interleave_sync
            and mode is Mode.AUTO
            and isolated_mark is None
            and is_plain_test_function(item)
            and not _why_not_concurrent(item)
            # In flight beside async tests, its patches would be seen by them.
            and _isolating_fixture(item, isolating) is None
        )
        return TestPlan(concurrent=interleaves, interleaved=interleaves)
    claim = plugin_adapters.claim(item)
    owner = claim.owner if claim is not None else None
    wanted = mode is Mode.AUTO or (mode is Mode.MARKED and concurrent_mark is not None)
    if not wanted or isolated_mark is not None:
        return TestPlan(concurrent=False, owner=owner, is_async=True)
    problems = _why_not_concurrent(item)
    isolated_by = _isolating_fixture(item, isolating)
    if claim is None:
        if problems:
            raise MarkerError(item.nodeid, problems)
        if isolated_by is not None:
            return TestPlan(concurrent=False, is_async=True, alone_because=isolated_by)
        return TestPlan(concurrent=True, is_async=True)
    reason = claim.alone_because or (problems[0][0] if problems else None)
    if reason is None and isolated_by is not None:
        return TestPlan(concurrent=False, owner=owner, is_async=True, alone_because=isolated_by)
    if reason is None:
        return TestPlan(concurrent=True, is_async=True, taken_from=claim.owner)
    if concurrent_mark is not None and (mode is Mode.MARKED or CONCURRENT_MARKER in own_names):
        cause = f"is marked concurrent, but {reason}"
        fix = f"remove the concurrent marker, and {claim.owner} runs it alone"
        raise MarkerError(item.nodeid, [(cause, fix)])
    return TestPlan(concurrent=False, owner=owner, is_async=True, alone_because=reason)


def _runs_in_a_thread(
    item: pytest.Item,
    mode: Mode,
    closest: dict[str, pytest.Mark],
    thread_sync: bool,
    isolating: frozenset[str],
) -> bool:
    """Whether the sync test ``item`` runs concurrently, its body in a
    worker thread: marked ``concurrent(thread=True)``, or made concurrent by
    auto mode or a ``concurrent`` marker under ``concurrently_sync_tests =
    thread``; never when it is isolated, uses an isolating fixture, or
    patches through ``monkeypatch`` or ``mocker``."""
    concurrent = closest.get(CONCURRENT_MARKER)
    if closest.get(ISOLATED_MARKER) is not None or not is_plain_test_function(item):
        return False
    if concurrent is not None and "thread" in concurrent.kwargs:
        wanted = bool(concurrent.kwargs["thread"]) and mode is not Mode.OFF
    else:
        wanted = thread_sync and (
            mode is Mode.AUTO or (mode is Mode.MARKED and concurrent is not None)
        )
    return (
        wanted
        and _isolating_fixture(item, isolating) is None
        and _NOT_IN_THREADS.isdisjoint(item.fixturenames)  # type: ignore[attr-defined]
        and not _why_not_concurrent(item)
    )


def _check_markers(
    item: pytest.Item,
    closest: dict[str, pytest.Mark],
    own_names: set[str],
    is_async: bool,
    thread_sync: bool,
) -> None:
    isolated = closest.get(ISOLATED_MARKER)
    if isolated is not None and (isolated.args or isolated.kwargs):
        cause = f"@pytest.mark.isolated takes no arguments, got {_format_arguments(isolated)}"
        raise MarkerError(item.nodeid, [(cause, "write @pytest.mark.isolated")])
    concurrent = closest.get(CONCURRENT_MARKER)
    if concurrent is not None and (
        concurrent.args or set(concurrent.kwargs) - {"group", "timeout", "thread"}
    ):
        cause = (
            "@pytest.mark.concurrent takes only group=, timeout= and thread=, got "
            f"{_format_arguments(concurrent)}"
        )
        fix = "write @pytest.mark.concurrent, or with group='name', timeout=seconds or thread=True"
        raise MarkerError(item.nodeid, [(cause, fix)])
    thread = concurrent.kwargs.get("thread") if concurrent is not None else None
    if thread is not None and not isinstance(thread, bool):
        cause = f"@pytest.mark.concurrent(thread=...) needs True or False, got {thread!r}"
        raise MarkerError(item.nodeid, [(cause, "write thread=True")])
    if thread and is_async and CONCURRENT_MARKER in own_names:
        cause = (
            "@pytest.mark.concurrent(thread=True) is for sync tests, and this test is an "
            "'async def' function, which runs on the event loop"
        )
        raise MarkerError(item.nodeid, [(cause, "remove thread=True")])
    timeout = concurrent.kwargs.get("timeout") if concurrent is not None else None
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
    ):
        cause = f"@pytest.mark.concurrent(timeout=...) needs seconds, 0 or more, got {timeout!r}"
        raise MarkerError(item.nodeid, [(cause, "give a number of seconds, as in timeout=30")])
    group = concurrent.kwargs.get("group") if concurrent is not None else None
    if (
        concurrent is not None
        and "group" in concurrent.kwargs
        and (not isinstance(group, str) or not group)
    ):
        cause = f"@pytest.mark.concurrent(group=...) needs a non-empty string, got {group!r}"
        raise MarkerError(item.nodeid, [(cause, "name the group, as in group='payments'")])
    if {CONCURRENT_MARKER, ISOLATED_MARKER} <= own_names:
        raise MarkerError(
            item.nodeid, [("is marked both concurrent and isolated", "keep one of the two")]
        )
    if CONCURRENT_MARKER in own_names and not is_async and not (thread or thread_sync):
        cause = (
            "@pytest.mark.concurrent applies to async tests, and this test is not an "
            "'async def' function"
        )
        fix = "make the test async, run it in a thread with thread=True, or remove the marker"
        raise MarkerError(item.nodeid, [(cause, fix)])


def _isolating_fixture(item: pytest.Item, isolating: frozenset[str]) -> str | None:
    """Why ``item`` runs alone because of a fixture it uses, in words; None
    when no fixture it uses makes it."""
    for name in item.fixturenames:  # type: ignore[attr-defined]
        always = _ALWAYS_ISOLATING.get(name)
        if always is not None:
            return f"it uses {name}, which {always}"
        if name in isolating:
            return (
                f"it uses {name}, whose changes every test in flight would see "
                "(concurrently_isolated_fixtures)"
            )
    return None


def _why_not_concurrent(item: pytest.Item) -> list[tuple[str, str]]:
    """Everything in a test that keeps it from sharing the process with
    other tests in flight, each with its fix, in words for the user."""
    problems = []
    for name, function in fixture_functions(item):
        problem = plugin_adapters.fixture_problem(function)
        if problem is not None:
            problems.append(
                (f"uses the fixture {name}, {problem}", "define it with @pytest.fixture instead")
            )
    return problems


def is_async_test(item: pytest.Item) -> bool:
    """Whether ``item`` is a pytest test function defined with ``async def``,
    under hypothesis's ``@given`` or not (``unittest`` test cases run their
    coroutines themselves)."""
    if not is_plain_test_function(item):
        return False
    function = getattr(item, "obj", None)
    return inspect.iscoroutinefunction(function) or is_hypothesis_test(item)


def is_hypothesis_test(item: pytest.Item) -> bool:
    """Whether ``item`` is an ``async def`` test under hypothesis's ``@given``;
    no two such tests are in flight at once."""
    return plugin_adapters.async_inner_test(getattr(item, "obj", None)) is not None


#: The markers a plan looks at; the closest of each is found in one pass.
_PLANNING_MARKERS = frozenset({CONCURRENT_MARKER, ISOLATED_MARKER})


def _closest_marks(item: pytest.Item) -> dict[str, pytest.Mark]:
    closest: dict[str, pytest.Mark] = {}
    for mark in item.iter_markers():
        if mark.name in _PLANNING_MARKERS:
            closest.setdefault(mark.name, mark)
    return closest


def _format_arguments(mark: pytest.Mark) -> str:
    parts = [repr(arg) for arg in mark.args]
    parts += [f"{key}={value!r}" for key, value in mark.kwargs.items()]
    return "(" + ", ".join(parts) + ")"
