"""A test that blocks the event loop is named, and its neighbours do not pay."""

from __future__ import annotations

import re

import pytest

BLOCKS = """
import asyncio
import time
import pytest

pytestmark = pytest.mark.concurrent

async def test_blocks():
    await asyncio.sleep(0.05)
    time.sleep(0.6)
    await asyncio.sleep(0.05)

@pytest.mark.parametrize("n", range(3))
async def test_neighbour(n):
    await asyncio.sleep(0.3)
"""


def test_a_blocking_test_gets_a_warning_naming_the_blocking_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(BLOCKS)
    result = pytester.runpytest("--concurrently-blocking-threshold=0.2", "--durations=0", "-vv")
    result.assert_outcomes(passed=4, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_blocks",
            "*BlockedLoopWarning: *::test_blocks blocked the event loop for 0.* s at "
            "test_a_blocking_test_gets*.py:9 in test_blocks: every test in flight stood "
            "still meanwhile.*",
        ]
    )
    # The neighbours' call durations leave the stall out: each slept 0.3 s.
    durations = {
        match.group(2): float(match.group(1))
        for match in (re.match(r"([\d.]+)s call\s+\S+::(\S+)", line) for line in result.outlines)
        if match
    }
    assert durations["test_blocks"] >= 0.6
    for n in range(3):
        assert durations[f"test_neighbour[{n}]"] < 0.55, durations
    result.stdout.fnmatch_lines(
        ["concurrently: 4 tests in *; tests blocked the loop for 0.[567] s"]
    )


def test_blocking_fails_the_test_in_error_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BLOCKS)
    result = pytester.runpytest(
        "--concurrently-blocking-threshold=0.2", "--concurrently-blocking=error"
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "BlockedLoopWarning: *::test_blocks blocked the event loop for 0.* s at *:9 in "
            "test_blocks*",
            # pytest before 8.4 shows no message for a report's text failure.
            "FAILED *::test_blocks*",
        ]
    )


def test_blocking_warnings_made_errors_fail_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BLOCKS)
    result = pytester.runpytest(
        "--concurrently-blocking-threshold=0.2",
        "-W",
        "error::pytest_concurrently.BlockedLoopWarning",
    )
    result.assert_outcomes(passed=3, failed=1)


@pytest.mark.parametrize(
    "off", [("--concurrently-blocking=off",), ("--concurrently-blocking-threshold=0",)]
)
def test_watching_can_be_turned_off(pytester: pytest.Pytester, off: tuple[str, ...]) -> None:
    pytester.makepyfile(BLOCKS)
    result = pytester.runpytest("--concurrently-blocking-threshold=0.2", *off)
    result.assert_outcomes(passed=4)
    result.stdout.no_fnmatch_line("*BlockedLoopWarning*")


def test_cpu_bound_work_is_caught_too_and_a_stall_does_not_count_against_neighbours_limits(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
import asyncio
import time
import pytest

pytestmark = pytest.mark.concurrent

def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

async def test_spins():
    await asyncio.sleep(0.05)
    spin(0.8)

@pytest.mark.concurrent(timeout=0.6)
async def test_limited_neighbour():
    await asyncio.sleep(0.3)
"""
    )
    result = pytester.runpytest("--concurrently-blocking-threshold=0.2")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*::test_spins blocked the event loop for 0.* s at *:* in spin*"])


def test_a_threshold_that_is_not_a_number_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("async def test_nothing(): pass\n")
    result = pytester.runpytest("--concurrently-blocking-threshold=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--concurrently-blocking-threshold must be a number*"])


def test_a_test_timed_out_while_it_blocked_the_loop_says_where(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
import asyncio
import time
import pytest

@pytest.mark.concurrent(timeout=0.2)
async def test_blocks_past_its_limit():
    time.sleep(0.6)
    await asyncio.sleep(5)
"""
    )
    result = pytester.runpytest("--concurrently-blocking-threshold=0.3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E * Timeout: the test ran longer than its limit of 0.2 s (pytest-concurrently); "
            "it blocked the event loop for 0.* s at test_a_test_timed_out*.py:7 in "
            "test_blocks_past_its_limit"
        ]
    )
