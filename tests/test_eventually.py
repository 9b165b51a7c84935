"""Polling with ``pytest_concurrently.eventually``.

The schedule of attempts and the failure are checked on fake clocks (an
asyncio loop whose clock jumps to its next timer, and trio's ``MockClock``),
so times are exact and nothing waits. Inner sessions check what pytest shows
for a failure, concurrent tests polling side by side, the cap by a test's own
time limit, and polling on trio under anyio's plugin.
"""

from __future__ import annotations

import asyncio
import itertools
import selectors
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import pytest
import trio
import trio.testing
from conftest import all_overlap, intervals, read_events
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pytest_concurrently
import pytest_concurrently.timeouts as time_limits
from pytest_concurrently import eventually
from pytest_concurrently.current import RunningTest, running_test

if TYPE_CHECKING:
    from typing_extensions import assert_type

    from pytest_concurrently.eventually import Attempt

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """Never blocks: a wait for the next timer moves the fake clock instead."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout:
            self._clock[0] += timeout
        return ready


class FakeClockLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose clock starts at 0 and jumps to each timer."""

    def __init__(self) -> None:
        self._fake_clock = [0.0]
        super().__init__(_JumpingSelector(self._fake_clock))

    def time(self) -> float:
        return self._fake_clock[0]


class Backend:
    """Runs an async function on a fake clock, with that library's calls."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        if self.name == "trio":
            return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        loop = FakeClockLoop()
        try:
            return loop.run_until_complete(main())
        finally:
            loop.close()

    def now(self) -> float:
        return trio.current_time() if self.name == "trio" else asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        if self.name == "trio":
            await trio.sleep(seconds)
        else:
            await asyncio.sleep(seconds)


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return Backend(request.param)


class Recorder:
    """A check's calls: when each was made, on the backend's clock."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.times: list[float] = []

    @property
    def calls(self) -> int:
        return len(self.times)

    def call(self) -> int:
        self.times.append(self.backend.now())
        return self.calls


def failure_of(backend: Backend, main: Callable[[], Awaitable[object]]) -> AssertionError:
    """The AssertionError ``main`` fails with on ``backend``."""
    with pytest.raises(AssertionError) as info:
        backend.run(main)
    return info.value


# -- the function form ---------------------------------------------------------


def test_a_check_that_passes_at_once_is_tried_once(backend: Backend) -> None:
    calls = Recorder(backend)

    def check() -> str:
        calls.call()
        return "ready"

    async def main() -> str:
        return await eventually(check)

    assert backend.run(main) == "ready"
    assert calls.times == [0.0]


def test_it_tries_again_until_the_check_passes(backend: Backend) -> None:
    calls = Recorder(backend)

    def check() -> int:
        attempt = calls.call()
        assert attempt >= 4
        return attempt

    async def main() -> int:
        return await eventually(check, interval=0.5)

    assert backend.run(main) == 4
    assert calls.times == [0.0, 0.5, 1.0, 1.5]


def test_falsy_values_are_tried_again_and_none_passes(backend: Backend) -> None:
    values: list[object] = [0, "", [], False, {"id": 1}]
    calls = Recorder(backend)

    def check() -> object:
        calls.call()
        return values.pop(0)

    def asserts_only() -> None:
        calls.call()

    async def main() -> object:
        await eventually(asserts_only)
        return await eventually(check, interval=0.1)

    assert backend.run(main) == {"id": 1}
    assert calls.calls == 1 + 5


def test_an_async_check_is_awaited(backend: Backend) -> None:
    calls = Recorder(backend)

    async def check() -> list[int]:
        attempt = calls.call()
        await backend.sleep(0.25)
        assert attempt >= 2
        return [attempt] if attempt >= 3 else []

    async def main() -> list[int]:
        return await eventually(check, interval=1)

    assert backend.run(main) == [3]
    # Each attempt takes 0.25 s; the interval is counted from its end.
    assert calls.times == [0.0, 1.25, 2.5]


def test_an_interval_of_zero_still_lets_other_tasks_run(backend: Backend) -> None:
    flag: list[bool] = []

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: _set(flag))
            # Passes only if polling yields to the task that sets the flag,
            # and on the fake clock no time passes at all.
            await eventually(lambda: flag, interval=0)

    backend.run(main)
    assert flag == [True]


