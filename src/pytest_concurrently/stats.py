"""What a run achieved: tests, wall time, test time, peak in flight."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["RunStats"]


@dataclass
class RunStats:
    """Counts for the end-of-run line.

    Test time is the sum over tests of the time from the start of a test's
    setup to the end of its teardown; wall time runs from the first test's
    start to the last test's end.
    """

    tests: int = 0
    test_seconds: float = 0.0
    peak_in_flight: int = 0
    #: (plugin, reason) -> how many async tests ran alone under that plugin
    #: (or, with the plugin "", under this one) for that reason.
    alone_under_other_plugins: dict[tuple[str, str], int] = field(default_factory=dict)
    #: node id -> seconds the test waited for other tests (to start, or for
    #: a lock while it ran), and for what, in words.
    waits: dict[str, tuple[float, list[str]]] = field(default_factory=dict)
    #: (node id, where it was) for each test in flight at a Ctrl-C.
    interrupted: list[tuple[str, str]] = field(default_factory=list)
    #: Seconds the loop stood still, blocked by a test.
    stalled_seconds: float = 0.0
    _in_flight: int = 0
    _started_at: float | None = None
    _ended_at: float | None = None

    def test_started(self) -> float:
        """Record a start; returns the start time to hand to :meth:`test_ended`."""
        now = time.perf_counter()
        if self._started_at is None:
            self._started_at = now
        self._in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        return now

    def test_ended(self, started_at: float, *, counted: bool = True) -> None:
        """Record the end of a test that started at ``started_at``; not
        ``counted`` when pytest reports no outcome for it (it was
        interrupted)."""
        now = time.perf_counter()
        self._in_flight -= 1
        self._ended_at = now
        if counted:
            self.tests += 1
            self.test_seconds += now - started_at

    def stalled(self, seconds: float, others: int) -> None:
        """The loop stood still for ``seconds`` while ``others`` tests
        besides the one that blocked it were in flight: that is not their
        test time."""
        self.test_seconds -= seconds * others
        self.stalled_seconds += seconds

    def waited(self, nodeid: str, seconds: float, what: str, *, in_flight: bool = False) -> None:
        """Record that a test waited ``seconds`` for ``what``; ``in_flight``
        when it waited while running (for a lock), which is then not counted
        as test time."""
        if in_flight:
            self.test_seconds -= seconds
        total, reasons = self.waits.get(nodeid, (0.0, []))
        if what not in reasons:
            reasons = [*reasons, what]
        self.waits[nodeid] = (total + seconds, reasons)

    def wait_words(self, nodeid: str) -> str | None:
        """How long a test waited and for what, as ``waited 1.2 s for
        resource 'db'``; None if it did not wait."""
        found = self.waits.get(nodeid)
        if found is None:
            return None
        return f"waited {found[0]:,.1f} s for {' and '.join(found[1])}"

    @property
    def wall_seconds(self) -> float:
        """Seconds from the first start to the last end."""
        if self._started_at is None or self._ended_at is None:
            return 0.0
        return self._ended_at - self._started_at

    def summary_line(self) -> str:
        """The end-of-run line, such as ``concurrently: 480 tests in 12.1 s,
        2,310.4 s of test time (190.9x), up to 100 in flight``."""
        wall = self.wall_seconds
        speedup = f" ({self.test_seconds / wall:,.1f}x)" if wall > 0 else ""
        noun = "test" if self.tests == 1 else "tests"
        line = (
            f"concurrently: {self.tests:,} {noun} in {wall:,.1f} s, "
            f"{self.test_seconds:,.1f} s of test time{speedup}, "
            f"up to {self.peak_in_flight:,} in flight"
        )
        if self.waits:
            waited = sum(seconds for seconds, _ in self.waits.values())
            count = len(self.waits)
            line += (
                f"; {count:,} {'test' if count == 1 else 'tests'} waited {waited:,.1f} s for others"
            )
        if self.stalled_seconds >= 0.05:
            line += f"; tests blocked the loop for {self.stalled_seconds:,.1f} s"
        for (owner, reason), count in sorted(self.alone_under_other_plugins.items()):
            under = f" under {owner}" if owner else ""
            line += f"; {count:,} ran alone{under} ({reason})"
        return line
