"""What a blocked loop costs, and who is told.

The watchdog (:mod:`.watchdog`) finds stalls of the loop and the test that
caused each. :class:`StallLedger` keeps the accounts: the culprit's reports
carry a :class:`BlockedLoopWarning` naming the blocking line (or fail, with
``--concurrently-blocking=error``, or when warnings of that class are made
errors), and every other test in flight gets the stall back: it is left out
of the duration of the phase it was in, as pytest reports it.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path

import pytest

from .stacks import describe, located, users_place
from .watchdog import LoopWatchdog, Stall

__all__ = ["BlockedLoopWarning", "StallLedger", "current", "install"]


class BlockedLoopWarning(pytest.PytestWarning):
    """A concurrent test blocked the event loop, which every test in flight
    shares, for longer than ``concurrently_blocking_threshold``."""

    __module__ = "pytest_concurrently"


class StallLedger:
    """Stalls of the loop, by culprit, and the time owed to the others.

    :param mode: ``"warn"`` or ``"error"``.
    :param rootpath: paths under it are shown relative to it.
    """

    def __init__(self, mode: str, rootpath: Path) -> None:
        self.mode = mode
        self._rootpath = rootpath
        self.watchdog: LoopWatchdog | None = None
        self._own: dict[Hashable, list[Stall]] = {}
        self._owed: dict[Hashable, float] = {}

    def stalled(self, stall: Stall, in_flight: Sequence[Hashable]) -> None:
        """Book a settled ``stall`` with the tests ``in_flight`` then."""
        seconds = stall.seconds or 0.0
        if stall.culprit is not None and users_place(stall.places, self._rootpath) is None:
            # The test's task was running pytest's or this plugin's own
            # work (making a report, say): not the test's doing.
            stall.culprit = None
        if stall.culprit is not None:
            self._own.setdefault(stall.culprit, []).append(stall)
        for owner in in_flight:
            if owner != stall.culprit:
                self._owed[owner] = self._owed.get(owner, 0.0) + seconds

    def take(self, owner: Hashable) -> tuple[float, list[Stall]]:
        """The stall time owed to ``owner`` since last asked, and the stalls
        it caused since then."""
        if self.watchdog is not None:
            self.watchdog.check()
        return self._owed.pop(owner, 0.0), self._own.pop(owner, [])

    def latest(self, item: pytest.Item) -> str | None:
        """Where and for how long ``item`` last blocked the loop, if it did
        since its last report, in words that follow a sentence."""
        if self.watchdog is not None:
            self.watchdog.check()
        own = self._own.get(item)
        if not own:
            return None
        where = located(own[-1].places, self._rootpath)
        return f"it blocked the event loop for {own[-1].so_far():.2f} s{where}"

    def forget(self, owner: Hashable) -> None:
        """``owner`` has ended."""
        self._owed.pop(owner, None)
        self._own.pop(owner, None)

    def where(self, stall: Stall) -> str | None:
        """The line of the test's code that held the loop, in words, if known."""
        place = users_place(stall.places, self._rootpath)
        return describe(place, self._rootpath) if place is not None else None

    def message(self, stall: Stall, nodeid: str) -> tuple[str, str | None, int | None]:
        """What to tell about ``stall``, caused by the test ``nodeid``, and
        the file and line of the blocking code when known."""
        place = users_place(stall.places, self._rootpath)
        where = f" at {describe(place, self._rootpath)}" if place is not None else ""
        text = (
            f"{nodeid} blocked the event loop for {stall.so_far():.2f} s{where}: every test "
            "in flight stood still meanwhile. Await instead of blocking (asyncio.sleep, an "
            "async client), or run the blocking call in a thread (asyncio.to_thread)."
        )
        if place is None:
            return text, None, None
        return text, place.filename, place.lineno

    def report(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Settle ``item``'s accounts into its ``report`` for one phase."""
        owed, own = self.take(item)
        if owed:
            report.duration = max(report.duration - owed, 0.0)
        for stall in own:
            text, filename, lineno = self.message(stall, item.nodeid)
            failing = self.mode == "error"
            if not failing:
                try:
                    warnings.warn_explicit(
                        BlockedLoopWarning(text),
                        BlockedLoopWarning,
                        filename or str(item.path),
                        lineno or 0,
                    )
                except BlockedLoopWarning:
                    failing = True  # warnings of this class are errors here
            if failing and not report.failed:
                report.outcome = "failed"
                report.longrepr = f"BlockedLoopWarning: {text}"


_current: StallLedger | None = None


def install(ledger: StallLedger | None) -> None:
    """Make ``ledger`` the one :func:`current` returns (None: no run)."""
    global _current
    _current = ledger


def current() -> StallLedger | None:
    """The ledger of the run in progress, if it watches the loop."""
    return _current