async def _set(flag: list[bool]) -> None:
    flag.append(True)


@pytest.mark.parametrize(
    ("timeout", "interval", "backoff", "expected"),
    [
        (10, 1, 2, [0, 1, 3, 7, 10]),
        (10, 4, 1, [0, 4, 8, 10]),
        (2, 0.5, 1, [0, 0.5, 1, 1.5, 2]),
        (1, 5, 1.5, [0, 1]),
        (100, 1, 3, [0, 1, 4, 13, 40, 100]),
    ],
)
def test_sleeps_grow_by_the_backoff_and_the_last_attempt_is_at_the_timeout(
    backend: Backend, timeout: float, interval: float, backoff: float, expected: list[float]
) -> None:
    calls = Recorder(backend)

    def check() -> None:
        calls.call()
        raise AssertionError("not yet")

    async def main() -> None:
        await eventually(check, timeout=timeout, interval=interval, backoff=backoff)

    failure = failure_of(backend, main)
    assert calls.times == pytest.approx(expected)
    assert str(failure).startswith(f"eventually: still failing after {len(expected)} attempts")


def test_the_failure_tells_the_attempts_and_pytests_explanation_of_the_last_one(
    backend: Backend,
) -> None:
    state = types.SimpleNamespace(tries=0)
    errors: list[AssertionError] = []

    def check() -> None:
        state.tries += 1
        try:
            assert state.tries == 100
        except AssertionError as error:
            errors.append(error)
            raise

    async def main() -> None:
        await eventually(check, timeout=3, interval=0.5)

    failure = failure_of(backend, main)
    lines = str(failure).splitlines()
    assert lines[0] == "eventually: still failing after 7 attempts over 3.0 s"
    # The rewritten assert's own message, whole: the comparison and where its
    # operand came from.
    assert lines[1:] == str(errors[-1]).splitlines()
    assert lines[1] == "assert 7 == 100"
    assert "where 7 = namespace(tries=7).tries" in lines[2]
    assert failure.__cause__ is errors[-1]
    assert failure.__suppress_context__


def test_one_attempt_is_said_in_the_singular(backend: Backend) -> None:
    async def slow() -> bool:
        await backend.sleep(1)
        return False

    async def main() -> None:
        await eventually(slow, timeout=0.5)

    assert str(failure_of(backend, main)).startswith(
        "eventually: still failing after 1 attempt over 1.0 s\n"
    )


def test_a_check_that_stays_falsy_fails_with_what_it_last_returned(backend: Backend) -> None:
    class Nothing:
        def __bool__(self) -> bool:
            return False

        def __repr__(self) -> str:
            return "Nothing(" + "x" * 500 + ")"

    calls = Recorder(backend)

    def falsy_last() -> object:
        # An assertion error first, then a falsy value at the last attempt.
        if calls.call() == 1:
            raise AssertionError("not the last word")
        return Nothing()

    async def plain() -> None:
        await eventually(lambda: [], timeout=1)

    async def long() -> None:
        await eventually(falsy_last, timeout=1, interval=1)

    failure = failure_of(backend, plain)
    assert str(failure) == (
        "eventually: still failing after 3 attempts over 1.0 s\n"
        "the check last returned [], which is falsy"
    )
    assert failure.__cause__ is None
    failure = failure_of(backend, long)
    _, detail = str(failure).splitlines()
    assert detail.startswith("the check last returned Nothing(xxx")
    assert "..." in detail
    assert len(detail) < 150
    assert failure.__cause__ is None


def test_other_exceptions_from_the_check_are_raised_at_once(backend: Backend) -> None:
    calls = Recorder(backend)
    broken = KeyError("config")

    def check() -> None:
        if calls.call() == 1:
            raise AssertionError("not yet")
        raise broken

    async def main() -> None:
        await eventually(check, timeout=10, interval=1)

    with pytest.raises(KeyError) as info:
        backend.run(main)
    assert info.value is broken
    assert calls.times == [0.0, 1.0]


def test_it_needs_a_running_asyncio_or_trio_loop() -> None:
    polling = eventually(lambda: True)
    with pytest.raises(RuntimeError, match="running asyncio or trio event loop"):
        polling.send(None)


# -- the block form ------------------------------------------------------------


