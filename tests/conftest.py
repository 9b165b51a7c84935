"""Shared helpers for the plugin's tests.

Inner test sessions record what happened (start and end of tests and
fixtures) to ``events.jsonl`` in their directory with :data:`RECORDER`; the
outer tests read it with :func:`read_events` and assert on the order and the
overlap of intervals, never on wall-clock durations.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import dataclass

import pytest

#: Source of a ``recorder`` module for inner sessions: ``record(name, what)``
#: appends one event with a monotonic timestamp.
RECORDER = """
import json, os, time

def record(name, what, **extra):
    with open(os.path.join(os.path.dirname(__file__), "events.jsonl"), "a") as f:
        f.write(json.dumps({"name": name, "what": what, "t": time.monotonic(), **extra}) + "\\n")
"""


@dataclass(frozen=True)
class Event:
    name: str
    what: str
    t: float
    extra: dict[str, object]


def read_events(pytester: pytest.Pytester) -> list[Event]:
    path = pytester.path / "events.jsonl"
    events = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        name, what, t = data.pop("name"), data.pop("what"), data.pop("t")
        events.append(Event(name, what, t, data))
    return events


def intervals(
    events: list[Event], start: str = "start", end: str = "end"
) -> dict[str, tuple[float, float]]:
    """name -> (start time, end time) for every name that has both events."""
    starts = {e.name: e.t for e in events if e.what == start}
    ends = {e.name: e.t for e in events if e.what == end}
    return {name: (starts[name], ends[name]) for name in starts if name in ends}


def all_overlap(spans: dict[str, tuple[float, float]]) -> bool:
    """True when some instant lies inside every interval."""
    return max(s for s, _ in spans.values()) < min(e for _, e in spans.values())


def peak_overlap(spans: dict[str, tuple[float, float]]) -> int:
    """The most intervals that contain one instant."""
    points = sorted([(s, 1) for s, _ in spans.values()] + [(e, -1) for _, e in spans.values()])
    peak = current = 0
    for _, step in points:
        current += step
        peak = max(peak, current)
    return peak


@pytest.fixture
def recorder(pytester: pytest.Pytester) -> None:
    """Make ``from recorder import record`` work in the inner session."""
    pytester.makepyfile(recorder=RECORDER)
    pytester.syspathinsert()


#: Options every inner session gets: no pytest-asyncio, anyio or
#: pytest-randomly plugin (the tests that check coexistence with them turn
#: them back on), so inner outcomes depend on this plugin alone.
INNER_OPTIONS = "-p no:asyncio -p no:anyio -p no:randomly"


@pytest.fixture(autouse=True)
def _without_other_async_plugins(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "pytester" in request.fixturenames:
        # pytester clears PYTEST_ADDOPTS when it is created, so set it after.
        request.getfixturevalue("pytester")
        options = INNER_OPTIONS
        if os.environ.get("CONCURRENTLY_INNER_XDIST") and request.node.get_closest_marker(
            "under_xdist"
        ):
            options += " -p xdist -n 2"
        monkeypatch.setenv("PYTEST_ADDOPTS", options)


#: Suites written for pytest-asyncio and anyio, run as inner sessions by
#: test_dropin_corpus.py, never collected by the outer session.
collect_ignore = ["dropin_corpus"]


def installed_version(distribution: str) -> tuple[int, ...]:
    """The major and minor version of an installed distribution, (0,) when
    it is not installed."""
    try:
        text = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return (0,)
    return tuple(int("".join(c for c in part if c.isdigit()) or 0) for part in text.split(".")[:2])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of concurrency, control and faults: with
    ``CONCURRENTLY_INNER_XDIST=1`` their inner sessions run under
    pytest-xdist with two workers, except those whose checks assume one
    process (:data:`ONE_PROCESS`), which are skipped saying why."""
    under_xdist = bool(os.environ.get("CONCURRENTLY_INNER_XDIST"))
    for item in items:
        if item.path.name not in UNDER_XDIST_MODULES:
            continue
        item.add_marker("under_xdist")
        name = getattr(item, "originalname", item.name)
        if under_xdist and name in ONE_PROCESS:
            item.add_marker(pytest.mark.skip(reason=f"one process: {ONE_PROCESS[name]}"))


