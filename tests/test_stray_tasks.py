"""Tasks a test leaves running are named on that test and cancelled."""

from __future__ import annotations

import pytest
from conftest import read_events

pytestmark = pytest.mark.usefixtures("recorder")

LEAKS = """
import asyncio
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent
kept = []

async def poll_forever():
    try:
        while True:
            await asyncio.sleep(0.01)
    finally:
        record("poller", "stopped")

@pytest.fixture(scope="module")
async def shared_background():
    task = asyncio.create_task(asyncio.sleep(30))
    yield
    record("shared task", "cancelled" if task.cancelled() else "running")
    task.cancel()

async def test_leaks(shared_background):
    kept.append(asyncio.create_task(poll_forever()))
    await asyncio.sleep(0.05)

async def test_tidy(shared_background):
    task = asyncio.create_task(asyncio.sleep(0.01))
    await task

async def test_later(shared_background):
    await asyncio.sleep(0.2)
    record("later", "poller done" if kept[0].done() else "poller running")
"""


def test_a_task_left_running_is_cancelled_and_named_on_its_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(LEAKS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_leaks",
            "*StrayTaskWarning: *::test_leaks left a task running when it ended, which was "
            "cancelled: poll_forever() at *.py:11 in poll_forever",
        ]
    )
    events = {(e.name, e.what) for e in read_events(pytester)}
    assert ("poller", "stopped") in events
    assert ("later", "poller done") in events
    # A task started by a shared fixture belongs to the fixture.
    assert ("shared task", "running") in events


def test_stray_tasks_can_be_left_running_with_a_warning(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_stray_tasks = warn\n")
    pytester.makepyfile(LEAKS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(["*::test_leaks left a task running when it ended: poll*"])
    assert ("later", "poller running") in {(e.name, e.what) for e in read_events(pytester)}


def test_stray_tasks_can_be_ignored(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_stray_tasks = ignore\n")
    pytester.makepyfile(LEAKS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("*StrayTaskWarning*")


def test_a_bad_stray_tasks_setting_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_stray_tasks = sometimes\n")
    pytester.makepyfile("async def test_nothing(): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*the concurrently_stray_tasks ini option must be one of cancel, warn, ignore*"]
    )
