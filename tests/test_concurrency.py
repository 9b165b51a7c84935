"""Which tests overlap, and which run alone."""

from __future__ import annotations

import pytest
from conftest import all_overlap, intervals, peak_overlap, read_events

pytestmark = pytest.mark.usefixtures("recorder")

SLEEPERS = """
import asyncio
import pytest
from recorder import record

{marks}

@pytest.mark.parametrize("n", range({count}))
async def test_sleep(n, request):
    record(request.node.name, "start")
    await asyncio.sleep(0.2)
    record(request.node.name, "end")
"""


def test_marked_tests_overlap(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SLEEPERS.format(marks="pytestmark = pytest.mark.concurrent", count=5))
    result = pytester.runpytest()
    result.assert_outcomes(passed=5)
    spans = intervals(read_events(pytester))
    assert len(spans) == 5
    assert all_overlap(spans)
    result.stdout.re_match_lines([r"concurrently: 5 tests in .* up to 5 in flight"])


def test_concurrency_limits_tests_in_flight(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SLEEPERS.format(marks="pytestmark = pytest.mark.concurrent", count=7))
    result = pytester.runpytest("--concurrency", "3")
    result.assert_outcomes(passed=7)
    assert peak_overlap(intervals(read_events(pytester))) == 3


def test_concurrency_ini_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrency = 2\n")
    pytester.makepyfile(SLEEPERS.format(marks="pytestmark = pytest.mark.concurrent", count=5))
    pytester.runpytest().assert_outcomes(passed=5)
    assert peak_overlap(intervals(read_events(pytester))) == 2


def test_concurrency_one_runs_one_at_a_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SLEEPERS.format(marks="pytestmark = pytest.mark.concurrent", count=4))
    pytester.runpytest("--concurrency=1").assert_outcomes(passed=4)
    spans = intervals(read_events(pytester))
    assert peak_overlap(spans) == 1
    assert sorted(spans, key=lambda name: spans[name][0]) == [f"test_sleep[{n}]" for n in range(4)]


def test_mode_off_runs_marked_tests_one_at_a_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SLEEPERS.format(marks="pytestmark = pytest.mark.concurrent", count=3))
    result = pytester.runpytest("--concurrently-mode=off")
    result.assert_outcomes(passed=3)
    assert peak_overlap(intervals(read_events(pytester))) == 1
    result.stdout.no_fnmatch_line("concurrently:*")


def test_marked_mode_runs_unmarked_async_tests_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SLEEPERS.format(marks="", count=3))
    result = pytester.runpytest("--concurrently-mode=marked")
    result.assert_outcomes(passed=3)
    assert peak_overlap(intervals(read_events(pytester))) == 1


def test_auto_mode_runs_unmarked_async_tests_concurrently(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SLEEPERS.format(marks="", count=4))
    pytester.runpytest("--concurrently-mode=auto").assert_outcomes(passed=4)
    assert all_overlap(intervals(read_events(pytester)))


def test_mode_from_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_mode = auto\n")
    pytester.makepyfile(SLEEPERS.format(marks="", count=3))
    pytester.runpytest().assert_outcomes(passed=3)
    assert all_overlap(intervals(read_events(pytester)))


def test_isolated_tests_run_alone_in_auto_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        async def test_a(request):
            record("a", "start"); await asyncio.sleep(0.1); record("a", "end")

        @pytest.mark.isolated
        async def test_b(request):
            record("b", "start"); await asyncio.sleep(0.1); record("b", "end")

        async def test_c(request):
            record("c", "start"); await asyncio.sleep(0.1); record("c", "end")

        async def test_d(request):
            record("d", "start"); await asyncio.sleep(0.1); record("d", "end")
        """
    )
    pytester.runpytest("--concurrently-mode=auto").assert_outcomes(passed=4)
    spans = intervals(read_events(pytester))
    # b waits for a, and c and d wait for b: collection order is kept.
    assert spans["a"][1] <= spans["b"][0]
    assert spans["b"][1] <= min(spans["c"][0], spans["d"][0])
    assert all_overlap({k: spans[k] for k in "cd"})


def test_sync_tests_run_alone_in_collection_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import time
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        async def test_a1():
            record("a1", "start"); await asyncio.sleep(0.1); record("a1", "end")

        async def test_a2():
            record("a2", "start"); await asyncio.sleep(0.2); record("a2", "end")

        def test_sync():
            record("sync", "start"); time.sleep(0.05); record("sync", "end")

        async def test_b1():
            record("b1", "start"); await asyncio.sleep(0.1); record("b1", "end")

        async def test_b2():
            record("b2", "start"); await asyncio.sleep(0.1); record("b2", "end")
        """
    )
    pytester.runpytest().assert_outcomes(passed=5)
    spans = intervals(read_events(pytester))
    assert all_overlap({k: spans[k] for k in ("a1", "a2")})
    assert max(spans["a1"][1], spans["a2"][1]) <= spans["sync"][0]
    assert spans["sync"][1] <= min(spans["b1"][0], spans["b2"][0])
    assert all_overlap({k: spans[k] for k in ("b1", "b2")})


