"""Owner tasks: one task runs a thing with a lifetime from start to end.

A session- or module-scoped fixture outlives the test that asked for it
first. If it were set up in that test's task and torn down in the task of
the test that needed it last, anything bound to a task would break across
its ``yield``: an anyio cancel scope or task group entered before it and
exited after it, a ``ContextVar.reset(token)``, a lock held by the task.
Cancelling the first test while it sets the fixture up would also leave the
fixture half made for everybody else.

So each shared fixture instance gets an :class:`OwnerTask`: the tests that
need it hand it synchronous jobs (set up, later tear down) and wait for
their results; the owner runs every job in its own task, one after another,
each through :func:`.bridge.run_sync` so the job may await. A test that is
cancelled while it waits just stops waiting; the owner finishes the job and
keeps the result for the next test that asks.

While a job runs, the owner carries the asking test's attribution (which
test is running, where its output, log records and warnings go), so what a
fixture prints while it is set up for a test appears in that test's report
section, as in pytest.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

from . import bridge, routing
from .current import running_test

__all__ = ["OwnerTask"]

T = TypeVar("T")

# What a job carries over from the test that asked for it.
_ATTRIBUTION: tuple[contextvars.ContextVar[Any], ...] = (
    running_test,
    *routing.SINK_VARIABLES,
)

_Job = tuple[
    Callable[..., Any],
    tuple[Any, ...],
    list[tuple[contextvars.ContextVar[Any], Any]],
    "asyncio.Future[Any]",
]


class OwnerTask:
    """A task that runs synchronous jobs for others, in order, in itself.

    :param name: names the task (``asyncio.Task.get_name``), for debugging.
    :param context: the context the task starts from (a copy is taken);
        owners of shared fixtures start from the session's context, not from
        the context of the test that happened to ask first.
    """

    def __init__(self, name: str, context: contextvars.Context) -> None:
        self._name = name
        self._context = context
        self._jobs: asyncio.Queue[_Job | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: no more jobs are accepted."""
        return self._closed

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in the owner's task and return its result.

        Cancelling the caller stops the wait, not the job.
        """
        if self._closed:
            raise RuntimeError(f"{self._name}: the owner has ended and takes no more jobs")
        loop = asyncio.get_running_loop()
        if self._jobs is None:
            self._jobs = asyncio.Queue()
            self._task = self._context.run(loop.create_task, self._serve(), name=self._name)
        done: asyncio.Future[T] = loop.create_future()
        # The result is wanted even when the asker has stopped waiting;
        # reading the exception keeps asyncio from logging it as lost.
        done.add_done_callback(_consume_exception)
        carried = [(variable, variable.get(None)) for variable in _ATTRIBUTION]
        self._jobs.put_nowait((function, args, carried, done))
        try:
            return await asyncio.shield(done)
        except BaseException as exc:
            if not done.done() and hasattr(exc, "add_note"):
                # Interrupted while waiting (a time limit): say for whom.
                exc.add_note(f"(while waiting for the {self._name.partition(': ')[2]})")
            raise

    def close(self) -> None:
        """Take no more jobs; the task ends after the jobs already given."""
        if self._closed:
            return
        self._closed = True
        if self._jobs is not None:
            self._jobs.put_nowait(None)

    def abandon(self) -> None:
        """Cancel the task, whatever it is doing (the session is ending)."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _serve(self) -> None:
        assert self._jobs is not None
        while (job := await self._jobs.get()) is not None:
            function, args, carried, done = job
            del job
            tokens = [variable.set(value) for variable, value in carried]
            try:
                result = await bridge.run_sync(function, *args)
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                # The owner itself is cancelled (the session is ending) or
                # the process is interrupted: no more jobs.
                self._closed = True
                if not done.done():
                    done.cancel()
                raise
            except BaseException as exc:
                # Failures, and pytest's outcomes (a skip in a teardown),
                # belong to the job; the owner goes on serving.
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(result)
            finally:
                for token in reversed(tokens):
                    token.var.reset(token)
                del function, args, carried, done


def _consume_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
