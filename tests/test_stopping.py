"""Stopping a session with tests in flight: ``-x``, ``--maxfail``, another
plugin's ``shouldstop``, ``pytest.exit`` and Ctrl-C."""

from __future__ import annotations

import pytest
from conftest import read_events

pytestmark = pytest.mark.usefixtures("recorder")

IN_FLIGHT = """
import asyncio
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent
waiting = []
all_waiting = asyncio.Event()

@pytest.fixture
async def resource(request):
    yield
    record(request.node.name, "teardown")

async def test_fails(resource):
    await asyncio.wait_for(all_waiting.wait(), 10)
    assert False

@pytest.mark.parametrize("n", range(3))
async def test_waits(n, resource):
    waiting.append(n)
    if len(waiting) == 3:
        all_waiting.set()
    await asyncio.sleep(30)

async def test_never_starts():
    record("never", "start")
"""


@pytest.mark.parametrize("stop", [("-x",), ("--maxfail=1",)])
def test_the_first_failure_interrupts_the_tests_in_flight(
    pytester: pytest.Pytester, stop: tuple[str, ...]
) -> None:
    pytester.makepyfile(IN_FLIGHT)
    result = pytester.runpytest("--concurrency=4", "-rA", "--junitxml=out.xml", *stop)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes == {"failed": 1, "interrupted": 3}
    result.stdout.fnmatch_lines(["*.py F!!!", "*! stopping after 1 failures !*"])
    # Every test that started was torn down; the next one never started.
    events = read_events(pytester)
    torn_down = {e.name for e in events if e.what == "teardown"}
    assert torn_down == {"test_fails", "test_waits[0]", "test_waits[1]", "test_waits[2]"}
    assert not [e for e in events if e.name == "never"]
    junit = (pytester.path / "out.xml").read_text()
    assert junit.count("<testcase ") == 4
    assert junit.count('<skipped type="pytest.skip" message="interrupted: stopping after') == 3


def test_another_plugins_shouldstop_interrupts_the_tests_in_flight(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
def pytest_runtest_logreport(report):
    if report.failed:
        import pytest
        pytest.stop_reason = "a plugin stopped it"

def pytest_runtest_logfinish(nodeid):
    import pytest
    reason = getattr(pytest, "stop_reason", None)
    if reason:
        session = pytest.current_session
        session.shouldstop = reason

def pytest_sessionstart(session):
    import pytest
    pytest.current_session = session
"""
    )
    pytester.makepyfile(IN_FLIGHT)
    result = pytester.runpytest("--concurrency=4")
    assert result.parseoutcomes() == {"failed": 1, "interrupted": 3}
    result.stdout.fnmatch_lines(["*! Interrupted: a plugin stopped it !*"])
    torn_down = {e.name for e in read_events(pytester) if e.what == "teardown"}
    assert len(torn_down) == 4


def test_pytest_exit_in_a_fixture_setup_stops_in_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import asyncio
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent
started = asyncio.Event()

@pytest.fixture
async def resource(request):
    yield
    record(request.node.name, "teardown")

@pytest.fixture
async def leaves():
    await asyncio.wait_for(started.wait(), 10)
    pytest.exit("the environment is gone")

async def test_leaves(resource, leaves):
    pass

async def test_running(resource):
    started.set()
    await asyncio.sleep(30)
"""
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*! _pytest.outcomes.Exit: the environment is gone !*"])
    assert "FAILED" not in result.stdout.str()
    torn_down = {e.name for e in read_events(pytester) if e.what == "teardown"}
    assert torn_down == {"test_leaves", "test_running"}


def test_a_test_that_closes_the_loop_fails_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import asyncio
import pytest

pytestmark = pytest.mark.concurrent

async def test_closes():
    asyncio.get_running_loop().close()

async def test_neighbour():
    await asyncio.sleep(0.1)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: Cannot close a running event loop*"])


def test_ctrl_c_lists_the_tests_in_flight_and_where_they_were(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
import asyncio
import os
import signal
import pytest

pytestmark = pytest.mark.concurrent
waiting = []
both_waiting = asyncio.Event()

async def test_quick():
    pass

async def wait_here():
    await asyncio.sleep(30)

async def test_interrupts():
    await asyncio.wait_for(both_waiting.wait(), 10)
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.sleep(30)

@pytest.mark.parametrize("n", range(2))
async def test_waits(n):
    waiting.append(n)
    if len(waiting) == 2:
        both_waiting.set()
    await wait_here()
"""
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*= 3 tests in flight when interrupted =*",
            "*::test_interrupts: test_ctrl_c_*.py:20 in test_interrupts",
            "*::test_waits[[]0[]]: test_ctrl_c_*.py:14 in wait_here",
            "*::test_waits[[]1[]]: test_ctrl_c_*.py:14 in wait_here",
            # Only the test pytest reports an outcome for.
            "concurrently: 1 test in *",
        ]
    )
    # pytest's own line names where the first of them was, not the runner.
    result.stdout.fnmatch_lines(
        ["*! KeyboardInterrupt !*", "*test_ctrl_c_*.py:20: KeyboardInterrupt", "*= 1 passed in *"]
    )
