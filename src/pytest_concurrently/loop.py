"""The one event loop of a test session.

The loop is created on first use and closed at the end of the session. It runs
in bursts: while a group of concurrent tests is in flight, and whenever a test
that runs alone needs an async fixture or an async test body. Between bursts
it is idle, so another plugin (pytest-asyncio, anyio) can run its own loop for
the tests it owns. Tasks started by a fixture keep their place on the loop and
resume with the next burst.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["EventLoopHost"]

T = TypeVar("T")


class EventLoopHost:
    """Owns the session's event loop and runs coroutines on it."""

    def __init__(self) -> None:
        self._runner: _Runner | None = None
        self.idle_context: contextvars.Context | None = None
        """The context that coroutines run in when :meth:`run` is given none:
        each test that runs alone gets a fresh one, so what one test's async
        fixtures put in context variables does not leak into the next."""

    def run(
        self, coroutine: Coroutine[Any, Any, T], *, context: contextvars.Context | None = None
    ) -> T:
        """Run ``coroutine`` to completion on the session loop, as a task in
        ``context`` (by default :attr:`idle_context`).

        Must not be called while the loop is running. Ctrl-C cancels the task
        and then raises ``KeyboardInterrupt``.
        """
        if self._runner is None:
            # Through a factory, so the loop is not made the thread's current
            # event loop: pytest-asyncio closes the current loop when it
            # installs its own.
            self._runner = _Runner(loop_factory=asyncio.new_event_loop)
        return self._runner.run(
            coroutine, context=self.idle_context if context is None else context
        )

    def close(self) -> None:
        """Finish async generators, shut down the default executor and close
        the loop. Safe to call when no loop was ever created."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            runner.close()


if sys.version_info >= (3, 11):
    _Runner = asyncio.Runner
else:  # pragma: no cover - exercised on Python 3.10 only

    class _Runner:
        """The part of :class:`asyncio.Runner` (Python 3.11) used here."""

        def __init__(self, loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
            self._loop = loop_factory()

        def run(
            self,
            coroutine: Coroutine[Any, Any, T],
            *,
            context: contextvars.Context | None = None,
        ) -> T:
            if context is None:
                return self._loop.run_until_complete(coroutine)
            # Python 3.10 cannot give a task a context, only a copy of the
            # current one: copy what the task set back into ``context``.
            # (A token made in one task still cannot reset a variable in
            # another.)
            task = context.run(self._loop.create_task, _reporting_context(coroutine))
            result, changed = self._loop.run_until_complete(task)
            for variable, value in changed.items():
                if context.get(variable, _MISSING) is not value:
                    context.run(variable.set, value)
            return result

        def close(self) -> None:
            loop = self._loop
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    _MISSING = object()

    async def _reporting_context(
        coroutine: Coroutine[Any, Any, T],
    ) -> tuple[T, contextvars.Context]:
        result = await coroutine
        return result, contextvars.copy_context()
