"""Run pytest's synchronous machinery inside an asyncio task, and let it await.

pytest sets fixtures up and tears them down through plain function calls
(``FixtureDef.execute`` calls ``pytest_fixture_setup`` calls the fixture).
To give every concurrent test its own trip through that machinery while its
async fixtures overlap with other tests', each test runs the machinery in a
greenlet of its own: :func:`run_sync` hands the work to a greenlet from the
test's asyncio task, and whenever the synchronous code needs a coroutine's
result it calls :func:`wait_for`, which passes the awaitable back to the task,
lets the event loop run other tests, and resumes the synchronous code with the
result.

While the synchronous code runs, the event loop is hidden from it: asyncio's
"running loop" is unset, so synchronous code sees the world as it does in
plain pytest. A sync fixture may call ``asyncio.run()``, and another plugin's
fixture may run its own event loop (pytest-asyncio's and anyio's runners do),
exactly as without this plugin; the loop of the waiting tests is blocked for
as long as that synchronous code runs, as any blocking call blocks it.

Greenlets are kept in a pool and reused: creating one costs several times
more than pytest spends on a trivial test's report. A pooled greenlet keeps
no reference to the job it ran, its result or its context.

Outside a greenlet (the end of the session, or a test that runs alone without
async code) the event loop is not running, and :func:`wait_for` runs the
awaitable on it directly through the runner installed with
:func:`set_idle_loop_runner`.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from asyncio import events
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import greenlet

__all__ = [
    "abandon",
    "can_wait",
    "in_bridged_code",
    "interrupt",
    "is_abandoned",
    "run_sync",
    "set_idle_loop_runner",
    "wait_for",
]

T = TypeVar("T")

IdleLoopRunner = Callable[[Coroutine[Any, Any, Any]], Any]
_idle_loop_runner: IdleLoopRunner | None = None

# What a worker hands back to the task: ("await", awaitable), ("return",
# value) or ("raise", exception).
_AWAIT, _RETURN, _RAISE = "await", "return", "raise"
_Message = tuple[str, Any]

# Tasks the runner has cancelled to interrupt the session, by identity: a
# test that catches the interruption and raises a CancelledError of its own
# is still being interrupted, whatever the message.
_interrupted_tasks: weakref.WeakKeyDictionary[asyncio.Task[Any], Callable[[], BaseException]] = (
    weakref.WeakKeyDictionary()
)
# Tasks given up on (a second Ctrl-C): their synchronous code is never
# resumed. Its greenlet is parked here for the rest of the process, because a
# greenlet collected while suspended would be resumed to unwind, running the
# test's code at whatever moment the garbage collector picks.
_abandoned_tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
_parked_workers: list[greenlet.greenlet] = []


class _Worker(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet that runs one synchronous job after another for asyncio
    tasks, each job in the context of the task that handed it over.

    Jobs and messages travel through attributes, not as arguments of
    ``switch``: arguments stay on the suspended frame's stack until the
    greenlet is resumed, which would keep a finished test's objects alive for
    as long as the greenlet sits in the pool.
    """

    def __init__(self) -> None:
        super().__init__(self._serve)
        self.job: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
        self.outbox: _Message | None = None

    def _serve(self) -> None:
        while True:
            job, self.job = self.job, None
            if job is None:
                # Retired (see :func:`_retire`): the greenlet ends here.
                return
            function, args = job
            del job
            try:
                self.outbox = (_RETURN, function(*args))
            except greenlet.GreenletExit:
                raise
            except BaseException as exc:
                self.outbox = (_RAISE, exc)
            del function, args
            self.parent.switch()

    def take_outbox(self) -> _Message:
        message, self.outbox = self.outbox, None
        assert message is not None
        return message


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


def can_wait() -> bool:
    """Whether synchronous code called here may :func:`wait_for` something:
    it runs in :func:`run_sync`, or no event loop is running (so the idle
    loop can run). Code that an ``async def`` function calls directly
    cannot wait."""
    return isinstance(greenlet.getcurrent(), _Worker) or _running_loop() is None


def interrupt(
    task: asyncio.Task[Any], raising: Callable[[], BaseException] = KeyboardInterrupt
) -> None:
    """Cancel ``task`` so that the synchronous code it runs sees
    ``raising()`` at its pending :func:`wait_for`, with the traceback of
    the await that was cancelled.

    By default that is ``KeyboardInterrupt``, which pytest's phases let
    through instead of recording a failure, as they do for Ctrl-C (the
    session is being interrupted); a timeout raises a test failure instead.
    A task interrupted twice before it sees the first is cancelled once;
    ``KeyboardInterrupt`` wins over any other reason.
    """
    if task.done():
        return
    pending = _interrupted_tasks.get(task)
    if pending is None:
        _interrupted_tasks[task] = raising
        task.cancel()
    elif raising is KeyboardInterrupt:
        _interrupted_tasks[task] = raising