def test_tests_of_different_modules_overlap(pytester: pytest.Pytester) -> None:
    for module in ("test_one", "test_two"):
        pytester.makepyfile(
            **{
                module: f"""
                import asyncio
                import pytest
                from recorder import record

                @pytest.mark.concurrent
                async def test_it():
                    record("{module}", "start"); await asyncio.sleep(0.2); record("{module}", "end")
                """
            }
        )
    pytester.runpytest().assert_outcomes(passed=2)
    assert all_overlap(intervals(read_events(pytester)))


def test_class_marker_applies_to_methods(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        @pytest.mark.concurrent
        class TestGroup:
            async def test_one(self):
                record("one", "start"); await asyncio.sleep(0.2); record("one", "end")

            async def test_two(self):
                record("two", "start"); await asyncio.sleep(0.2); record("two", "end")
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    assert all_overlap(intervals(read_events(pytester)))


def test_marker_added_by_conftest_hook(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.concurrent)
        """
    )
    pytester.makepyfile(SLEEPERS.format(marks="", count=3))
    pytester.runpytest().assert_outcomes(passed=3)
    assert all_overlap(intervals(read_events(pytester)))


def test_isolated_wins_over_module_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        async def test_a():
            record("a", "start"); await asyncio.sleep(0.1); record("a", "end")

        @pytest.mark.isolated
        async def test_b():
            record("b", "start"); await asyncio.sleep(0.1); record("b", "end")

        async def test_c():
            record("c", "start"); await asyncio.sleep(0.1); record("c", "end")
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)
    spans = intervals(read_events(pytester))
    assert spans["a"][1] <= spans["b"][0]
    assert spans["b"][1] <= spans["c"][0]


def test_exit_cancels_tests_in_flight_and_tears_them_down(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent
        waiting = []
        both_waiting = asyncio.Event()

        @pytest.fixture
        async def resource(request):
            yield
            record(request.node.name, "teardown")

        async def test_exits(resource):
            # Exit only once both tests admitted beside this one are in their call.
            await asyncio.wait_for(both_waiting.wait(), 10)
            pytest.exit("enough")

        @pytest.mark.parametrize("n", range(3))
        async def test_waits(n, resource):
            record(f"test_waits[{n}]", "start")
            waiting.append(n)
            if len(waiting) == 2:
                both_waiting.set()
            await asyncio.sleep(30)
            record(f"test_waits[{n}]", "end")
        """
    )
    result = pytester.runpytest("--concurrency=3")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*Exit: enough*"])
    result.stdout.no_fnmatch_line("*CancelledError*")
    events = read_events(pytester)
    started = {e.name for e in events if e.what == "start"}
    assert started == {"test_waits[0]", "test_waits[1]"}
    assert not [e for e in events if e.what == "end"]
    assert {e.name for e in events if e.what == "teardown"} == {"test_exits"} | started


def test_a_cancelled_error_of_the_test_s_own_fails_that_test_only(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        async def cancelled_child():
            child = asyncio.create_task(asyncio.sleep(10))
            await asyncio.sleep(0)
            child.cancel()
            await child

        async def test_alone():
            await cancelled_child()

        @pytest.mark.concurrent
        async def test_concurrent():
            await cancelled_child()

        @pytest.mark.concurrent
        async def test_other():
            await asyncio.sleep(0.1)

        def test_after():
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=2, failed=2)
