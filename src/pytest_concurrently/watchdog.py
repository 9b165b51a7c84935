"""Notice when a test blocks the event loop, and who did it.

Every test in flight shares the loop, so a test that blocks it (``time.sleep``
in ``async def``, CPU-bound work, a synchronous HTTP call) stops all of them.
:class:`LoopWatchdog` keeps a timer ticking on the loop; a thread of its own
looks at the last tick, and when the loop has not turned for longer than the
threshold it samples the loop thread's stack and notes which task was
running. When the loop turns again (or when asked, :meth:`LoopWatchdog.check`)
the stall is settled: its length is known, the culprit's record gets it,
and ``on_stall`` tells the runner, which leaves it out of the other tests'
durations and time limits.

The thread only reads: the stack of the loop thread and the loop's current
task. Everything else happens on the loop thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from .stacks import Place, thread_places

__all__ = ["LoopWatchdog", "Stall"]


@dataclass
class Stall:
    """A time the loop did not turn.

    :param began: when, by ``time.perf_counter``, the loop stopped turning
        (as near as the ticks tell).
    :param places: where the loop thread was when the stall was seen,
        outermost first.
    :param culprit: the owner of the task that was running (a test), if any.
    :param seconds: how long the loop stood still, once it turned again.
    """

    began: float
    places: list[Place] = field(repr=False)
    culprit: Hashable | None
    seconds: float | None = None

    def so_far(self) -> float:
        """Its length if settled, else how long it has lasted until now."""
        if self.seconds is not None:
            return self.seconds
        return time.perf_counter() - self.began


class LoopWatchdog:
    """Watches one event loop for stalls longer than ``threshold`` seconds.

    :param loop: the loop, which runs on the thread that calls :meth:`start`.
    :param threshold: the shortest stall to report.
    :param owner_of: the owner of a task (the test it runs), or None.
    :param on_stall: called on the loop thread with each settled stall.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        threshold: float,
        owner_of: Callable[[asyncio.Task[Any]], Hashable | None],
        on_stall: Callable[[Stall], object],
    ) -> None:
        self._loop = loop
        self._threshold = threshold
        self._period = threshold / 5
        self._owner_of = owner_of
        self._on_stall = on_stall
        self._expected = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._seen: Stall | None = None
        self._thread: threading.Thread | None = None
        self._loop_thread = threading.get_ident()
        self._stopping = threading.Event()
        self._active = False

    def start(self) -> None:
        """Begin watching; call from the loop thread while the loop runs."""
        self._loop_thread = threading.get_ident()
        self._expected = time.perf_counter()
        self._active = True
        self._tick()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._watch, name="pytest-concurrently watchdog", daemon=True
            )
            self._thread.start()

    def pause(self) -> None:
        """Stop watching until :meth:`start`: the loop is about to stand
        idle, which is no stall."""
        self.check()
        self._active = False
        self._seen = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        """Stop watching for good, and end the thread."""
        self.pause()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def check(self) -> None:
        """Settle a stall that has just ended (call from the loop thread)."""
        if not self._active:
            return
        now = time.perf_counter()
        late = now - self._expected
        seen, self._seen = self._seen, None
        if seen is not None or late > self._threshold:
            stall = seen or Stall(self._expected, [], None)
            stall.seconds = late
            self._on_stall(stall)
        self._expected = now + self._period

    def _tick(self) -> None:
        self.check()
        self._handle = self._loop.call_later(self._period, self._tick)

    def _watch(self) -> None:
        while not self._stopping.wait(self._period):
            if not self._active or self._seen is not None:
                continue
            began = self._expected
            if time.perf_counter() - began <= self._threshold:
                continue
            places = thread_places(self._loop_thread)
            try:
                task = asyncio.current_task(self._loop)
            except RuntimeError:  # pragma: no cover - the loop went away
                task = None
            culprit = self._owner_of(task) if task is not None else None
            if self._active and self._expected == began:
                self._seen = Stall(began, places, culprit)