def abandon(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and never resume the synchronous code it runs: the
    task ends at its pending :func:`wait_for` (or, if what it awaits ignores
    the cancellation, once that is done), and that code stays where it
    stopped."""
    _abandoned_tasks.add(task)
    task.cancel()


def is_abandoned(task: asyncio.Task[Any]) -> bool:
    """Whether :func:`abandon` gave up on ``task``."""
    return task in _abandoned_tasks


async def run_sync(function: Callable[..., T], *args: Any) -> T:
    """Call ``function(*args)`` in a greenlet, awaiting on its behalf.

    Exceptions raised by ``function`` propagate; exceptions raised while
    awaiting (cancellation included) are thrown into ``function`` at the
    :func:`wait_for` call that asked for the await.
    """
    __tracebackhide__ = True  # the awaits it makes show in test failures
    loop = events.get_running_loop()
    worker = _idle_workers.pop() if _idle_workers else _Worker()
    task_greenlet = greenlet.getcurrent()
    worker.parent = task_greenlet
    # Share the task's contextvars with the synchronous code, so a fixture
    # that sets a context variable is seen by the test body and vice versa.
    worker.gr_context = task_greenlet.gr_context
    worker.job = (function, args)
    _switch_hiding_loop(loop, worker.switch)
    kind, payload = worker.take_outbox()
    while kind == _AWAIT:
        try:
            value = await cast(Awaitable[Any], payload)
        except BaseException as exc:
            # current_task() only when some task was abandoned: on Python
            # 3.11 it is Python code, and every await comes back through here.
            if _abandoned_tasks and asyncio.current_task() in _abandoned_tasks:
                _parked_workers.append(worker)
                raise
            thrown = _as_thrown(exc)
            del payload, exc
            try:
                _switch_hiding_loop(loop, worker.throw, *thrown)
            finally:
                # The exception's traceback holds this frame: kept here, it
                # would make a cycle that keeps the test's objects alive
                # until a full collection.
                del thrown
        else:
            del payload
            if _abandoned_tasks and asyncio.current_task() in _abandoned_tasks:
                # It ran on, ignoring the cancellation, and has now finished
                # what it awaited: its synchronous code still never resumes.
                _parked_workers.append(worker)
                raise asyncio.CancelledError()
            _switch_hiding_loop(loop, worker.switch, value)
            del value
        kind, payload = worker.take_outbox()
    worker.gr_context = None
    if not worker.dead:
        if len(_idle_workers) < _MOST_IDLE_WORKERS:
            _idle_workers.append(worker)
        else:
            _retire(worker)
    if kind == _RAISE:
        try:
            raise payload
        finally:
            del payload
    return cast(T, payload)


def _retire(worker: _Worker) -> None:
    """End ``worker``'s greenlet rather than drop it suspended.

    A suspended greenlet's frame refers to the greenlet itself, a cycle the
    garbage collector cannot break, so a dropped worker would keep its copy
    of the stack for the rest of the process, and every full collection
    would walk it: after a burst of thousands of tests in flight, thousands
    of them.
    """
    worker.job = None
    worker.switch()


def _switch_hiding_loop(
    loop: asyncio.AbstractEventLoop, switch: Callable[..., Any], *args: Any
) -> None:
    # Synchronous code sees no running loop, as in plain pytest; the loop is
    # visible again as soon as the worker hands control back.
    events._set_running_loop(None)
    try:
        switch(*args)
    finally:
        events._set_running_loop(loop)


def _as_thrown(exc: BaseException) -> tuple[type[BaseException], BaseException, Any]:
    """What to throw into the synchronous code for an exception raised while
    awaiting on its behalf.

    When the runner has interrupted the task (see :func:`interrupt`), pytest's
    test phases would record a ``CancelledError`` as the test's failure but
    let ``KeyboardInterrupt`` through, so that is what the test sees; the
    cancellation is consumed (``Task.uncancel``), so the teardown that follows
    can still await and use timeouts. Any other ``CancelledError`` is the
    test's own.
    """
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        raising = _interrupted_tasks.pop(task, None) if task is not None else None
        if task is not None and raising is not None:
            if sys.version_info >= (3, 11):
                task.uncancel()
            interrupt = raising()
            if isinstance(interrupt, KeyboardInterrupt):
                interrupt.__context__ = exc
                return KeyboardInterrupt, interrupt, None
            # Raised where the task was waiting when it was interrupted, with
            # what the code it was waiting in noted on the way out.
            interrupt.__suppress_context__ = True
            if sys.version_info >= (3, 11):
                for note in getattr(exc, "__notes__", ()):
                    interrupt.add_note(note)
            return type(interrupt), interrupt, exc.__traceback__
    return type(exc), exc, exc.__traceback__


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def wait_for(awaitable: Awaitable[T]) -> T:
    """Return the result of ``awaitable`` from synchronous code.

    Inside :func:`run_sync` the awaitable runs in the calling task; elsewhere
    it runs on the idle event loop.
    """
    __tracebackhide__ = True
    current = greenlet.getcurrent()
    if isinstance(current, _Worker):
        current.outbox = (_AWAIT, awaitable)
        del awaitable
        return cast(T, current.parent.switch())
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
