"""Sync test bodies in worker threads (``@pytest.mark.concurrent(thread=True)``).

A sync test that polls (``send(); for _ in range(10): if check(): return;
time.sleep(1)``) blocks whatever thread runs it. Run on the event loop's
thread it would stall every test in flight; run in a worker thread it
overlaps with them. Only the test function's body moves: its fixtures are
set up and torn down on the loop's thread, like every other test's, and the
test's task waits for the body's thread without blocking the loop.

The body runs in a copy of the test's context, so what it prints, logs and
warns is routed to its test, as it is for an ``async def`` test.

A thread cannot be stopped from outside. When a threaded test runs out of
time (or the run is stopped), its task stops waiting, the test fails (or is
interrupted) at once, and the thread runs on: whatever it returns or raises
later is dropped. The workers are daemon threads, so a body that never
returns does not keep the process from exiting.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["BodyThreads"]

_Job = tuple[Callable[[], Any], contextvars.Context, "concurrent.futures.Future[Any]"]


class BodyThreads:
    """Daemon worker threads that run test bodies, one body at a time each.

    A worker that finishes a body waits for the next; a body is handed to an
    idle worker, or to a new one when none is idle. The run admits at most
    ``--concurrency`` tests at once, which bounds the workers busy with
    tests that are in flight; workers still running the bodies of tests
    given up on come on top, one each.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._count = 0

    def start(self, body: Callable[[], Any], context: contextvars.Context) -> _Running:
        """Run ``body`` in ``context`` on a worker thread."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                self._count += 1
                worker = _Worker(self, f"pytest-concurrently test body {self._count}")
        worker.jobs.put((body, context, future))
        return _Running(future, worker)

    def _idle_again(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)


class _Running:
    """A body handed to a worker: its outcome, and the worker's thread."""

    __slots__ = ("future", "thread_id")

    def __init__(self, future: concurrent.futures.Future[Any], worker: _Worker) -> None:
        self.future = future
        self.thread_id = worker.ident


class _Worker:
    def __init__(self, pool: BodyThreads, name: str) -> None:
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._pool = pool
        thread = threading.Thread(target=self._serve, name=name, daemon=True)
        thread.start()
        assert thread.ident is not None
        self.ident: int = thread.ident

    def _serve(self) -> None:
        while True:
            body, context, future = self.jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    result = context.run(body)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            # Drop the references before waiting: a body's locals must not
            # outlive it in an idle worker.
            del body, context, future
            self._pool._idle_again(self)
