"""How many admitted tests start in one turn of the event loop.

Starting a test runs its setup and its body up to their first wait, all of
it synchronous: from half a millisecond to a few milliseconds of pytest's
own work. When thousands of tests are admitted at once, starting them all in
one turn of the loop would keep it from its timers and sockets for seconds.
The tests started first could not go on until the last one had started:
their durations would count that time, their time limits could run out, and
all of them would hold their fixtures, greenlets and reports at once.

The pacer lets a handful start per turn; the others wait for their turn in
the order they were admitted, and the loop serves the tests in flight in
between.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["STARTS_PER_TURN", "StartPacer"]

#: How many tests may start in one turn of the loop: a few milliseconds of
#: setups, after which the loop's timers and sockets are served again.
STARTS_PER_TURN = 16


class StartPacer:
    """Hands out turns to start, about ``per_turn`` in each turn of ``loop``,
    first come, first served."""

    __slots__ = ("_loop", "_per_turn", "_started", "_turn_scheduled", "_waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop, per_turn: int = STARTS_PER_TURN) -> None:
        self._loop = loop
        self._per_turn = per_turn
        self._started = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._turn_scheduled = False

    def wait_for_turn(self) -> asyncio.Future[None] | None:
        """``None`` when the caller may start in this turn; otherwise a
        future that is done when its turn has come. Cancelling the future
        gives the turn up to the next in line."""
        self._next_turn_soon()
        if self._started < self._per_turn and not self._waiting:
            self._started += 1
            return None
        waiter = self._loop.create_future()
        self._waiting.append(waiter)
        return waiter

    def _next_turn_soon(self) -> None:
        if not self._turn_scheduled:
            self._turn_scheduled = True
            self._loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        # Runs once per turn while there are starts to count or to hand
        # out: a waiter released here starts in the following turn.
        self._turn_scheduled = False
        self._started = 0
        waiting = self._waiting
        while waiting and self._started < self._per_turn:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._started += 1
        if waiting or self._started:
            self._next_turn_soon()
