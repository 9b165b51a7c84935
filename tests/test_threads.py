"""Sync tests whose bodies run in worker threads: in flight beside each
other and beside async tests, with their output, logs and warnings their
own, under the same limits, and never waited for once given up on."""

from __future__ import annotations

import itertools

import pytest
from conftest import intervals, read_events

pytestmark = pytest.mark.usefixtures("recorder")


def test_threaded_tests_overlap_each_other(pytester: pytest.Pytester) -> None:
    # Five bodies meet at a barrier: it opens only if all five are in
    # flight at once, each in a thread of its own.
    pytester.makepyfile(
        """
        import threading
        import pytest

        met = threading.Barrier(5, timeout=20)
        threads = set()

        @pytest.mark.concurrent(thread=True)
        @pytest.mark.parametrize("n", range(5))
        def test_meets(n):
            threads.add(threading.get_ident())
            met.wait()

        def test_each_ran_in_a_thread_of_its_own():
            assert len(threads) == 5
            assert threading.get_ident() not in threads
        """
    )
    pytester.runpytest().assert_outcomes(passed=6)


def test_a_threaded_test_overlaps_async_tests(pytester: pytest.Pytester) -> None:
    # The body waits for an async test to run while it blocks its thread:
    # the loop is free meanwhile.
    pytester.makepyfile(
        """
        import asyncio
        import threading
        import pytest
        from recorder import record

        async_ran = threading.Event()
        body_saw_it = threading.Event()

        @pytest.mark.concurrent(thread=True)
        def test_polls():
            record("thread", "start")
            assert async_ran.wait(timeout=20)
            body_saw_it.set()
            record("thread", "end")

        @pytest.mark.concurrent
        async def test_async():
            record("async", "start")
            async_ran.set()
            while not body_saw_it.is_set():
                await asyncio.sleep(0.01)
            record("async", "end")
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    spans = intervals(read_events(pytester))
    assert spans["thread"][0] < spans["async"][1]
    assert spans["async"][0] < spans["thread"][1]


def test_output_logs_and_warnings_of_a_body_are_its_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import logging
        import threading
        import warnings
        import pytest

        met = threading.Barrier(2, timeout=20)

        @pytest.mark.concurrent(thread=True)
        @pytest.mark.parametrize("n", range(2))
        def test_speaks(n, caplog):
            caplog.set_level(logging.INFO)
            met.wait()
            print(f"printed by {n}")
            logging.getLogger("t").info("logged by %s", n)
            warnings.warn(f"warned by {n}", UserWarning)
            met.wait()
            assert [r.getMessage() for r in caplog.records] == [f"logged by {n}"]
            assert n == 0
        """
    )
    result = pytester.runpytest("-rA", "-W", "always")
    result.assert_outcomes(passed=1, failed=1, warnings=2)
    output = result.stdout.str()
    sections = output.split("_ test_speaks[")
    own = {section[0]: section for section in sections[1:]}
    assert "printed by 1" in own["1"]
    assert "printed by 0" not in own["1"]
    assert "logged by 1" in own["1"]
    assert "printed by 0" in own["0"]
    assert "printed by 1" not in own["0"]
    result.stdout.fnmatch_lines(
        ["*test_speaks[[]0[]]*", "*UserWarning: warned by 0*"], consecutive=False
    )
    result.stdout.fnmatch_lines(
        ["*test_speaks[[]1[]]*", "*UserWarning: warned by 1*"], consecutive=False
    )


