"""Waiting for a condition: ``await pytest_concurrently.eventually(check)``.

A test that waits for something to happen in the background (a server to
start, a message to arrive, a task to write its result) should not sleep a
fixed time and hope: it should try a check again and again until it passes.
:func:`eventually` does that on whichever library runs the test, asyncio or
trio, and sleeps on that library's clock between attempts, so the other tests
in flight run while it waits.

A check fails an attempt by raising :class:`AssertionError` (a plain
``assert``) or by returning a falsy value. When the time is up, the test fails
with the last attempt's assertion error, pytest's explanation of it intact,
under a line that says how many attempts were made over how long.

A concurrent test's own time limit (:mod:`.timeouts`) caps the wait: polling
that would outlast it stops a little before, so the test fails with what the
check last saw rather than with a bare timeout at an ``await``.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
import reprlib
import sys
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar, overload

from . import timeouts
from .current import running_test

__all__ = ["Attempt", "Attempts", "eventually"]

T = TypeVar("T")

_Now = Callable[[], float]
_Sleep = Callable[[float], Awaitable[object]]

# Of the time a test has left, what eventually() keeps back: room for its
# last attempt and its failure before the test's own limit interrupts it.
_MARGIN_SHARE = 0.1
_MARGIN_MIN = 0.05
_MARGIN_MAX = 0.5

_reprs = reprlib.Repr()
_reprs.maxstring = 80
_reprs.maxother = 80


def _short_repr(value: object) -> str:
    try:
        return _reprs.repr(value)
    except Exception:
        # A broken __repr__ must not hide the failure it would describe.
        return f"<{type(value).__name__} object>"


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f}" if seconds >= 1 else f"{seconds:.2f}"


def _running_clock() -> tuple[_Now, _Sleep]:
    """The clock and the sleep of the async library running the caller."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return loop.time, asyncio.sleep
    # Not imported: trio is not a dependency, and code that runs on it has
    # imported it already.
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            now: _Now = trio.current_time
            now()
        except RuntimeError:
            pass
        else:
            sleep: _Sleep = trio.sleep
            return now, sleep
    raise RuntimeError("eventually() must be awaited on a running asyncio or trio event loop")


def _test_time_left() -> float | None:
    """Seconds before the running concurrent test's time limit interrupts
    it; None outside such a test, or when no limit runs for it."""
    current = running_test.get()
    if current is None or not current.concurrent:
        return None
    # Through the module, so that a test can stand in for the runner.
    return timeouts.time_left(current.item)


class _Schedule:
    """When each attempt is made, and what the failure says when time is up.

    :param timeout: seconds from the first attempt to the last.
    :param interval: seconds to sleep after the first failed attempt.
    :param backoff: the factor each following interval grows by.
    """

    def __init__(self, timeout: float, interval: float, backoff: float) -> None:
        self.timeout = timeout
        self.attempts = 0
        self._delay = interval
        self._backoff = backoff
        self._now: _Now = _not_started
        self._sleep: _Sleep | None = None
        self._started = 0.0
        self._margin: float | None = None
        self._last = False
        self._cut_short = False

    def start(self) -> None:
        """Start the clock, on the library that runs the caller."""
        self._now, self._sleep = _running_clock()
        self._started = self._now()

    async def wait(self) -> bool:
        """After a failed attempt, sleep until the next one is due; False,
        without sleeping, when there is to be no next one."""
        assert self._sleep is not None
        if self._last:
            return False
        now = self._now()
        deadline, self._cut_short = self._deadline(now)
        if now >= deadline:
            return False
        pause = deadline - now
        if self._delay >= pause:
            # One more attempt at the deadline, rather than none because the
            # next interval would end past it.
            self._last = True
        else:
            pause = self._delay
        await self._sleep(pause)
        self._delay *= self._backoff
        return True

    def _deadline(self, now: float) -> tuple[float, bool]:
        """When the last attempt is due, and whether that is the test's time
        limit rather than the timeout. Read again before every sleep: the
        test's limit moves later while it waits for a lock or for a loop
        blocked by another test."""
        own = self._started + self.timeout
        left = _test_time_left()
        if left is None:
            return own, False
        if self._margin is None:
            self._margin = min(max(left * _MARGIN_SHARE, _MARGIN_MIN), _MARGIN_MAX)
        limited = now + left - self._margin
        return (limited, True) if limited < own else (own, False)

    def failure(self, error: BaseException | None, value: object = None) -> AssertionError:
        """The failure for time being up, after ``error`` (or a falsy
        ``value``) from the last attempt."""
        elapsed = self._now() - self._started
        plural = "" if self.attempts == 1 else "s"
        head = (
            f"eventually: still failing after {self.attempts} attempt{plural} "
            f"over {_seconds(elapsed)} s"
        )
        if self._cut_short:
            head += f", cut short of its {self.timeout:g} s timeout by the test's time limit"
        if isinstance(error, AssertionError):
            # The message of a rewritten assert is pytest's explanation.
            detail = str(error) or type(error).__name__
        elif error is not None:
            detail = f"{type(error).__name__}: {error}"
        else:
            detail = f"the check last returned {_short_repr(value)}, which is falsy"
        return AssertionError(f"{head}\n{detail}")


def _not_started() -> float:
    raise RuntimeError("eventually(): the clock was read before polling started")


async def _eventually(check: Callable[[], Any], schedule: _Schedule) -> Any:
    __tracebackhide__ = True
    schedule.start()
    while True:
        schedule.attempts += 1
        error: AssertionError | None = None
        value: Any = None
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
        except AssertionError as exc:
            error = exc
        else:
            if value is None or value:
                return value
        if not await schedule.wait():
            break
    # Raised out here, not in the except clause, so that the failure is
    # chained to the last error alone, as its cause.
    if error is None:
        raise schedule.failure(None, value)
    raise schedule.failure(error) from error


