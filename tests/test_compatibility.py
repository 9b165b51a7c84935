"""pytest features and test kinds that must keep working beside the plugin."""

from __future__ import annotations

import pytest
from conftest import read_events

pytestmark = pytest.mark.usefixtures("recorder")

WITH_ASYNC_FIXTURE = """
import asyncio
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

@pytest.fixture
async def resource():
    record("resource", "setup")
    await asyncio.sleep(0.01)
    yield 1

async def test_one(resource):
    pass

async def test_two(resource):
    pass
"""


def test_setup_plan_does_not_run_async_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(WITH_ASYNC_FIXTURE)
    result = pytester.runpytest("--setup-plan")
    result.stdout.fnmatch_lines(["*SETUP    F resource*"])
    assert not (pytester.path / "events.jsonl").exists()


def test_setup_show_shows_async_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(WITH_ASYNC_FIXTURE)
    result = pytester.runpytest("--setup-show")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*SETUP    F resource*", "*TEARDOWN F resource*"])
    assert [e.what for e in read_events(pytester)] == ["setup", "setup"]


def test_unittest_async_test_cases_run_as_unittest_runs_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import unittest

        class TestCase(unittest.IsolatedAsyncioTestCase):
            async def test_async(self):
                await asyncio.sleep(0.01)

            async def test_fails(self):
                self.assertEqual(1, 2)
        """
    )
    result = pytester.runpytest("--concurrently-mode=auto")
    result.assert_outcomes(passed=1, failed=1)


def test_xdist_workers_run_concurrent_tests(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(WITH_ASYNC_FIXTURE)
    result = pytester.runpytest("-p", "xdist", "-n", "1")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["concurrently: 2 tests in *"])


def test_xdist_with_mode_off_runs_async_tests(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(WITH_ASYNC_FIXTURE)
    result = pytester.runpytest("-p", "xdist", "-n", "2", "--concurrently-mode=off")
    result.assert_outcomes(passed=2)


def test_interrupt_tears_down_tests_in_flight(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import os
        import signal
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent
        waiting = []
        both_waiting = asyncio.Event()

        @pytest.fixture
        async def resource(request):
            yield
            await asyncio.sleep(0.01)
            record(request.node.name, "teardown")

        async def test_interrupts(resource):
            # Interrupt only once both other tests are in their call.
            await asyncio.wait_for(both_waiting.wait(), 10)
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(30)

        @pytest.mark.parametrize("n", range(2))
        async def test_waits(n, resource):
            record(f"test_waits[{n}]", "start")
            waiting.append(n)
            if len(waiting) == 2:
                both_waiting.set()
            await asyncio.sleep(30)
        """
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    # Interrupted tests are not reported as failures of their own.
    result.stdout.no_fnmatch_line("*CancelledError*")
    result.stdout.no_fnmatch_line("FAILED*")
    torn_down = {e.name for e in read_events(pytester) if e.what == "teardown"}
    assert torn_down == {"test_interrupts", "test_waits[0]", "test_waits[1]"}


def test_interrupting_a_test_that_runs_alone_ends_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import os
        import signal
        import pytest
        from recorder import record

        async def test_interrupts():
            record("test_interrupts", "start")
            await asyncio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(30)

        async def test_never_runs():
            record("test_never_runs", "start")
        """
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    result.stdout.no_fnmatch_line("*CancelledError*")
    assert [e.name for e in read_events(pytester)] == ["test_interrupts"]


@pytest.mark.parametrize("capture", [[], ["-s"]], ids=["captured", "no-capture"])
def test_second_interrupt_abandons_teardowns_and_says_which(
    pytester: pytest.Pytester, capture: list[str]
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import os
        import signal
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent
        slow_in_call = asyncio.Event()
        slow_tearing_down = asyncio.Event()

        @pytest.fixture
        async def slow_teardown(request):
            yield
            record(request.node.name, "teardown-start")
            slow_tearing_down.set()
            await asyncio.sleep(30)
            record(request.node.name, "teardown-end")

        @pytest.fixture
        async def interrupts_again():
            yield
            # The first Ctrl-C has interrupted both tests; interrupt again
            # while the other one is still tearing down.
            await asyncio.wait_for(slow_tearing_down.wait(), 10)
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(30)

        async def test_slow(slow_teardown):
            slow_in_call.set()
            await asyncio.sleep(30)

        async def test_interrupts(interrupts_again):
            await asyncio.wait_for(slow_in_call.wait(), 10)
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(30)
        """
    )
    result = pytester.runpytest_subprocess(*capture, timeout=25)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["pytest-concurrently: abandoned the teardown of *::test_slow", "*KeyboardInterrupt*"]
    )
    result.stderr.no_fnmatch_line("*AssertionError*")
    result.stdout.no_fnmatch_line("*CancelledError*")
    result.stdout.no_fnmatch_line("*ERROR at teardown*")
    events = [(e.name, e.what) for e in read_events(pytester)]
    assert ("test_slow", "teardown-start") in events
    assert ("test_slow", "teardown-end") not in events


def test_the_plugins_modules_are_imported_unrewritten(pytester: pytest.Pytester) -> None:
    # pytest assertion-rewrites every module of a plugin's distribution; the
    # plugin takes itself off that list as its package starts importing, so
    # only the modules imported before that are rewritten. A fresh process:
    # in this one the plugin is imported already.
    pytester.makepyfile(
        """
        import sys

        def test_loaders():
            loaders = {
                name: type(module.__loader__).__name__
                for name, module in sys.modules.items()
                if name.split(".")[0] == "pytest_concurrently"
            }
            rewritten = sorted(
                name for name, loader in loaders.items() if loader == "AssertionRewritingHook"
            )
            assert rewritten == [
                "pytest_concurrently",
                "pytest_concurrently._pytest_adapter",
                "pytest_concurrently._pytest_adapter.unrewritten",
            ]
            assert loaders["pytest_concurrently.running"] == "SourceFileLoader"

        async def test_rewritten_here_still():
            left = [1, 2]
            try:
                assert left == [1, 3]
            except AssertionError as failure:
                assert "At index 1 diff: 2 != 3" in str(failure)
            else:
                raise RuntimeError("the assert did not fail")
        """
    )
    result = pytester.runpytest_subprocess("-W", "error::pytest.PytestAssertRewriteWarning")
    result.assert_outcomes(passed=2)
