"""The worker threads that run sync test bodies (see
:mod:`pytest_concurrently.threads`); the tests of threaded tests in whole
sessions are in ``test_threads.py``."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

import pytest

from pytest_concurrently.threads import BodyThreads

_WORKER_NAME = "pytest-concurrently test body"


def _patch_worker_start(
    monkeypatch: pytest.MonkeyPatch, before_start: Callable[[threading.Thread], object]
) -> None:
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name.startswith(_WORKER_NAME):
            before_start(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)


def test_many_bodies_at_once_each_get_a_thread() -> None:
    pool = BodyThreads()
    barrier = threading.Barrier(20, timeout=60)
    variable: contextvars.ContextVar[int] = contextvars.ContextVar("variable")

    def body() -> tuple[int, int]:
        # Every body waits for all the others: they must run at once.
        barrier.wait()
        return threading.get_ident(), variable.get()

    started = []
    for index in range(20):
        context = contextvars.copy_context()
        context.run(variable.set, index)
        started.append(pool.start(body, context))
    results = [running.future.result(timeout=60) for running in started]
    assert len({ident for ident, _ in results}) == 20
    assert [value for _, value in results] == list(range(20))


def test_a_thread_that_cannot_be_started_fails_the_hand_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(_thread: threading.Thread) -> Any:
        raise RuntimeError("can't start new thread")

    _patch_worker_start(monkeypatch, refuse)
    pool = BodyThreads()
    # Raised where the test's body is handed over: the test fails with it.
    with pytest.raises(RuntimeError, match="can't start new thread"):
        pool.start(lambda: None, contextvars.copy_context())
    # The worker that never started is not kept for later bodies.
    monkeypatch.undo()
    running = pool.start(threading.get_ident, contextvars.copy_context())
    assert running.future.result(timeout=60) == running.thread_id