def test_the_block_form_ends_when_an_attempt_passes(backend: Backend) -> None:
    calls = Recorder(backend)
    numbers: list[int] = []

    async def main() -> str:
        async for attempt in eventually(timeout=10, interval=2):
            numbers.append(attempt.number)
            with attempt:
                assert calls.call() >= 3
        return "after the loop"

    assert backend.run(main) == "after the loop"
    assert numbers == [1, 2, 3]
    assert calls.times == [0.0, 2.0, 4.0]


def test_the_block_form_fails_like_the_function_form(backend: Backend) -> None:
    state = types.SimpleNamespace(tries=0)
    errors: list[AssertionError] = []

    async def main() -> None:
        async for attempt in eventually(timeout=3, interval=1, backoff=2):
            with attempt:
                state.tries += 1
                try:
                    assert state.tries < 0
                except AssertionError as error:
                    errors.append(error)
                    raise

    failure = failure_of(backend, main)
    lines = str(failure).splitlines()
    # Attempts at 0, 1 and 3 s.
    assert lines[0] == "eventually: still failing after 3 attempts over 3.0 s"
    assert lines[1] == "assert 3 < 0"
    assert "where 3 = namespace(tries=3).tries" in lines[2]
    assert failure.__cause__ is errors[-1]


def test_the_block_form_lets_other_exceptions_through_at_once(backend: Backend) -> None:
    numbers: list[int] = []

    async def main() -> None:
        async for attempt in eventually(timeout=10, interval=1):
            numbers.append(attempt.number)
            with attempt:
                if attempt.number == 1:
                    raise AssertionError("not yet")
                raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        backend.run(main)
    assert numbers == [1, 2]


def test_an_attempt_must_be_used_once_as_a_with_block(backend: Backend) -> None:
    async def unused() -> None:
        async for _attempt in eventually(timeout=1):
            pass

    async def twice() -> None:
        async for attempt in eventually(timeout=1):
            with attempt:
                pass
            with attempt:
                pass

    with pytest.raises(RuntimeError, match=r"attempt 1 was not used; write the check"):
        backend.run(unused)
    with pytest.raises(RuntimeError, match="attempt 1 was used already"):
        backend.run(twice)


# -- arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"timeout": 0}, ValueError, "timeout must be more than 0 seconds, got 0"),
        ({"timeout": -1.5}, ValueError, "timeout must be more than 0 seconds, got -1.5"),
        ({"timeout": float("nan")}, ValueError, "timeout must be more than 0 seconds"),
        ({"timeout": "10"}, TypeError, "timeout must be a number of seconds, got '10'"),
        ({"timeout": True}, TypeError, "timeout must be a number of seconds, got True"),
        ({"interval": -0.1}, ValueError, "interval must be a finite number of seconds, 0 or"),
        ({"interval": float("inf")}, ValueError, "interval must be a finite number"),
        ({"interval": None}, TypeError, "interval must be a number of seconds, got None"),
        ({"backoff": 0.5}, ValueError, "backoff must be a finite number, 1 or more, got 0.5"),
        ({"backoff": float("inf")}, ValueError, "backoff must be a finite number"),
        ({"backoff": "2"}, TypeError, "backoff must be a number, got '2'"),
    ],
)
@pytest.mark.parametrize("form", ["function", "block"])
def test_bad_arguments_are_refused_by_name_at_the_call(
    arguments: dict[str, Any], error: type[Exception], match: str, form: str
) -> None:
    check = (lambda: True) if form == "function" else None
    with pytest.raises(error, match=rf"^eventually\(\): {match}"):
        eventually(check, **arguments)


def test_a_check_that_is_not_a_function_is_refused() -> None:
    with pytest.raises(TypeError, match=r"check must be a function of no arguments, got 3$"):
        eventually(3)  # type: ignore[call-overload]

    async def ready() -> bool:
        return True

    called = ready()
    try:
        with pytest.raises(TypeError, match="pass the async function, not a call of it"):
            eventually(called)  # type: ignore[call-overload]
    finally:
        called.close()


# -- the test's own time limit -------------------------------------------------


