"""The test loop: admits tests by the policy and runs them.

Concurrent tests run as tasks of one task group on the session loop, each
going through pytest's setup, call and teardown phases in a greenlet of its
own (see :mod:`.bridge`). A test that must run alone runs through pytest's
standard ``pytest_runtest_protocol`` while the loop is idle, exactly as
without this plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from . import _pytest_adapter as adapter
from . import bridge
from .current import RunningTest, running_test
from .loop import EventLoopHost
from .marking import TestPlan
from .scheduling import AdmissionPolicy, Ticket
from .stats import RunStats

__all__ = ["ConcurrentSession"]

#: Exceptions that end the whole session: pytest lets them through a test's
#: report instead of recording them as the test's failure.
_SESSION_ENDING = (KeyboardInterrupt, pytest.exit.Exception)


class ConcurrentSession:
    """Runs a session's collected items, concurrent ones overlapping.

    :param session: the pytest session.
    :param plans: how each item runs, in the session's item order.
    :param max_in_flight: the most tests in flight at once.
    :param loop: the session's event loop.
    :param stats: where to count what ran.
    """

    def __init__(
        self,
        session: pytest.Session,
        plans: Sequence[TestPlan],
        max_in_flight: int,
        loop: EventLoopHost,
        stats: RunStats,
    ) -> None:
        self._session = session
        self._items: Sequence[pytest.Item] = session.items
        self._loop = loop
        self._stats = stats
        self._fixtures = adapter.FixtureInstances()
        self._policy = AdmissionPolicy(
            (
                Ticket(index, plan.concurrent, self._fixtures.slots(item))
                for index, (item, plan) in enumerate(zip(self._items, plans, strict=True))
            ),
            max_in_flight,
        )
        self._changed: anyio.Event | None = None
        self._session_ending: BaseException | None = None

    def run(self) -> None:
        """Run every item the policy admits, until all ran or the session stops."""
        adapter.install_setup_state(self._session, self._items)
        admitted = self._admit()
        while admitted:
            if admitted[0].concurrent:
                with adapter.route_phase_capture(self._session.config):
                    admitted = self._loop.run(self._run_concurrent_phase(admitted))
            else:
                self._run_alone(admitted[0])
                admitted = self._admit()
            if self._session_ending is not None:
                raise self._session_ending

    def _admit(self) -> list[Ticket]:
        if self._session.shouldfail or self._session.shouldstop:
            self._policy.stop()
        return self._policy.admit()

    def _run_alone(self, ticket: Ticket) -> None:
        item = self._items[ticket.index]
        next_index = ticket.index + 1
        nextitem = self._items[next_index] if next_index < len(self._items) else None
        token = running_test.set(RunningTest(item, concurrent=False))
        started = self._stats.test_started()
        try:
            self._fixtures.isolate(item)
            item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        finally:
            self._stats.test_ended(started)
            running_test.reset(token)
            self._policy.finish(ticket)

    async def _run_concurrent_phase(self, admitted: list[Ticket]) -> list[Ticket]:
        """Run concurrent tickets until the policy admits a solo ticket (which
        is returned) or nothing more (an empty list is returned)."""
        self._changed = anyio.Event()
        async with anyio.create_task_group() as tasks:
            while admitted and admitted[0].concurrent:
                for ticket in admitted:
                    tasks.start_soon(self._run_concurrent, ticket, tasks.cancel_scope)
                admitted = []
                while not admitted and self._policy.in_flight:
                    await self._changed.wait()
                    self._changed = anyio.Event()
                    admitted = self._admit()
        return admitted

    async def _run_concurrent(self, ticket: Ticket, cancel_all: anyio.CancelScope) -> None:
        item = self._items[ticket.index]
        running_test.set(RunningTest(item, concurrent=True))
        started = self._stats.test_started()
        try:
            self._fixtures.isolate(item)
            try:
                await bridge.run_sync(adapter.run_setup_and_call, item)
            finally:
                # Teardown runs even when the session is being cancelled, so
                # no fixture is left set up.
                with anyio.CancelScope(shield=True):
                    await bridge.run_sync(adapter.run_teardown, item)
        except _SESSION_ENDING as exc:
            if self._session_ending is None:
                self._session_ending = exc
            self._policy.stop()
            cancel_all.cancel()
        finally:
            self._stats.test_ended(started)
            self._policy.finish(ticket)
            self._changed.set()
