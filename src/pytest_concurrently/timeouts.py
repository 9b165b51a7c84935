"""The time limits of concurrent tests, phase by phase.

A test's own limit (``concurrent(timeout=...)``, ``--concurrently-timeout``
or pytest-timeout's) runs from the start of its setup to the end of its
call. The setup may have a tighter limit of its own
(``concurrently_setup_timeout``). The teardown starts a clock of its own
(``concurrently_teardown_timeout``, by default the test's limit), so a test
that timed out still gets the time to tear down, and a hung teardown cannot
hang the session.

A limit that runs out interrupts the test where it waits: the awaiting code
sees a test failure raised at its ``await``, so the traceback shows where it
was stuck. A test that swallows the interruption and carries on is given a
grace period to move on to its next phase; after that the runner abandons it
(see :class:`TestTimeouts`'s ``on_stuck``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from . import bridge
from .deadlines import Deadlines

__all__ = ["RunLimits", "TestTimeouts", "install", "time_left"]

_TEST, _PHASE, _GRACE = "test", "phase", "grace"


@dataclass(frozen=True)
class RunLimits:
    """The run's time limits, in seconds; None for none.

    :param test: a test's limit from the start of its setup to the end of
        its call, unless its marker or pytest-timeout gives one.
    :param setup: a limit for the setup phase alone.
    :param teardown: a limit for the teardown phase; None to give the
        teardown as long as the test's own limit.
    :param grace: how long an interrupted test has to move on before it is
        abandoned.
    """

    test: float | None = None
    setup: float | None = None
    teardown: float | None = None
    grace: float = 2.0

    @property
    def any(self) -> bool:
        """Whether any limit is set."""
        return self.test is not None or self.setup is not None or self.teardown is not None


@dataclass
class _Limited:
    task: asyncio.Task[None]
    phase: str
    test_limit: float | None
    test_message: str


Stuck = Callable[[pytest.Item, str, str], object]
"""Called as ``on_stuck(item, phase, message)`` when an interrupted test did
not move on within the grace period."""


def _failure(message: str) -> BaseException:
    return pytest.fail.Exception(message)


class TestTimeouts:
    """Arms, moves and cancels the time limits of the tests in flight.

    :param deadlines: the timers.
    :param limits: the run's limits.
    :param on_stuck: what to do with a test that ignored its interruption.
    :param blocked: where a test last blocked the loop, if it did: a test
        stuck in synchronous code is timed out once that code returns, and
        its failure then says where it was stuck.
    """

    __test__ = False  # not a test class, for pytest's collection of this package's tests

    def __init__(
        self,
        deadlines: Deadlines,
        limits: RunLimits,
        on_stuck: Stuck,
        blocked: Callable[[pytest.Item], str | None] = lambda item: None,
    ) -> None:
        self.deadlines = deadlines
        self._limits = limits
        self._on_stuck = on_stuck
        self._blocked = blocked
        self._tests: dict[pytest.Item, _Limited] = {}

    def started(
        self, item: pytest.Item, task: asyncio.Task[None], own: float | None, message: str
    ) -> None:
        """``item`` starts its setup in ``task``, with its own limit ``own``
        (0 or None: none), which fails it with ``message``."""
        limit = own or None
        self._tests[item] = _Limited(task, "setup", limit, message)
        if limit is not None:
            self._arm(item, _TEST, limit, message)
        setup = self._limits.setup
        if setup is not None and (limit is None or setup < limit):
            message = (
                f"Timeout: the setup ran longer than its limit of {setup:g} s "
                "(concurrently_setup_timeout)"
            )
            self._arm(item, _PHASE, setup, message)

    def entering(self, item: pytest.Item, phase: str) -> None:
        """``item`` moves on to ``phase`` ("call" or "teardown")."""
        limited = self._tests.get(item)
        if limited is None:
            return
        limited.phase = phase
        self.deadlines.disarm(item, _GRACE)
        self.deadlines.disarm(item, _PHASE)
        if phase != "teardown":
            return
        self.deadlines.disarm(item, _TEST)
        teardown = self._limits.teardown or limited.test_limit
        if teardown is not None:
            self._arm(
                item,
                _PHASE,
                teardown,
                f"Timeout: the teardown ran longer than its limit of {teardown:g} s "
                "(pytest-concurrently)",
            )

    def limit_call(self, item: pytest.Item, seconds: float, message: str) -> bool:
        """Limit ``item``'s call phase alone (pytest-timeout's ``func_only``);
        whether ``item`` is a test in flight here."""
        if item not in self._tests:
            return False
        self._arm(item, _TEST, seconds, message)
        return True

    def unlimit_call(self, item: pytest.Item) -> bool:
        """Cancel :meth:`limit_call`'s limit; whether there was one."""
        return self.deadlines.disarm(item, _TEST)

    def ended(self, item: pytest.Item) -> None:
        """``item`` has ended (or was abandoned): cancel its timers."""
        self._tests.pop(item, None)
        self.deadlines.disarm(item)

    def time_left(self, item: pytest.Item) -> float | None:
        """Seconds before a limit interrupts ``item`` in its current phase;
        None when no limit runs for it. The grace given after an
        interruption does not count."""
        if item not in self._tests:
            return None
        return self.deadlines.left(item, (_TEST, _PHASE))

    def _arm(self, item: pytest.Item, kind: str, seconds: float, message: str) -> None:
        self.deadlines.arm(item, kind, seconds, functools.partial(self._ran_out, item, message))

    def _ran_out(self, item: pytest.Item, message: str) -> None:
        limited = self._tests.get(item)
        if limited is None:
            return
        blocked = self._blocked(item)
        if blocked is not None:
            message = f"{message}; {blocked}"
        bridge.interrupt(limited.task, functools.partial(_failure, message))
        phase = limited.phase
        self.deadlines.arm(
            item, _GRACE, self._limits.grace, functools.partial(self._stuck, item, phase, message)
        )

    def _stuck(self, item: pytest.Item, phase: str, message: str) -> None:
        limited = self._tests.get(item)
        if limited is None or limited.phase != phase:
            return
        self._on_stuck(item, phase, message)


_installed: TestTimeouts | None = None


def install(timeouts: TestTimeouts | None) -> None:
    """Make ``timeouts`` the limits :func:`time_left` reads (None: none)."""
    global _installed
    _installed = timeouts


def time_left(item: pytest.Item) -> float | None:
    """Seconds before a limit interrupts ``item``, a concurrent test in
    flight, in its current phase; None when no limit runs for it (what
    :func:`pytest_concurrently.eventually` stops polling a little before)."""
    return None if _installed is None else _installed.time_left(item)
