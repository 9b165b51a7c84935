"""Run pytest's synchronous machinery inside a test's task, and let it await.

pytest sets fixtures up and tears them down through plain function calls
(``FixtureDef.execute`` calls ``pytest_fixture_setup`` calls the fixture).
To give every concurrent test its own trip through that machinery while its
async fixtures overlap with other tests', each test runs the machinery in a
greenlet of its own: :func:`run_sync` starts the greenlet from the test's
asyncio task, and whenever the synchronous code needs a coroutine's result it
calls :func:`wait_for`, which hands the awaitable back to the task, lets the
event loop run other tests, and resumes the synchronous code with the result.

Outside a greenlet (a test that runs alone, or the end of the session) the
event loop is not running, and :func:`wait_for` runs the awaitable on it
directly through the runner installed with :func:`set_idle_loop_runner`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import greenlet

__all__ = ["in_bridged_code", "run_sync", "set_idle_loop_runner", "wait_for"]

T = TypeVar("T")

IdleLoopRunner = Callable[[Coroutine[Any, Any, Any]], Any]
_idle_loop_runner: IdleLoopRunner | None = None


class _BridgedGreenlet(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet running synchronous code on behalf of an asyncio task."""


def set_idle_loop_runner(runner: IdleLoopRunner | None) -> IdleLoopRunner | None:
    """Install the function that runs a coroutine to completion on the
    plugin's event loop while that loop is not running; returns the one it
    replaces."""
    global _idle_loop_runner
    previous, _idle_loop_runner = _idle_loop_runner, runner
    return previous


def in_bridged_code() -> bool:
    """True when called from synchronous code started by :func:`run_sync`."""
    return isinstance(greenlet.getcurrent(), _BridgedGreenlet)


async def run_sync(function: Callable[..., T], *args: Any) -> T:
    """Call ``function(*args)`` in a new greenlet, awaiting on its behalf.

    Exceptions raised by ``function`` propagate; exceptions raised while
    awaiting (cancellation included) are thrown into ``function`` at the
    :func:`wait_for` call that asked for the await.
    """
    task_greenlet = greenlet.getcurrent()
    child = _BridgedGreenlet(function, task_greenlet)
    # Share the task's contextvars with the synchronous code, so a fixture
    # that sets a context variable is seen by the test body and vice versa.
    child.gr_context = task_greenlet.gr_context
    request = child.switch(*args)
    while not child.dead:
        try:
            value = await cast(Awaitable[Any], request)
        except BaseException as exc:  # noqa: BLE001 - handed to the sync code
            request = child.throw(type(exc), exc, exc.__traceback__)
        else:
            request = child.switch(value)
    return cast(T, request)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def wait_for(awaitable: Awaitable[T]) -> T:
    """Return the result of ``awaitable`` from synchronous code.

    Inside :func:`run_sync` the awaitable runs in the calling test's task;
    elsewhere it runs on the idle event loop.
    """
    __tracebackhide__ = True
    current = greenlet.getcurrent()
    if isinstance(current, _BridgedGreenlet):
        return cast(T, current.parent.switch(awaitable))
    if _running_loop() is not None:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise RuntimeError(
            "pytest-concurrently cannot run an async fixture or test synchronously "
            "from code that is already running on the event loop; request the fixture "
            "as an argument of the test or fixture instead of calling "
            "request.getfixturevalue() from async code"
        )
    if _idle_loop_runner is None:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise RuntimeError("pytest-concurrently's event loop is not available")
    return cast(T, _idle_loop_runner(_await(awaitable)))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