_FRESH, _RUNNING, _PASSED, _FAILED = "fresh", "running", "passed", "failed"


class Attempt:
    """One attempt of the block form of :func:`eventually`: a context
    manager around the check. An :class:`AssertionError` raised in the block
    fails the attempt and is kept for the failure, not raised; a block that
    ends normally passes the attempt and ends the loop. Any other exception
    leaves the block and the loop as usual.

    :param number: which attempt this is, from 1.
    """

    __slots__ = ("_error", "_state", "number")

    def __init__(self, number: int) -> None:
        self.number = number
        self._state = _FRESH
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<Attempt {self.number} {self._state}>"

    def __enter__(self) -> Attempt:
        if self._state != _FRESH:
            raise RuntimeError(f"eventually(): attempt {self.number} was used already")
        self._state = _RUNNING
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is None:
            self._state = _PASSED
            return False
        self._state = _FAILED
        self._error = exc
        return isinstance(exc, AssertionError)

    def _outcome(self) -> tuple[bool, BaseException | None]:
        """Whether the attempt passed, and what failed it otherwise."""
        if self._state in (_FRESH, _RUNNING):
            raise RuntimeError(
                f"eventually(): attempt {self.number} was not used; "
                "write the check in the loop as `with attempt: ...`"
            )
        return self._state == _PASSED, self._error


class Attempts:
    """The block form of :func:`eventually`: an async iterator of
    :class:`Attempt`, which ends once an attempt passes and fails the test
    when the time is up. Iterate it once."""

    def __init__(self, schedule: _Schedule) -> None:
        self._schedule = schedule
        self._current: Attempt | None = None
        self._over = False

    def __aiter__(self) -> Attempts:
        return self

    async def __anext__(self) -> Attempt:
        __tracebackhide__ = True
        schedule = self._schedule
        if self._over:
            raise StopAsyncIteration
        if self._current is None:
            schedule.start()
        else:
            passed, error = self._current._outcome()
            if passed:
                self._over = True
                raise StopAsyncIteration
            if not await schedule.wait():
                self._over = True
                raise schedule.failure(error) from error
        schedule.attempts += 1
        self._current = Attempt(schedule.attempts)
        return self._current


def _seconds_argument(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"eventually(): {name} must be a number of seconds, got {value!r}")
    return float(value)


@overload
def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.5,
    backoff: float = 1.0,
) -> Coroutine[Any, Any, T]: ...


@overload
def eventually(
    check: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.5,
    backoff: float = 1.0,
) -> Coroutine[Any, Any, T]: ...


@overload
def eventually(
    check: None = None,
    *,
    timeout: float = 10.0,
    interval: float = 0.5,
    backoff: float = 1.0,
) -> Attempts: ...


def eventually(
    check: Callable[[], Any] | None = None,
    *,
    timeout: float = 10.0,
    interval: float = 0.5,
    backoff: float = 1.0,
) -> Coroutine[Any, Any, Any] | Attempts:
    """Try ``check`` until it passes, inside a test or a fixture::

        await pytest_concurrently.eventually(lambda: server.ready)
        row = await pytest_concurrently.eventually(fetch_row, timeout=30)

    ``check`` is a function or an async function of no arguments. An attempt
    passes when it returns without raising :class:`AssertionError` and its
    value is truthy or None (a check that only asserts returns None); the
    value is returned. Any other exception from ``check`` is raised at once.
    Between attempts it sleeps ``interval`` seconds, then ``interval *
    backoff``, and so on, on the clock of the library running it (asyncio or
    trio). The first attempt is made at once, and the last at the timeout.

    Without ``check`` it returns the block form, for a check of more than
    one line::

        async for attempt in pytest_concurrently.eventually(timeout=30):
            with attempt:
                row = await fetch_row()
                assert row.status == "done"

    A concurrent test's own time limit caps ``timeout``: polling stops a
    little before that limit would interrupt the test.

    :param timeout: seconds to go on trying, more than 0.
    :param interval: seconds to sleep after the first failed attempt, 0 or
        more.
    :param backoff: the factor each sleep grows by, 1 (the default: a steady
        interval) or more.
    :raises AssertionError: when the time is up, with the last attempt's
        assertion error as its cause and its message, or what the check last
        returned.
    """
    if check is not None and not callable(check):
        hint = "; pass the async function, not a call of it" if inspect.isawaitable(check) else ""
        raise TypeError(
            f"eventually(): check must be a function of no arguments, got {check!r}{hint}"
        )
    seconds = _seconds_argument("timeout", timeout)
    if not seconds > 0:
        raise ValueError(f"eventually(): timeout must be more than 0 seconds, got {timeout!r}")
    pause = _seconds_argument("interval", interval)
    if not 0 <= pause < math.inf:
        raise ValueError(
            f"eventually(): interval must be a finite number of seconds, 0 or more, "
            f"got {interval!r}"
        )
    if isinstance(backoff, bool) or not isinstance(backoff, numbers.Real):
        raise TypeError(f"eventually(): backoff must be a number, got {backoff!r}")
    factor = float(backoff)
    if not 1 <= factor < math.inf:
        raise ValueError(
            f"eventually(): backoff must be a finite number, 1 or more, got {backoff!r}"
        )
    schedule = _Schedule(seconds, pause, factor)
    if check is None:
        return Attempts(schedule)
    return _eventually(check, schedule)
