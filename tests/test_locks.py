"""Run-time locks (``pytest_concurrently.lock``), and how waits are reported."""

from __future__ import annotations

import asyncio
import re

import pytest
from conftest import intervals, read_events

from pytest_concurrently.locking import RuntimeLocks
from pytest_concurrently.scheduling import Access, AdmissionPolicy

pytestmark = pytest.mark.usefixtures("recorder")

HEADER = """
import asyncio
import pytest
import pytest_concurrently
from recorder import record

pytestmark = pytest.mark.concurrent
"""


def overlapping(spans: dict[str, tuple[float, float]], a: str, b: str) -> bool:
    return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]


def test_a_run_time_lock_excludes_declared_holders_and_other_locks(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.resource("db")
async def test_declared():
    record("declared", "start")
    await asyncio.sleep(0.3)
    record("declared", "end")

@pytest.mark.parametrize("n", range(2))
async def test_locking(n):
    await asyncio.sleep(0.05)
    async with pytest_concurrently.lock("db"):
        record(f"locked{n}", "start")
        await asyncio.sleep(0.1)
        record(f"locked{n}", "end")

async def test_last():
    pass
"""
    )
    pytester.runpytest().assert_outcomes(passed=4)
    spans = intervals(read_events(pytester))
    assert not overlapping(spans, "declared", "locked0")
    assert not overlapping(spans, "declared", "locked1")
    assert not overlapping(spans, "locked0", "locked1")


def test_a_declared_holder_waits_for_a_run_time_hold(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
async def test_locking():
    async with pytest_concurrently.lock("db"):
        record("locked", "start")
        await asyncio.sleep(0.3)
        record("locked", "end")

async def test_gap():
    await asyncio.sleep(0.1)

@pytest.mark.resource("db")
async def test_declared():
    record("declared", "start")
    record("declared", "end")

async def test_last():
    pass
"""
    )
    # test_declared is admitted only after test_gap's end, while the lock is held.
    pytester.runpytest("--concurrency=2").assert_outcomes(passed=4)
    spans = intervals(read_events(pytester))
    assert spans["locked"][1] <= spans["declared"][0]


