"""Time limits of tests in flight, as timers on the session loop.

A concurrent test cannot be timed out by a process-wide alarm: many tests
share the process and the loop. Each limit here is a loop timer that calls
back when the test has used up its time; the runner then interrupts just
that test where it waits. A test may have two limits running at once (its
own, from the start of its setup to the end of its call, and one for the
phase it is in), so a timer is known by its owner and a kind.

Time a test spends waiting for other tests (for a run-time lock, or for the
other tests of a scope it ends) does not count: :meth:`Deadlines.pause` stops
its timers and :meth:`Deadlines.resume` starts them again with the time they
had left. Nor does time the loop spent blocked by another test:
:meth:`Deadlines.postpone` moves every other test's timers back by the stall.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable

__all__ = ["Deadlines"]


class _Timer:
    __slots__ = ("callback", "handle", "left")

    def __init__(self, handle: asyncio.TimerHandle, callback: Callable[[], object]) -> None:
        self.handle: asyncio.TimerHandle | None = handle
        self.callback = callback
        #: Seconds left while paused.
        self.left = 0.0


class Deadlines:
    """The armed time limits of the tests in flight on one loop.

    :param loop: the loop the timers run on.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timers: dict[Hashable, dict[Hashable, _Timer]] = {}
        self._paused: set[Hashable] = set()

    def arm(
        self, owner: Hashable, kind: Hashable, seconds: float, callback: Callable[[], object]
    ) -> None:
        """Call ``callback`` after ``seconds`` of ``owner``'s own time,
        replacing the timer of that kind if there was one."""
        timers = self._timers.setdefault(owner, {})
        previous = timers.get(kind)
        if previous is not None and previous.handle is not None:
            previous.handle.cancel()
        fire = self._firing(owner, kind, callback)
        timer = _Timer(self._loop.call_later(seconds, fire), fire)
        timers[kind] = timer
        if owner in self._paused:
            self._pause_timer(timer)

    def _firing(
        self, owner: Hashable, kind: Hashable, callback: Callable[[], object]
    ) -> Callable[[], object]:
        def fire() -> None:
            self.disarm(owner, kind)
            callback()

        return fire

    def disarm(self, owner: Hashable, kind: Hashable | None = None) -> bool:
        """Cancel ``owner``'s timer of ``kind`` (by default all of them);
        whether there was one."""
        timers = self._timers.get(owner)
        if not timers:
            return False
        kinds = list(timers) if kind is None else [kind]
        found = False
        for each in kinds:
            timer = timers.pop(each, None)
            if timer is None:
                continue
            found = True
            if timer.handle is not None:
                timer.handle.cancel()
        if not timers:
            del self._timers[owner]
            self._paused.discard(owner)
        return found

    def pause(self, owner: Hashable) -> None:
        """Stop ``owner``'s timers, keeping the time each has left."""
        if owner in self._paused:
            return
        self._paused.add(owner)
        for timer in self._timers.get(owner, {}).values():
            self._pause_timer(timer)

    def resume(self, owner: Hashable) -> None:
        """Run ``owner``'s timers again after :meth:`pause`."""
        if owner not in self._paused:
            return
        self._paused.discard(owner)
        for timer in self._timers.get(owner, {}).values():
            if timer.handle is None:
                timer.handle = self._loop.call_later(timer.left, timer.callback)

    def postpone(self, seconds: float, *, sparing: Hashable = None) -> None:
        """Give every owner but ``sparing`` ``seconds`` more: the loop was
        blocked (by ``sparing``, when known) and they could not run."""
        for owner, timers in self._timers.items():
            if owner is sparing or owner in self._paused:
                continue
            for timer in timers.values():
                if timer.handle is not None:
                    when = timer.handle.when() + seconds
                    timer.handle.cancel()
                    timer.handle = self._loop.call_at(when, timer.callback)

    def _pause_timer(self, timer: _Timer) -> None:
        if timer.handle is None:
            return
        timer.left = max(timer.handle.when() - self._loop.time(), 0.0)
        timer.handle.cancel()
        timer.handle = None

    def left(self, owner: Hashable, kinds: Iterable[Hashable]) -> float | None:
        """Seconds before the first of ``owner``'s timers of ``kinds`` runs
        out (while paused, what it has left); None when none is armed."""
        timers = self._timers.get(owner)
        if not timers:
            return None
        now = self._loop.time()
        lefts = [
            timer.left if timer.handle is None else max(timer.handle.when() - now, 0.0)
            for kind in kinds
            if (timer := timers.get(kind)) is not None
        ]
        return min(lefts, default=None)

    def clear(self) -> None:
        """Cancel every timer."""
        for owner in list(self._timers):
            self.disarm(owner)
