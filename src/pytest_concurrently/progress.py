"""The live status line of a long concurrent run on a terminal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .stats import RunStats

__all__ = ["LiveStatus"]

#: How long a run goes before the status line shows, and how often it
#: changes: a short run is over before a status line would help.
FIRST_AFTER = 2.0
PERIOD = 0.5


class LiveStatus:
    """Tells the terminal, every :data:`PERIOD` seconds once the run has
    gone on for :data:`FIRST_AFTER`, how many tests are done, in flight and
    waiting.

    :param show: shows one status line in place of the last.
    :param stats: the run's records.
    :param total: how many tests the run has.
    """

    def __init__(self, show: Callable[[str], object], stats: RunStats, total: int) -> None:
        self._show = show
        self._stats = stats
        self._total = total
        self._began = time.perf_counter()
        self._handle: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Begin ticking on ``loop`` (while a concurrent phase runs)."""
        self.stop()
        self._handle = loop.call_later(PERIOD, self._tick, loop)

    def stop(self) -> None:
        """Stop ticking (the phase is over)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def text(self) -> str:
        """The status line now."""
        stats = self._stats
        done = stats.done
        in_flight = stats.in_flight
        waiting = max(self._total - done - in_flight, 0)
        elapsed = time.perf_counter() - self._began
        return (
            f"concurrently: {done:,}/{self._total:,} done, {in_flight:,} in flight, "
            f"{waiting:,} waiting, {elapsed:,.0f} s"
        )

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if time.perf_counter() - self._began >= FIRST_AFTER:
            self._show(self.text())
        self._handle = loop.call_later(PERIOD, self._tick, loop)
