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
        # New workers' threads are started from a thread of their own:
        # ``Thread.start`` waits until the new thread runs, a round trip
        # through the OS scheduler that, with a thousand bodies starting at
        # once, would hold the event loop for up to a second.
        self._unstarted: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._starter: threading.Thread | None = None

    def start(self, body: Callable[[], Any], context: contextvars.Context) -> _Running:
        """Run ``body`` in ``context`` on a worker thread."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                self._count += 1
                worker = _Worker(self, f"pytest-concurrently test body {self._count}")
                unstarted = True
            else:
                unstarted = False
        worker.jobs.put((body, context, future))
        if unstarted:
            self._start_soon(worker)
        return _Running(future, worker)

    def _start_soon(self, worker: _Worker) -> None:
        self._unstarted.put(worker)
        with self._lock:
            if self._starter is None:
                self._starter = threading.Thread(
                    target=self._start_workers,
                    name="pytest-concurrently thread starter",
                    daemon=True,
                )
                self._starter.start()

    def _start_workers(self) -> None:
        while True:
            worker = self._unstarted.get()
            try:
                worker.thread.start()
            except Exception as exc:  # the system cannot start another thread
                worker.fail(exc)

    def _idle_again(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)


class _Running:
    """A body handed to a worker: its outcome, and the worker's thread."""

    __slots__ = ("_worker", "future")

    def __init__(self, future: concurrent.futures.Future[Any], worker: _Worker) -> None:
        self.future = future
        self._worker = worker

    @property
    def thread_id(self) -> int | None:
        """The worker thread's identifier; None until that thread runs."""
        return self._worker.thread.ident


class _Worker:
    def __init__(self, pool: BodyThreads, name: str) -> None:
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._pool = pool
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def fail(self, exc: Exception) -> None:
        """The thread could not be started: ``exc`` is the outcome of the
        body it was given."""
        _, _, future = self.jobs.get_nowait()
        if future.set_running_or_notify_cancel():
            future.set_exception(exc)

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