def test_shared_locks_overlap(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.parametrize("n", range(3))
async def test_reading(n):
    async with pytest_concurrently.lock("db", mode="shared"):
        record(f"read{n}", "start")
        await asyncio.sleep(0.2)
        record(f"read{n}", "end")

async def test_last():
    pass
"""
    )
    pytester.runpytest().assert_outcomes(passed=4)
    spans = intervals(read_events(pytester))
    assert overlapping(spans, "read0", "read1")
    assert overlapping(spans, "read1", "read2")


def test_a_declared_resource_is_held_already(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.resource("db")
async def test_again():
    async with pytest_concurrently.lock("db"):
        async with pytest_concurrently.lock("db"):
            pass

@pytest.mark.resource("db", mode="shared")
async def test_upgrade():
    async with pytest_concurrently.lock("db"):
        pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*RuntimeError: lock('db', mode='exclusive'): *test_upgrade holds 'db' shared already*"]
    )


def test_a_lock_that_closes_a_circle_fails_naming_both_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
both_hold = asyncio.Event()
holding = 0

async def take(first, second):
    global holding
    async with pytest_concurrently.lock(first):
        holding += 1
        if holding == 2:
            both_hold.set()
        await both_hold.wait()
        async with pytest_concurrently.lock(second):
            pass

async def test_a():
    await take("db", "cache")

async def test_b():
    await asyncio.sleep(0.05)
    await take("cache", "db")

async def test_last():
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    # The error line of the traceback; the short summary repeats the message
    # (in full when the CI variable is set, since pytest then does not shorten it).
    (line,) = [line for line in result.outlines if re.match(r"E\s+.*DeadlockError: ", line)]
    assert "taking this lock would deadlock: " in line
    assert "::test_a waits for 'cache', held by " in line
    assert "::test_b waits for 'db', held by " in line
    # The traceback ends in the test, not in the plugin.
    result.stdout.no_fnmatch_line("*locking.py*")


def test_a_lock_times_out(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.resource("db")
async def test_holder():
    await asyncio.sleep(0.5)

async def test_impatient():
    await asyncio.sleep(0.05)
    async with pytest_concurrently.lock("db", timeout=0.1):
        pass

async def test_last():
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*TimeoutError: lock('db') not acquired within 0.1 s; held by *::test_holder"]
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("lock('db', mode='sole')", "*mode must be 'exclusive' or 'shared', got 'sole'*"),
        ("lock('')", "*the name must be a non-empty string*"),
    ],
)
def test_misused_lock(pytester: pytest.Pytester, call: str, message: str) -> None:
    pytester.makepyfile(
        HEADER
        + f"""
async def test_it():
    async with pytest_concurrently.{call}:
        pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ValueError: " + message])


def test_a_lock_works_when_tests_run_one_at_a_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
async def test_it():
    async def hold(n):
        async with pytest_concurrently.lock("db"):
            record(f"held{n}", "start")
            await asyncio.sleep(0.1)
            record(f"held{n}", "end")
    await asyncio.gather(hold(0), hold(1))
"""
    )
    pytester.runpytest("--concurrently-mode=off").assert_outcomes(passed=1)
    spans = intervals(read_events(pytester))
    assert not overlapping(spans, "held0", "held1")


WAITING = (
    HEADER
    + """
@pytest.mark.resource("db")
async def test_first():
    await asyncio.sleep(0.4)

@pytest.mark.resource("db")
async def test_second():
    pass

async def test_locking():
    await asyncio.sleep(0.05)
    async with pytest_concurrently.lock("cache"):
        await asyncio.sleep(0.01)

async def test_holding():
    async with pytest_concurrently.lock("cache"):
        await asyncio.sleep(0.4)

async def test_last():
    pass
"""
)


def test_waits_show_in_verbose_output_and_the_end_of_run_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(WAITING)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=5)
    result.stdout.re_match_lines(
        [
            r".*::test_second PASSED \(waited \d+\.\d s for resource 'db'\).*",
            r".*::test_locking PASSED \(waited \d+\.\d s for lock 'cache'\).*",
        ],
        consecutive=False,
    )
    result.stdout.re_match_lines(
        [r"concurrently: 5 tests in .*; 2 tests waited [\d.]+ s for others"]
    )


def test_durations_leave_lock_waits_out_and_list_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(WAITING)
    result = pytester.runpytest("--durations=0", "-vv")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        [
            "*slowest 2 waits for other tests*",
            "*s resource 'db': *::test_second",
            "*s lock 'cache': *::test_locking",
        ]
    )
    # test_locking's call spends about 0.35 s waiting for the lock and 0.01 s
    # holding it: the reported call duration is the latter.
    call_line = next(
        line
        for line in result.outlines
        if line.endswith(
            "call     test_durations_leave_lock_waits_out_and_list_them.py::test_locking"
        )
    )
    waits_line = next(
        line for line in result.outlines if line.endswith("::test_locking") and "lock" in line
    )
    assert float(call_line.split("s", 1)[0]) < float(waits_line.split("s", 1)[0])


def test_a_lock_wait_does_not_count_against_a_pytest_timeout(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(
        HEADER
        + """
async def test_holder():
    async with pytest_concurrently.lock("db"):
        await asyncio.sleep(0.6)

@pytest.mark.timeout(0.4)
async def test_patient():
    await asyncio.sleep(0.05)
    async with pytest_concurrently.lock("db"):
        await asyncio.sleep(0.1)

@pytest.mark.timeout(0.4)
async def test_slow():
    await asyncio.sleep(0.8)

async def test_last():
    pass
"""
    )
    result = pytester.runpytest("-p", "timeout")
    # test_patient waits about 0.55 s for the lock and runs 0.15 s: within
    # its limit; test_slow overruns it.
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["E *Failed: Timeout (>0.4s) from pytest-timeout.", "FAILED *::test_slow*"]
    )


def test_a_task_may_take_a_lock_it_holds_again(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
async def test_nested():
    async with pytest_concurrently.lock("db"):
        async with pytest_concurrently.lock("db", mode="shared", timeout=1):
            record("inner", "start")
            record("inner", "end")
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert "inner" in intervals(read_events(pytester))


def test_who_holds_a_resource_is_known_until_the_last_hold_ends() -> None:
    # The fixture layer asks this to decide whether a test may wait for an
    # earlier one: a holder might be what that test is waiting for.
    async def scenario() -> list[bool]:
        locks = RuntimeLocks(AdmissionPolicy([], max_in_flight=1))
        seen = [locks.holds_any("test")]
        locks.admitted("declarer", {"d": Access.EXCLUSIVE})
        seen.append(locks.holds_any("declarer"))
        locks.finished("declarer")
        seen.append(locks.holds_any("declarer"))
        # Two tasks of one test, one of them holding two resources.
        assert await locks.acquire("a", Access.EXCLUSIVE, "task 1", "test", None)
        assert await locks.acquire("b", Access.SHARED, "task 1", "test", None)
        assert await locks.acquire("c", Access.EXCLUSIVE, "task 2", "test", None)
        seen.append(locks.holds_any("test"))
        locks.release("a", "task 1")
        locks.release("c", "task 2")
        seen.append(locks.holds_any("test"))
        locks.release("b", "task 1")
        seen.append(locks.holds_any("test"))
        return seen

    assert asyncio.run(scenario()) == [False, True, False, True, True, False]


def test_the_last_test_of_a_scope_gives_back_its_resources_while_it_waits_for_the_others(
    pytester: pytest.Pytester,
) -> None:
    # test_holder declares r and ends the module; the setup of slow, which
    # test_first waits for, takes r at run time. Were r held while
    # test_holder waits for test_first to tear the module down, neither
    # could go on, and with both waits off the clock, nothing would time out.
    pytester.makepyfile(
        HEADER
        + """
@pytest.fixture(scope="module")
async def slow():
    await asyncio.sleep(0.2)
    async with pytest_concurrently.lock("r"):
        record("slow", "locked")

async def test_first(slow):
    record("test_first", "ran")

@pytest.mark.resource("r")
async def test_holder():
    record("test_holder", "ran")
"""
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--concurrently-timeout=10", timeout=120
    )
    result.assert_outcomes(passed=2)
    order = [(event.name, event.what) for event in read_events(pytester)]
    assert order == [("test_holder", "ran"), ("slow", "locked"), ("test_first", "ran")]


@pytest.mark.parametrize("holder_waits", ["first", "later"])
def test_a_lock_in_a_shared_fixture_s_setup_serves_declared_holders_waiting_for_it(
    pytester: pytest.Pytester, holder_waits: str
) -> None:
    # test_holder declares "db" and needs db, whose setup (made for
    # test_first) takes "db" at run time. The holder cannot go on before
    # that setup ends, so the setup takes the lock for it instead of
    # waiting for it: in a sequential run the fixture is made first.
    # "later": the holder starts to wait for db only after the setup waits
    # for the lock, which then looks at the holders again.
    delay_lock, delay_holder = (0.1, 0.0) if holder_waits == "first" else (0.0, 0.1)
    pytester.makepyfile(
        HEADER
        + f"""
@pytest.fixture(scope="session")
async def db():
    await asyncio.sleep({delay_lock})
    async with pytest_concurrently.lock("db"):
        record("db", "migrated")

@pytest.fixture(scope="session")
async def before_db():
    await asyncio.sleep({delay_holder})

async def test_first(db):
    record("test_first", "ran")

@pytest.mark.resource("db")
async def test_holder(before_db, db):
    record("test_holder", "ran")

async def test_last():
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=3)
    order = [(event.name, event.what) for event in read_events(pytester)]
    assert order[0] == ("db", "migrated")
    assert sorted(order[1:]) == [("test_first", "ran"), ("test_holder", "ran")]
