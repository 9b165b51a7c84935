"""The one event loop of a test session.

The loop is created on first use and closed at the end of the session. It runs
in bursts: while a group of concurrent tests is in flight, while a test that
runs alone has async code, and whenever a fixture's owner has work to do.
Between bursts it is idle, so another plugin (pytest-asyncio, anyio) can run
its own loop for the tests it owns. Tasks started by a fixture keep their
place on the loop and resume with the next burst.

Two things a test may do to the loop are kept from ending the run: stopping
it (``loop.stop()`` raises in the test, which fails that test alone), and
Ctrl-C, which interrupts the burst's main task the way the runner interrupts
a test (see :func:`.bridge.interrupt`) and becomes ``KeyboardInterrupt`` once
the burst has wound down; a second Ctrl-C raises ``KeyboardInterrupt`` at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from . import bridge

__all__ = ["EventLoopHost"]

T = TypeVar("T")


def _new_session_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    stop = loop.stop

    def stop_unless_a_test_asks() -> None:
        # Tests and fixtures run in tasks; asyncio stops the loop from a
        # callback, outside any task.
        if asyncio.current_task(loop) is not None:
            raise RuntimeError(
                "pytest-concurrently: a test or fixture may not stop the session's event "
                "loop, which runs every test in flight"
            )
        stop()

    # A loop class without a __dict__ (a compiled one) keeps its own stop.
    with contextlib.suppress(AttributeError):
        loop.stop = stop_unless_a_test_asks  # type: ignore[method-assign]
    return loop


class EventLoopHost:
    """Owns the session's event loop and runs coroutines on it."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self.idle_context: contextvars.Context | None = None
        """The context that coroutines run in when :meth:`run` is given none."""
        self.session_context = contextvars.copy_context()
        """A context from before any test ran: owners of shared fixtures
        start from it, whichever test asks for the fixture first."""
        self.on_second_interrupt: Callable[[], object] | None = None
        """Called (from the loop) at a second Ctrl-C during :meth:`run`,
        instead of raising ``KeyboardInterrupt`` there; a third raises."""

    def run(
        self, coroutine: Coroutine[Any, Any, T], *, context: contextvars.Context | None = None
    ) -> T:
        """Run ``coroutine`` to completion on the session loop, as a task in
        ``context`` (by default :attr:`idle_context`, else a copy of the
        current context).

        Must not be called while the loop is running.
        """
        if self._loop is None:
            # Not made the thread's current event loop: pytest-asyncio closes
            # the current loop when it installs its own.
            self._loop = _new_session_loop()
        loop = self._loop
        if context is None:
            context = self.idle_context
        if context is None:
            context = contextvars.copy_context()
        task, copy_back = _create_task(loop, coroutine, context)
        with _interrupting_on_sigint(loop, task, self.on_second_interrupt) as interrupted:
            try:
                while True:
                    try:
                        result = loop.run_until_complete(task)
                        break
                    except RuntimeError:
                        # Stopped from outside a test (a signal handler, say):
                        # carry on until the task is done.
                        if task.done() or loop.is_running():
                            raise
            except asyncio.CancelledError:
                if interrupted():
                    raise KeyboardInterrupt() from None
                raise
        return cast(T, copy_back(result))

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` on the session loop, from any thread: when the
        loop next runs, or at once if it is running. Does nothing when there
        is no loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback)

    def close(self) -> None:
        """Cancel what is left, finish async generators, shut down the
        default executor and close the loop. Safe to call when no loop was
        ever created."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            left = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in left:
                task.cancel()
            # A test abandoned for ignoring its timeout may ignore this too.
            left = [task for task in left if not bridge.is_abandoned(task)]
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


@contextmanager
def _interrupting_on_sigint(
    loop: asyncio.AbstractEventLoop,
    task: asyncio.Task[Any],
    on_second: Callable[[], object] | None,
) -> Iterator[Callable[[], bool]]:
    """While the block runs, the first Ctrl-C interrupts ``task`` (it winds
    down, tests tear down), the second calls ``on_second`` from the loop (or
    raises ``KeyboardInterrupt`` without one), and a third raises."""
    count = 0

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal count
        count += 1
        if count == 1 and not task.done():
            bridge.interrupt(task)
            loop.call_soon_threadsafe(lambda: None)
            return
        if count == 2 and on_second is not None and not task.done():
            # Not raised here: the handler may run inside a test's code,
            # which would take the interruption for its own.
            loop.call_soon_threadsafe(on_second)
            return
        raise KeyboardInterrupt()

    install = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if install:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: count > 0
    finally:
        if install:
            signal.signal(signal.SIGINT, signal.default_int_handler)


_MISSING = object()


if sys.version_info >= (3, 11):

    def _create_task(
        loop: asyncio.AbstractEventLoop,
        coroutine: Coroutine[Any, Any, T],
        context: contextvars.Context,
    ) -> tuple[asyncio.Task[Any], Any]:
        return loop.create_task(coroutine, context=context), _unchanged

    def _unchanged(result: T) -> T:
        return result

else:  # pragma: no cover - exercised on Python 3.10 only

    def _create_task(
        loop: asyncio.AbstractEventLoop,
        coroutine: Coroutine[Any, Any, T],
        context: contextvars.Context,
    ) -> tuple[asyncio.Task[Any], Any]:
        # Python 3.10 cannot give a task a context, only a copy of the
        # current one: copy what the task set back into ``context``. (A
        # token made in one task still cannot reset a variable in another.)
        task = context.run(loop.create_task, _reporting_context(coroutine))

        def copy_back(outcome: tuple[T, contextvars.Context]) -> T:
            result, changed = outcome
            for variable, value in changed.items():
                if context.get(variable, _MISSING) is not value:
                    context.run(variable.set, value)
            return result

        return task, copy_back

    async def _reporting_context(
        coroutine: Coroutine[Any, Any, T],
    ) -> tuple[T, contextvars.Context]:
        result = await coroutine
        return result, contextvars.copy_context()
