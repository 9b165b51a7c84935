"""Per-test time limits of concurrent tests."""

from __future__ import annotations

import pytest
from conftest import intervals, read_events

pytestmark = pytest.mark.usefixtures("recorder")

HANGING = """
import asyncio
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

@pytest.fixture
async def resource():
    yield "resource"
    record("teardown", "start")
    record("teardown", "end")

{mark}
async def test_hangs(resource):
    await asyncio.Event().wait()

async def test_neighbour():
    record("neighbour", "start")
    await asyncio.sleep(0.1)
    record("neighbour", "end")
"""


@pytest.mark.parametrize(
    ("mark", "options", "ini"),
    [
        ("@pytest.mark.concurrent(timeout=0.2)", (), ""),
        ("", ("--concurrently-timeout=0.2",), ""),
        ("", (), "concurrently_timeout = 0.2"),
        ("@pytest.mark.concurrent(timeout=0.2)", ("--concurrently-timeout=0",), ""),
    ],
)
def test_a_hanging_test_fails_alone_and_is_torn_down(
    pytester: pytest.Pytester, mark: str, options: tuple[str, ...], ini: str
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(HANGING.format(mark=mark))
    result = pytester.runpytest(*options)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*await asyncio.Event().wait()*",
            "E * Timeout: the test ran longer than its limit of 0.2 s (pytest-concurrently)",
        ]
    )
    assert set(intervals(read_events(pytester))) == {"teardown", "neighbour"}


def test_a_marker_timeout_of_zero_lifts_the_run_limit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import asyncio
import pytest

@pytest.mark.concurrent(timeout=0)
async def test_slow():
    await asyncio.sleep(0.3)
"""
    )
    pytester.runpytest("--concurrently-timeout=0.1").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--concurrently-timeout=soon",), "*--concurrently-timeout must be a number of seconds*"),
        (("--concurrently-timeout=-1",), "*--concurrently-timeout must be a number of seconds*"),
    ],
)
def test_bad_run_limits_are_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    pytester.makepyfile("async def test_nothing(): pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_bad_marker_timeout_names_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.concurrent(timeout="long")
async def test_marked():
    pass
"""
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*::test_marked: @pytest.mark.concurrent(timeout=...) needs seconds, 0 or more, got*"]
    )
