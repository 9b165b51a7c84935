"""Which tests run concurrently: modes, markers and their validation."""

from __future__ import annotations

import enum
import inspect
from dataclasses import dataclass

import pytest

from ._pytest_adapter import fixture_functions, is_plain_test_function

__all__ = [
    "CONCURRENT_MARKER",
    "ISOLATED_MARKER",
    "Mode",
    "TestPlan",
    "plan_test",
]

CONCURRENT_MARKER = "concurrent"
ISOLATED_MARKER = "isolated"

#: Fixtures that swap process-wide state for the length of a test, which two
#: tests in flight at once would swap under each other.
PROCESS_WIDE_FIXTURES = {
    "capsys": "replaces sys.stdout and sys.stderr for the whole process",
    "capsysbinary": "replaces sys.stdout and sys.stderr for the whole process",
    "capteesys": "replaces sys.stdout and sys.stderr for the whole process",
    "capfd": "redirects the process's file descriptors 1 and 2",
    "capfdbinary": "redirects the process's file descriptors 1 and 2",
    "recwarn": "records warnings through the process-wide warnings module",
}


class Mode(enum.Enum):
    """The value of ``concurrently_mode``."""

    OFF = "off"
    """Nothing runs concurrently; async tests still run, one at a time."""
    MARKED = "marked"
    """Async tests marked ``concurrent`` run concurrently."""
    AUTO = "auto"
    """Every async test the plugin runs is concurrent unless marked ``isolated``."""


@dataclass(frozen=True)
class TestPlan:
    """How one collected test will run.

    :param concurrent: it may be in flight beside other concurrent tests.
    :param owner: the plugin that runs its async body, when that is not this
        one (``"pytest-asyncio"``, ``"anyio"``); None for ours or sync tests.
    :param is_async: it is an ``async def`` test function.
    """

    concurrent: bool
    owner: str | None = None
    is_async: bool = False


class MarkerError(Exception):
    """A marker is used in a way that cannot work; the message names the test
    and the fix."""


def plan_test(item: pytest.Item, mode: Mode) -> TestPlan:
    """Decide how ``item`` runs under ``mode``.

    :raises MarkerError: for a misused ``concurrent`` or ``isolated`` marker.
    """
    closest = _closest_marks(item)
    concurrent_mark = closest.get(CONCURRENT_MARKER)
    isolated_mark = closest.get(ISOLATED_MARKER)
    for mark in (concurrent_mark, isolated_mark):
        if mark is not None and (mark.args or mark.kwargs):
            raise MarkerError(
                f"{item.nodeid}: @pytest.mark.{mark.name} takes no arguments, got "
                f"{_format_arguments(mark)}; write @pytest.mark.{mark.name}"
            )
    # Markers written on the function itself; a hook that adds ``concurrent``
    # to every item, sync ones included, is not misusing it.
    own_names = {mark.name for mark in getattr(getattr(item, "obj", None), "pytestmark", ())}
    if {CONCURRENT_MARKER, ISOLATED_MARKER} <= own_names:
        raise MarkerError(
            f"{item.nodeid}: is marked both concurrent and isolated; keep one of the two"
        )
    is_async = is_async_test(item)
    if CONCURRENT_MARKER in own_names and not is_async:
        raise MarkerError(
            f"{item.nodeid}: @pytest.mark.concurrent applies to async tests, and this "
            "test is not an 'async def' function; remove the marker or make the test async"
        )
    owner = _other_owner(item, closest) if is_async else None
    if mode is Mode.OFF or not is_async or isolated_mark is not None:
        return TestPlan(concurrent=False, owner=owner, is_async=is_async)
    wants_concurrency = mode is Mode.AUTO or concurrent_mark is not None
    if not wants_concurrency:
        return TestPlan(concurrent=False, owner=owner, is_async=is_async)
    if owner is not None:
        if mode is Mode.AUTO and concurrent_mark is None:
            return TestPlan(concurrent=False, owner=owner, is_async=is_async)
        raise MarkerError(
            f"{item.nodeid}: is marked concurrent but is run by {owner} "
            f"({_owner_hint(owner)}); concurrent tests run on pytest-concurrently's loop, "
            f"so remove the {owner} marker from this test, or the concurrent marker"
        )
    for name in item.fixturenames:  # type: ignore[attr-defined]
        reason = PROCESS_WIDE_FIXTURES.get(name)
        if reason is not None:
            raise MarkerError(
                f"{item.nodeid}: uses the {name} fixture, which {reason}, so it cannot "
                "share the process with other tests in flight; mark the test "
                "@pytest.mark.isolated (it then runs alone) or capture output another way"
            )
    for name, function in fixture_functions(item):
        # pytest-asyncio marks the fixtures it runs on its own loop.
        if getattr(function, "_force_asyncio_fixture", False):
            raise MarkerError(
                f"{item.nodeid}: uses the fixture {name}, made with "
                "@pytest_asyncio.fixture, which runs on pytest-asyncio's loop and cannot "
                "run inside pytest-concurrently's; define it with @pytest.fixture instead"
            )
    if "filterwarnings" in closest:
        raise MarkerError(
            f"{item.nodeid}: has a filterwarnings marker, but warning filters are "
            "process-wide and would apply to every test in flight; mark the test "
            "@pytest.mark.isolated, or move the filter to the 'filterwarnings' ini option"
        )
    return TestPlan(concurrent=True, is_async=True)


def is_async_test(item: pytest.Item) -> bool:
    """Whether ``item`` is a pytest test function defined with ``async def``
    (``unittest`` test cases run their coroutines themselves)."""
    function = getattr(item, "obj", None)
    return is_plain_test_function(item) and inspect.iscoroutinefunction(function)


#: The markers a plan looks at; the closest of each is found in one pass.
_PLANNING_MARKERS = frozenset(
    {CONCURRENT_MARKER, ISOLATED_MARKER, "filterwarnings", "asyncio", "anyio"}
)


def _closest_marks(item: pytest.Item) -> dict[str, pytest.Mark]:
    closest: dict[str, pytest.Mark] = {}
    for mark in item.iter_markers():
        if mark.name in _PLANNING_MARKERS:
            closest.setdefault(mark.name, mark)
    return closest


def _other_owner(item: pytest.Item, closest: dict[str, pytest.Mark]) -> str | None:
    plugins = item.config.pluginmanager
    if "asyncio" in closest and plugins.has_plugin("asyncio"):
        return "pytest-asyncio"
    if plugins.has_plugin("anyio") and (
        "anyio" in closest or "anyio_backend" in getattr(item, "fixturenames", ())
    ):
        return "anyio"
    return None


def _owner_hint(owner: str) -> str:
    if owner == "pytest-asyncio":
        return "it has the asyncio marker, or pytest-asyncio runs in auto mode"
    return "it has the anyio marker or uses the anyio_backend fixture"


def _format_arguments(mark: pytest.Mark) -> str:
    parts = [repr(arg) for arg in mark.args]
    parts += [f"{key}={value!r}" for key, value in mark.kwargs.items()]
    return "(" + ", ".join(parts) + ")"
