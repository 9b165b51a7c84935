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


def test_handing_a_body_over_does_not_wait_for_a_new_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Starting a thread waits until it runs; a thousand bodies started
    # from the event loop's thread at once would hold the loop meanwhile.
    gate = threading.Event()
    _patch_worker_start(monkeypatch, lambda _thread: gate.wait(timeout=5))
    pool = BodyThreads()
    running = pool.start(lambda: 42, contextvars.copy_context())
    assert running.thread_id is None
    assert not running.future.done()
    gate.set()
    assert running.future.result(timeout=60) == 42
    assert running.thread_id is not None
    assert running.thread_id != threading.get_ident()


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


def test_a_thread_that_cannot_be_started_fails_its_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(_thread: threading.Thread) -> Any:
        raise RuntimeError("can't start new thread")

    _patch_worker_start(monkeypatch, refuse)
    pool = BodyThreads()
    running = pool.start(lambda: None, contextvars.copy_context())
    with pytest.raises(RuntimeError, match="can't start new thread"):
        running.future.result(timeout=60)
    assert running.thread_id is None
