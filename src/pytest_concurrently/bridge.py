"""Run pytest's synchronous machinery inside a test's task, and let it await.

pytest sets fixtures up and tears them down through plain function calls
(``FixtureDef.execute`` calls ``pytest_fixture_setup`` calls the fixture).
To give every concurrent test its own trip through that machinery while its
async fixtures overlap with other tests', each test runs the machinery in a
greenlet of its own: :func:`run_sync` hands the work to a greenlet from the
test's asyncio task, and whenever the synchronous code needs a coroutine's
result it calls :func:`wait_for`, which passes the awaitable back to the task,
lets the event loop run other tests, and resumes the synchronous code with the
result.

Greenlets are kept in a pool and reused: creating one costs several times
more than pytest spends on a trivial test's report.

Outside a greenlet (a test that runs alone, or the end of the session) the
event loop is not running, and :func:`wait_for` runs the awaitable on it
directly through the runner installed with :func:`set_idle_loop_runner`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import greenlet

__all__ = ["INTERRUPTED", "in_bridged_code", "run_sync", "set_idle_loop_runner", "wait_for"]

T = TypeVar("T")

#: The message a task is cancelled with when the session is being interrupted.
INTERRUPTED = "pytest-concurrently: the session is being interrupted"

IdleLoopRunner = Callable[[Coroutine[Any, Any, Any]], Any]
_idle_loop_runner: IdleLoopRunner | None = None

# What a worker hands back to the task: ("await", awaitable), ("return",
# value) or ("raise", exception).
_AWAIT, _RETURN, _RAISE = "await", "return", "raise"
_Message = tuple[str, Any]


class _Worker(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet that runs one synchronous job after another for asyncio
    tasks, each job in the context of the task that handed it over."""

    def __init__(self) -> None:
        super().__init__(self._serve)

    def _serve(self, job: tuple[Callable[..., Any], tuple[Any, ...]]) -> None:
        while True:
            function, args = job
            message: _Message
            try:
                message = (_RETURN, function(*args))
            except greenlet.GreenletExit:
                raise
            except BaseException as exc:
                message = (_RAISE, exc)
            del function, args
            job = self.parent.switch(message)


_idle_workers: list[_Worker] = []
# Enough idle greenlets for a steady stream of tests; beyond that, a burst of
# thousands of tests in flight would leave thousands of suspended greenlets
# (each holding a copy of its stack) for the rest of the session.
_MOST_IDLE_WORKERS = 64


def set_idle_loop_runner(runner: IdleLoopRunner | None) -> IdleLoopRunner | None:
    """Install the function that runs a coroutine to completion on the
    plugin's event loop while that loop is not running; returns the one it
    replaces."""
    global _idle_loop_runner
    previous, _idle_loop_runner = _idle_loop_runner, runner
    return previous


def in_bridged_code() -> bool:
    """True when called from synchronous code started by :func:`run_sync`."""
    return isinstance(greenlet.getcurrent(), _Worker)


async def run_sync(function: Callable[..., T], *args: Any) -> T:
    """Call ``function(*args)`` in a greenlet, awaiting on its behalf.

    Exceptions raised by ``function`` propagate; exceptions raised while
    awaiting (cancellation included) are thrown into ``function`` at the
    :func:`wait_for` call that asked for the await.
    """
    worker = _idle_workers.pop() if _idle_workers else _Worker()
    task_greenlet = greenlet.getcurrent()
    worker.parent = task_greenlet
    # Share the task's contextvars with the synchronous code, so a fixture
    # that sets a context variable is seen by the test body and vice versa.
    worker.gr_context = task_greenlet.gr_context
    kind, payload = worker.switch((function, args))
    while kind == _AWAIT:
        try:
            value = await cast(Awaitable[Any], payload)
        except BaseException as exc:
            kind, payload = worker.throw(*_as_thrown(exc))
        else:
            kind, payload = worker.switch(value)
    if len(_idle_workers) < _MOST_IDLE_WORKERS:
        _idle_workers.append(worker)
    if kind == _RAISE:
        raise payload
    return cast(T, payload)


def _as_thrown(exc: BaseException) -> tuple[type[BaseException], BaseException, Any]:
    """What to throw into the synchronous code for an exception raised while
    awaiting on its behalf.

    When the runner cancels a test's task with :data:`INTERRUPTED`, the
    session is being interrupted (Ctrl-C, or ``pytest.exit`` in another
    test): pytest's test phases would record a ``CancelledError`` as the
    test's failure but let ``KeyboardInterrupt`` through, so that is what the
    test sees. Any other ``CancelledError`` is the test's own.
    """
    if isinstance(exc, asyncio.CancelledError) and exc.args[:1] == (INTERRUPTED,):
        interrupt = KeyboardInterrupt()
        interrupt.__context__ = exc
        return KeyboardInterrupt, interrupt, None
    return type(exc), exc, exc.__traceback__


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def wait_for(awaitable: Awaitable[T]) -> T:
    """Return the result of ``awaitable`` from synchronous code.

    Inside :func:`run_sync` the awaitable runs in the calling test's task;
    elsewhere it runs on the idle event loop.
    """
    __tracebackhide__ = True
    current = greenlet.getcurrent()
    if isinstance(current, _Worker):
        return cast(T, current.parent.switch((_AWAIT, awaitable)))
    if _running_loop() is not None:
        _close(awaitable)
        raise RuntimeError(
            "pytest-concurrently cannot run an async fixture or test synchronously "
            "from code that is already running on the event loop; request the fixture "
            "as an argument of the test or fixture instead of calling "
            "request.getfixturevalue() from async code"
        )
    if _idle_loop_runner is None:
        _close(awaitable)
        raise RuntimeError("pytest-concurrently's event loop is not available")
    return cast(T, _idle_loop_runner(_await(awaitable)))


def _close(awaitable: Awaitable[Any]) -> None:
    if asyncio.iscoroutine(awaitable):
        awaitable.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
