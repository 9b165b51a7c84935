"""Per-test time limits of concurrent tests."""

from __future__ import annotations

import sys

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
        [
            "@pytest.mark.concurrent(timeout=...) needs seconds, 0 or more, got*",
            "Fix: give a number of seconds, as in timeout=30.",
            "    *::test_marked",
        ]
    )


def test_a_setup_limit_fails_a_slow_setup_and_leaves_the_test_limit_to_the_call(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nconcurrently_setup_timeout = 0.2\nconcurrently_timeout = 5\n")
    pytester.makepyfile(
        """
import asyncio
import pytest

pytestmark = pytest.mark.concurrent

@pytest.fixture
async def slow_to_make():
    await asyncio.sleep(30)

@pytest.fixture
async def quick_to_make():
    await asyncio.sleep(0.05)

async def test_slow_setup(slow_to_make):
    pass

async def test_slow_call(quick_to_make):
    await asyncio.sleep(0.4)
"""
    )
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*await asyncio.sleep(30)*",
            "E * Timeout: the setup ran longer than its limit of 0.2 s "
            "(concurrently_setup_timeout)",
            "ERROR *::test_slow_setup*",
        ]
    )


@pytest.mark.parametrize(
    ("ini", "limit"),
    [("concurrently_teardown_timeout = 0.3", "0.3"), ("concurrently_timeout = 0.3", "0.3")],
)
def test_a_hung_teardown_fails_and_the_session_goes_on(
    pytester: pytest.Pytester, ini: str, limit: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(
        """
import asyncio
import pytest

pytestmark = pytest.mark.concurrent
from recorder import record

@pytest.fixture
async def hangs_at_teardown():
    yield
    await asyncio.Event().wait()

@pytest.fixture
def torn_down_after():
    yield
    record("later finalizer", "start")
    record("later finalizer", "end")

async def test_hung_teardown(torn_down_after, hangs_at_teardown):
    pass

async def test_after():
    await asyncio.sleep(0.2)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*await asyncio.Event().wait()*",
            f"E * Timeout: the teardown ran longer than its limit of {limit} s "
            "(pytest-concurrently)",
        ]
    )
    # The finalizers after the hung one still ran.
    assert "later finalizer" in intervals(read_events(pytester))


def test_a_timed_out_test_gets_its_teardown_time_afresh(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import asyncio
import pytest

pytestmark = pytest.mark.concurrent
from recorder import record

@pytest.fixture
async def slow_teardown():
    yield
    record("teardown", "start")
    await asyncio.sleep(0.2)
    record("teardown", "end")

@pytest.mark.concurrent(timeout=0.3)
async def test_hangs(slow_teardown):
    await asyncio.Event().wait()
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert "teardown" in intervals(read_events(pytester))


SWALLOWS = """
import asyncio
import pytest

pytestmark = pytest.mark.concurrent
from recorder import record

@pytest.fixture
async def own():
    yield
    record("own teardown", "start")
    record("own teardown", "end")

@pytest.fixture(scope="module")
async def shared():
    yield
    record("shared teardown", "start")
    record("shared teardown", "end")

@pytest.mark.concurrent(timeout=0.2)
async def test_swallows(shared, own):
    while True:
        try:
            await asyncio.sleep(0.05)
        except BaseException:
            pass

async def test_neighbour(shared):
    record("neighbour", "start")
    await asyncio.sleep(0.1)
    record("neighbour", "end")

async def test_last(shared):
    await asyncio.sleep(0.5)
"""


def test_a_test_that_ignores_its_timeout_is_abandoned_after_the_grace_period(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nconcurrently_timeout_grace = 0.3\n")
    pytester.makepyfile(SWALLOWS)
    result = pytester.runpytest("--junitxml=out.xml", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Timeout: the test ran longer than its limit of 0.2 s (pytest-concurrently); "
            "it went on running at test_a_test_that_ignores*.py:* in test_swallows for 0.3 s "
            "after it was interrupted, and was abandoned (its teardown did not run)",
        ]
    )
    spans = intervals(read_events(pytester))
    # Its own fixture was not torn down; the shared one was, once, at the end.
    assert set(spans) == {"neighbour", "shared teardown"}
    junit = (pytester.path / "out.xml").read_text()
    assert junit.count("<testcase ") == 3
    assert junit.count("<failure ") == 1


def test_a_shared_fixture_a_timed_out_test_waited_for_is_not_disturbed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
import asyncio
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

@pytest.fixture(scope="module")
async def slow_to_make():
    record("made", "start")
    await asyncio.sleep(0.4)
    record("made", "end")
    return "value"

@pytest.mark.concurrent(timeout=0.1)
async def test_impatient(slow_to_make):
    pass

async def test_patient(slow_to_make):
    assert slow_to_make == "value"
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["E * Timeout: the test ran longer than its limit of 0.1 s *"])
    events = read_events(pytester)
    assert [event.what for event in events if event.name == "made"] == ["start", "end"]


def test_a_hung_shared_teardown_fails_its_last_user_and_does_not_hang_the_session(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nconcurrently_teardown_timeout = 0.3\n")
    pytester.makepyfile(
        """
import asyncio
import pytest

pytestmark = pytest.mark.concurrent

@pytest.fixture(scope="module")
async def shared():
    yield
    await asyncio.Event().wait()

async def test_a(shared):
    await asyncio.sleep(0.1)

async def test_b(shared):
    await asyncio.sleep(0.2)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    lines = ["E * Timeout: the teardown ran longer than its limit of 0.3 s (pytest-concurrently)"]
    if sys.version_info >= (3, 11):
        lines.append("E * (while waiting for the owner of fixture 'shared' of *.py)")
    result.stdout.fnmatch_lines(lines)