class TimeLimit:
    """Stands in for the runner's view of a concurrent test's time limit:
    the limit runs out at ``ends_at`` on the fake clock (None: no limit)."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item
        self.ends_at: float | None = None

    def time_left(self, item: pytest.Item) -> float | None:
        assert item is self.item
        if self.ends_at is None:
            return None
        return self.ends_at - asyncio.get_running_loop().time()

    def running(self, *, concurrent: bool = True) -> None:
        """Make the calling task run for the test (in its own context, so
        the outer session's idea of the running test is left alone)."""
        running_test.set(RunningTest(self.item, concurrent=concurrent))


@pytest.fixture
def time_limit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> TimeLimit:
    limit = TimeLimit(request.node)
    monkeypatch.setattr(time_limits, "time_left", limit.time_left)
    return limit


@pytest.mark.parametrize(
    ("ends_at", "attempts", "message"),
    [
        # A tenth of the 5 s left is kept back, within 50 ms and 0.5 s.
        (
            5.0,
            [0, 1, 2, 3, 4, 4.5],
            "still failing after 6 attempts over 4.5 s, cut short of its 30 s timeout by the "
            "test's time limit",
        ),
        (
            0.4,
            [0, 0.35],
            "still failing after 2 attempts over 0.35 s, cut short of its 30 s timeout by the "
            "test's time limit",
        ),
        (None, [float(n) for n in range(31)], "still failing after 31 attempts over 30.0 s"),
        (45.0, [float(n) for n in range(31)], "still failing after 31 attempts over 30.0 s"),
    ],
)
def test_the_tests_time_limit_cuts_polling_short(
    time_limit: TimeLimit, ends_at: float | None, attempts: list[float], message: str
) -> None:
    time_limit.ends_at = ends_at
    backend = Backend("asyncio")
    calls = Recorder(backend)

    def check() -> None:
        calls.call()
        raise AssertionError("still down")

    async def main() -> None:
        time_limit.running()
        await eventually(check, timeout=30, interval=1)

    failure = failure_of(backend, main)
    assert str(failure) == f"eventually: {message}\nstill down"
    assert calls.times == pytest.approx(attempts)


def test_a_test_not_running_concurrently_is_not_capped(time_limit: TimeLimit) -> None:
    time_limit.ends_at = 1.0

    async def main() -> None:
        time_limit.running(concurrent=False)
        await eventually(lambda: 0, timeout=3, interval=1)

    assert str(failure_of(Backend("asyncio"), main)).startswith(
        "eventually: still failing after 4 attempts over 3.0 s\n"
    )


# -- the schedule, in general --------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    timeout=st.floats(0.01, 50),
    interval=st.floats(0.01, 10),
    backoff=st.floats(1, 4),
)
def test_attempts_are_spaced_by_the_schedule_and_end_at_the_timeout(
    timeout: float, interval: float, backoff: float
) -> None:
    assume(timeout / interval <= 300)
    backend = Backend("asyncio")
    calls = Recorder(backend)

    def check() -> None:
        calls.call()
        raise AssertionError

    async def main() -> None:
        await eventually(check, timeout=timeout, interval=interval, backoff=backoff)

    failure = failure_of(backend, main)
    times = calls.times
    assert times[0] == 0
    assert times[-1] == pytest.approx(timeout)
    assert max(times) <= timeout + 1e-9
    for index, (earlier, later) in enumerate(itertools.pairwise(times[:-1])):
        assert later - earlier == pytest.approx(interval * backoff**index)
    # The last sleep is the rest of the time, never more than the interval due.
    if len(times) > 1:
        assert times[-1] - times[-2] <= interval * backoff ** (len(times) - 2) * (1 + 1e-9)
    assert str(failure).startswith(f"eventually: still failing after {len(times)} attempt")


# -- typing --------------------------------------------------------------------


if TYPE_CHECKING:

    async def _types_seen_by_users() -> None:
        def sync_check() -> int:
            return 1

        async def async_check() -> str:
            return "done"

        def asserts_only() -> None:
            pass

        assert_type(await eventually(sync_check), int)
        assert_type(await eventually(async_check), str)
        assert_type(await eventually(asserts_only), None)
        assert_type(await eventually(lambda: [1]), list[int])
        async for attempt in eventually(timeout=1):
            assert_type(attempt, Attempt)
            with attempt as same:
                assert_type(same, Attempt)


def test_eventually_is_exported() -> None:
    assert pytest_concurrently.eventually is eventually
    assert "eventually" in pytest_concurrently.__all__


# -- in inner sessions ---------------------------------------------------------