#: The modules whose inner sessions also run under pytest-xdist.
UNDER_XDIST_MODULES = {
    "test_concurrency.py",
    "test_resources.py",
    "test_locks.py",
    "test_faults.py",
    "test_timeouts.py",
    "test_stopping.py",
    "test_blocking.py",
    "test_stray_tasks.py",
}

_PER_WORKER = "--concurrency and running alone hold within each worker, as documented"
_ISOLATED_LAST = "under pytest-xdist isolated tests run last, after every other test"
_USAGE_OUTPUT = "the workers report a usage error as one collection error, in other words"
_EXIT = "pytest-xdist's controller ends a stopped run with its own exit code"
_SPLIT = "the tests are split between workers, each with its own module state and fixtures"
_LINE = "the end-of-run line names the workers"
_LOCAL_LOCK = "a run-time lock holds within its worker (WorkerLocalLockWarning)"

#: Tests whose checks assume every test runs in one process, and why.
ONE_PROCESS = {
    "test_marked_tests_overlap": _LINE,
    "test_concurrency_limits_tests_in_flight": _PER_WORKER,
    "test_concurrency_ini_option": _PER_WORKER,
    "test_concurrency_one_runs_one_at_a_time": _PER_WORKER,
    "test_mode_off_runs_marked_tests_one_at_a_time": "workers overlap, as under plain xdist",
    "test_marked_mode_runs_unmarked_async_tests_alone": _PER_WORKER,
    "test_sync_tests_run_alone_in_collection_order": _PER_WORKER,
    "test_isolated_wins_over_module_marker": _ISOLATED_LAST,
    "test_isolated_tests_run_alone_in_auto_mode": _ISOLATED_LAST,
    "test_exit_cancels_tests_in_flight_and_tears_them_down": _EXIT,
    "test_misused_resource_markers_name_the_test": _USAGE_OUTPUT,
    "test_two_limits_for_one_resource_are_an_error": _USAGE_OUTPUT,
    "test_misused_resource_decorator_fails_at_import": _EXIT,
    "test_the_fixture_decorator_on_a_test_is_refused": _USAGE_OUTPUT,
    "test_a_bad_marker_timeout_names_the_test": _USAGE_OUTPUT,
    "test_a_run_time_lock_excludes_declared_holders_and_other_locks": _LOCAL_LOCK,
    "test_a_declared_holder_waits_for_a_run_time_hold": _LOCAL_LOCK,
    "test_waits_show_in_verbose_output_and_the_end_of_run_line": "xdist's verbose lines differ",
    "test_durations_leave_lock_waits_out_and_list_them": _LOCAL_LOCK,
    "test_misbehaving_tests_are_each_accounted_for": "its report counter runs in every process",
    "test_a_shared_fixture_a_timed_out_test_waited_for_is_not_disturbed": _SPLIT,
    "test_a_hung_shared_teardown_fails_its_last_user_and_does_not_hang_the_session": _SPLIT,
    "test_the_first_failure_interrupts_the_tests_in_flight": _EXIT,
    "test_pytest_exit_in_a_fixture_setup_stops_in_order": _EXIT,
    "test_another_plugins_shouldstop_interrupts_the_tests_in_flight": (
        "another worker's test may end before the stop reaches it"
    ),
    "test_ctrl_c_lists_the_tests_in_flight_and_where_they_were": "Ctrl-C reaches the controller",
    "test_a_blocking_test_gets_a_warning_naming_the_blocking_line": _LINE,
    "test_a_task_left_running_is_cancelled_and_named_on_its_test": _SPLIT,
    "test_stray_tasks_can_be_left_running_with_a_warning": _SPLIT,
    "test_stray_tasks_can_be_ignored": _SPLIT,
}