def test_a_failure_in_a_body_reads_as_pytests_own(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrent(thread=True)
        def test_fails():
            total = sum([1, 2])
            assert total == 4

        @pytest.mark.concurrent(thread=True)
        def test_skips():
            pytest.skip("not here")

        @pytest.mark.concurrent(thread=True)
        @pytest.mark.xfail(raises=ZeroDivisionError, strict=True)
        def test_xfails():
            1 / 0
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(failed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*assert 3 == 4", "*_own.py:6: AssertionError"])
    result.stdout.fnmatch_lines(["SKIPPED * not here"])


def test_a_body_sees_its_tests_context(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import contextvars
        import pytest

        who = contextvars.ContextVar("who")

        @pytest.fixture
        def named(request):
            who.set(request.node.name)

        @pytest.mark.concurrent(thread=True)
        @pytest.mark.parametrize("n", range(3))
        def test_sees(named, n):
            assert who.get() == f"test_sees[{n}]"
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_a_timed_out_body_is_not_waited_for(pytester: pytest.Pytester) -> None:
    # The body never returns: the run ends anyway, the test fails with its
    # limit and the line its thread was at, and the next test runs.
    pytester.makepyfile(
        """
        import threading
        import pytest

        never = threading.Event()

        @pytest.mark.concurrent(thread=True, timeout=0.5)
        def test_hangs():
            never.wait()

        @pytest.mark.concurrent(thread=True)
        def test_after():
            pass
        """
    )
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Timeout: the test ran longer than its limit of 0.5 s*; the test's thread, still "
            "running at test_a_timed_out_body_is_not_waited_for.py:8 in test_hangs, cannot be "
            "stopped: it runs on, and what it returns or raises is dropped*"
        ]
    )


def test_resources_hold_between_threaded_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        import pytest
        from recorder import record

        @pytest.mark.concurrent(thread=True)
        @pytest.mark.resource("db")
        @pytest.mark.parametrize("n", range(3))
        def test_db(n):
            record(f"db{n}", "start")
            time.sleep(0.05)
            record(f"db{n}", "end")
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)
    spans = sorted(intervals(read_events(pytester)).values())
    assert all(first[1] <= second[0] for first, second in itertools.pairwise(spans))


def test_stopping_interrupts_a_threaded_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        import pytest

        never = threading.Event()

        @pytest.mark.concurrent(thread=True)
        def test_waits():
            never.wait()

        @pytest.mark.concurrent
        async def test_fails():
            assert False
        """
    )
    result = pytester.runpytest_subprocess("-x", timeout=120)
    assert result.parseoutcomes() == {"failed": 1, "interrupted": 1}


def test_the_ini_runs_auto_mode_sync_tests_in_threads(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        concurrently_mode = auto
        concurrently_sync_tests = thread
        """
    )
    pytester.makepyfile(
        """
        import threading
        import pytest

        met = threading.Barrier(3, timeout=20)
        main = threading.get_ident()
        alone = []

        @pytest.mark.parametrize("n", range(3))
        def test_meets(n):
            assert threading.get_ident() != main
            met.wait()

        @pytest.mark.isolated
        def test_isolated():
            alone.append(threading.get_ident())

        def test_patches(monkeypatch):
            alone.append(threading.get_ident())

        def test_alone_ones_ran_on_the_main_thread():
            assert alone == [main, main]
        """
    )
    pytester.runpytest().assert_outcomes(passed=6)


def test_the_ini_lets_marked_sync_tests_run_in_threads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading
        import pytest

        pytestmark = pytest.mark.concurrent
        met = threading.Barrier(2, timeout=20)

        @pytest.mark.parametrize("n", range(2))
        def test_meets(n):
            met.wait()
        """
    )
    pytester.runpytest("--concurrently-sync-tests=thread").assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "@pytest.mark.concurrent(thread='yes')\ndef test_it(): pass",
            "@pytest.mark.concurrent(thread=...) needs True or False, got 'yes'.",
        ),
        (
            "@pytest.mark.concurrent(thread=True)\nasync def test_it(): pass",
            "@pytest.mark.concurrent(thread=True) is for sync tests*",
        ),
    ],
)
def test_misused_thread_arguments(pytester: pytest.Pytester, source: str, message: str) -> None:
    pytester.makepyfile("import pytest\n\n" + source + "\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message, "Fix: *", "    *::test_it"])


def test_a_test_that_patches_runs_on_the_loops_thread(pytester: pytest.Pytester) -> None:
    # Even with monkeypatch allowed to overlap, its layers are made on the
    # loop's thread, never from a preempted worker thread.
    pytester.makeini(
        """
        [pytest]
        concurrently_mode = auto
        concurrently_sync_tests = thread
        concurrently_isolated_fixtures =
        """
    )
    pytester.makepyfile(
        """
        import threading
        import pytest

        main = threading.get_ident()

        @pytest.mark.parametrize("n", range(3))
        def test_patches(n, monkeypatch, tmp_path):
            assert threading.get_ident() == main
            monkeypatch.chdir(tmp_path)

        def test_plain():
            assert threading.get_ident() != main
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)
