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
from collections.abc import Coroutine
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
            self._runner = _Runner()
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

        def __init__(self) -> None:
            self._loop = asyncio.new_event_loop()

        def run(
            self,
            coroutine: Coroutine[Any, Any, T],
            *,
            context: contextvars.Context | None = None,
        ) -> T:
            asyncio.set_event_loop(self._loop)
            if context is None:
                return self._loop.run_until_complete(coroutine)
            # Python 3.10 cannot give a task a context; it copies the current one.
            task = context.run(self._loop.create_task, coroutine)
            return self._loop.run_until_complete(task)

        def close(self) -> None:
            loop = self._loop
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