def test_pytest_shows_the_last_assertion_explained_under_the_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_concurrently import eventually

class Pool:
    connections = 0

pool = Pool()

@pytest.mark.concurrent
async def test_waits_for_connections():
    def connected():
        assert pool.connections == 3
    await eventually(connected, timeout=0.2, interval=0.05)

@pytest.mark.concurrent
async def test_waits_in_a_block():
    async for attempt in eventually(timeout=0.2, interval=0.05):
        with attempt:
            ready = pool.connections
            assert ready > 1
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_waits_for_connections _*",
            ">*assert pool.connections == 3",
            "E*assert 0 == 3",
            "E*where 0 = <*Pool object at *>.connections",
            "*The above exception was the direct cause of the following exception:*",
            ">*await eventually(connected, timeout=0.2, interval=0.05)",
            "E*AssertionError: eventually: still failing after * attempts over * s",
            "E*assert 0 == 3",
            "E*where 0 = <*Pool object at *>.connections",
            "*_ test_waits_in_a_block _*",
            ">*assert ready > 1",
            "E*assert 0 > 1",
            "*The above exception was the direct cause of the following exception:*",
            ">*async for attempt in eventually(timeout=0.2, interval=0.05):",
            "E*AssertionError: eventually: still failing after * attempts over * s",
            "E*assert 0 > 1",
        ]
    )
    # The frames of eventually itself are hidden.
    result.stdout.no_fnmatch_line("*pytest_concurrently*eventually.py*")


@pytest.mark.usefixtures("recorder")
def test_concurrent_tests_poll_side_by_side(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_concurrently import eventually
from recorder import record

pytestmark = pytest.mark.concurrent

arrived = []

@pytest.mark.parametrize("n", range(3))
async def test_meets_the_others(n):
    record(f"meets{n}", "start")
    arrived.append(n)
    # Passes only when all three are in flight at once, polling together.
    assert await eventually(lambda: len(arrived) == 3, timeout=10, interval=0.01)
    record(f"meets{n}", "end")

async def test_gives_up_alone():
    def never():
        assert len(arrived) == 4
    await eventually(never, timeout=0.3, interval=0.01)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    assert all_overlap(intervals(read_events(pytester)))
    result.stdout.fnmatch_lines(
        [
            "*_ test_gives_up_alone _*",
            "E*AssertionError: eventually: still failing after * attempts over * s",
            "E*assert 3 == 4",
        ]
    )


def test_a_tests_time_limit_cuts_polling_short_with_its_own_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_concurrently import eventually

@pytest.mark.concurrent(timeout=1)
async def test_limited():
    await eventually(lambda: [], timeout=30, interval=0.05)

@pytest.mark.concurrent(timeout=30)
async def test_roomy():
    await eventually(lambda: [], timeout=0.2, interval=0.05)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    # Reported in the order they end, the roomy one first.
    result.stdout.fnmatch_lines(
        [
            "*_ test_limited _*",
            "E*AssertionError: eventually: still failing after * attempts over 0.* s, cut short "
            "of its 30 s timeout by the test's time limit",
            "E*the check last returned [], which is falsy",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ test_roomy _*",
            "E*AssertionError: eventually: still failing after * attempts over * s",
            "E*the check last returned [], which is falsy",
        ]
    )
    result.stdout.no_fnmatch_line("*over * s, cut short of its 0.2 s timeout*")
    result.stdout.no_fnmatch_line("*Timeout: the test ran longer*")


def test_it_polls_on_trio_under_anyio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest
import trio
from pytest_concurrently import eventually

pytestmark = pytest.mark.anyio

@pytest.fixture
def anyio_backend():
    return "trio"

async def test_waits_for_a_task():
    box = []

    async def fill():
        await trio.sleep(0.05)
        box.append("filled")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fill)
        assert await eventually(lambda: box, timeout=10, interval=0.01) == ["filled"]
        async for attempt in eventually(timeout=10, interval=0.01):
            with attempt:
                assert box == ["filled"]

async def test_gives_up():
    started = trio.current_time()

    async def check():
        await trio.sleep(0)
        assert trio.current_time() < started
    await eventually(check, timeout=0.2, interval=0.05)
"""
    )
    result = pytester.runpytest("-p", "anyio")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*assert * < *",
            "E*AssertionError: eventually: still failing after * attempts over * s",
        ]
    )
