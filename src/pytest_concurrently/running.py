"""The test loop: admits tests by the policy and runs them.

Concurrent tests run as asyncio tasks on the session loop, each going through
pytest's setup, call and teardown phases in a greenlet of its own (see
:mod:`.bridge`). A test that must run alone runs through pytest's standard
``pytest_runtest_protocol`` with nothing else in flight, exactly as without
this plugin; when it has async code of ours (an ``async def`` body or async
fixtures), the whole protocol runs in one task and one context, so its async
steps share the task and a context variable set by a sync fixture is seen by
its body.

Tests admitted together start a few per turn of the loop (see
:mod:`.pacing`), so that the tests already in flight are served between
one handful of starts and the next.

When a concurrent test ends, its task's done-callback asks the policy what may
start now and starts it, so there is no scheduler task to wake and no polling.
Tasks are plain asyncio tasks rather than members of an anyio task group:
spawning through a task group costs about 30 microseconds, a large share of
pytest's own cost for a trivial test. The structure a task group gives is kept
by hand: the phase does not end before every task it started has ended, and a
cancelled phase cancels its tests and waits for their teardowns. A failure of
the runner's own bookkeeping ends the session with that error, never a hang.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import pytest

from . import _plugin_adapters as plugin_adapters
from . import _pytest_adapter as adapter
from . import blocking, bridge, collector, locking, process_state, stacks, strays, timeouts
from .current import RunningTest, running_test, task_owner
from .deadlines import Deadlines
from .loop import EventLoopHost
from .marking import TestPlan, is_hypothesis_test
from .pacing import StartPacer
from .progress import LiveStatus
from .rerunning import RerunLedger
from .resources import declared_resources
from .scheduling import Access, AdmissionPolicy, Ticket
from .stats import RunStats, TestRecord
from .timeouts import RunLimits, TestTimeouts
from .watchdog import LoopWatchdog, Stall

__all__ = [
    "INTERRUPTED",
    "ConcurrentSession",
    "FaultPolicy",
    "needs_one_task",
    "run_alone",
    "run_sequentially",
]

INTERRUPTED = pytest.StashKey[str]()
"""Set on a test in flight that the runner interrupted because the session
is stopping (``-x``, ``--maxfail``, another plugin's ``shouldstop``): why."""

_HYPOTHESIS_SLOT = ("hypothesis",)

#: Waits shorter than this are not reported: they are the scheduler's own
#: bookkeeping, not tests waiting for each other.
_NOTICEABLE_WAIT = 0.05


def _no_timer(item: pytest.Item) -> None:
    """Pauses or resumes no test's time limit."""


def needs_one_task(item: pytest.Item, plan: TestPlan) -> bool:
    """Whether a test that runs alone has async code of ours: an ``async
    def`` body this plugin runs, or ``async def`` fixtures it requests."""
    if plan.owner is not None:
        return False
    return plan.is_async or adapter.has_async_fixtures(item)


def run_alone(
    item: pytest.Item, nextitem: pytest.Item | None, loop: EventLoopHost, *, one_task: bool
) -> None:
    """Run pytest's protocol for ``item`` with nothing else in flight.

    :param one_task: run the whole protocol in one task on the session loop
        (see :func:`needs_one_task`); otherwise on the main thread as usual.
    """
    adapter.update_main_context()
    token = running_test.set(RunningTest(item, concurrent=False))
    try:
        if not one_task:
            item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            return
        owner_token = task_owner.set(item)
        try:
            context = contextvars.copy_context()
        finally:
            task_owner.reset(owner_token)
        saved, loop.idle_context = loop.idle_context, context
        try:
            loop.run(bridge.run_sync(_protocol, item, nextitem), context=context)
        finally:
            loop.idle_context = saved
    finally:
        running_test.reset(token)
        # What shared fixtures set in their contexts during the test (or
        # reset in their teardowns) shows in the main context from now on.
        adapter.update_main_context()


def _protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)


def run_sequentially(
    session: pytest.Session, plans: Sequence[TestPlan], loop: EventLoopHost
) -> None:
    """pytest's own test loop, one test at a time, with the tests that have
    async code of ours each run in one task (``concurrently_mode = off``)."""
    items = session.items
    for index, (item, plan) in enumerate(zip(items, plans, strict=True)):
        nextitem = items[index + 1] if index + 1 < len(items) else None
        run_alone(item, nextitem, loop, one_task=needs_one_task(item, plan))
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)


@dataclass(frozen=True)
class FaultPolicy:
    """How the runner deals with concurrent tests that misbehave.

    :param time_limits: the run's time limits.
    :param blocking: what a test that blocks the loop gets: ``"warn"``,
        ``"error"``, or ``"off"`` to not watch the loop.
    :param blocking_threshold: the shortest stall of the loop to report
        (0: do not watch).
    :param stray_tasks: what happens to tasks a test leaves running:
        ``"cancel"``, ``"warn"`` or ``"ignore"``.
    :param shared_state: whether a test that changes ``os.environ``, the
        working directory or ``sys.path`` while others are in flight gets a
        warning (``"warn"``) or not (``"ignore"``).
    """

    time_limits: RunLimits = field(default_factory=RunLimits)
    blocking: str = "off"
    blocking_threshold: float = 0.5
    stray_tasks: str = "ignore"
    shared_state: str = "ignore"


def _ticket(
    index: int,
    plan: TestPlan,
    needs: adapter.AdmissionNeeds,
    hypothesis: bool,
) -> Ticket:
    slots: dict[Hashable, int] = dict(needs.lives)
    if plan.concurrent and hypothesis:
        # Hypothesis builds examples in thread-local state: a life of its
        # own keeps every other such test out while it runs.
        slots[_HYPOTHESIS_SLOT] = index
    return Ticket(
        index,
        plan.concurrent,
        slots,
        needs.resources,
        needs.held_through,
        plan.group,
        tuple(sorted(needs.after)),
        needs.replaces,
    )


async def _gather_quietly(tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def _holds_in_words(ticket: Ticket) -> tuple[str, ...]:
    """What a test held while it ran, as the timeline tells it."""
    words = [
        f"resource {name!r}" + (" (shared)" if access is Access.SHARED else "")
        for name, access in ticket.resources.items()
    ]
    words.extend(
        f"resource {name!r} (through a fixture)"
        for name in ticket.held_through
        if name not in ticket.resources
    )
    if ticket.group is not None:
        words.append(f"group {ticket.group!r}")
    return tuple(words)


class ConcurrentSession:
    """Runs a session's collected items, concurrent ones overlapping.

    :param session: the pytest session.
    :param plans: how each item runs, in the session's item order.
    :param max_in_flight: the most tests in flight at once.
    :param loop: the session's event loop.
    :param stats: where to count what ran.
    :param reruns: when failed concurrent tests run again alone, their ledger.
    :param limits: the limits of resources, by name.
    :param faults: how to deal with tests that misbehave.
    :param pytest_timeouts: pytest-timeout's hooks, when it is active.
    :param items: the items to run, when not all the session's (a
        pytest-xdist worker's share); ``plans`` are theirs.
    """

    def __init__(
        self,
        session: pytest.Session,
        plans: Sequence[TestPlan],
        max_in_flight: int,
        loop: EventLoopHost,
        stats: RunStats,
        reruns: RerunLedger | None = None,
        limits: Mapping[str, int] | None = None,
        faults: FaultPolicy | None = None,
        pytest_timeouts: plugin_adapters.timeouts.ConcurrentTimeouts | None = None,
        items: Sequence[pytest.Item] | None = None,
    ) -> None:
        self._session = session
        self._reruns = reruns
        faults = faults or FaultPolicy()
        self._time_limits = faults.time_limits
        self._pytest_timeouts = pytest_timeouts
        self._timeouts: TestTimeouts | None = None
        self._blocking_threshold = faults.blocking_threshold
        rootpath = session.config.rootpath
        self._strays = (
            strays.StrayTasks(cancel=faults.stray_tasks == "cancel", rootpath=rootpath)
            if faults.stray_tasks != "ignore"
            else None
        )
        self._stalls = (
            blocking.StallLedger(faults.blocking, rootpath)
            if faults.blocking != "off" and faults.blocking_threshold > 0
            else None
        )
        self._to_rerun: list[pytest.Item] = []
        self._items: Sequence[pytest.Item] = session.items if items is None else items
        self._plans = plans
        self._loop = loop
        self._stats = stats
        self._fixtures = adapter.FixtureInstances()
        limits = dict(limits or {})
        with collector.paused():
            # Computed once, for the plan and then for the setup state.
            self._segments: dict[pytest.Item, adapter.ItemSegments] | None = adapter.node_segments(
                self._items
            )
            needs = adapter.plan_admission(
                self._items,
                [plan.resources for plan in plans],
                declared_resources,
                limits.__contains__,
                self._segments,
            )
            self._fixtures.plan(self._items, [n.values for n in needs], [n.ends for n in needs])
            self._policy = AdmissionPolicy(
                (
                    _ticket(index, plan, needs[index], is_hypothesis_test(item))
                    for index, (item, plan) in enumerate(zip(self._items, plans, strict=True))
                ),
                max_in_flight,
                limits,
                clock=time.perf_counter,
            )
        self._locks = locking.RuntimeLocks(
            self._policy, on_waited=self._waited_for_lock, on_waiting=self._pause_timer
        )
        self._setup_state: adapter.ConcurrentSetupState | None = None
        self._session_ending: BaseException | None = None
        # Per concurrent phase:
        self._phase_over: asyncio.Future[list[Ticket]] | None = None
        self._pacer: StartPacer | None = None
        self._clean_context = contextvars.copy_context()
        self._tasks: dict[Ticket, asyncio.Task[None]] = {}
        self._cancellable: set[Ticket] = set()
        self._ticket_of: dict[pytest.Item, Ticket] = {}
        # Read by the watchdog's thread to name the test that blocks the loop.
        self._item_of_task: dict[asyncio.Task[None], pytest.Item] = {}
        self._shared_state = (
            process_state.SharedStateWatch(self._ticket_of, rootpath)
            if faults.shared_state == "warn"
            else None
        )
        self._records: dict[Ticket, TestRecord] = {}
        show_status = adapter.status_line_writer(session.config)
        self._live_status = (
            LiveStatus(show_status, stats, len(self._items)) if show_status is not None else None
        )
        # Tests given up on after they ignored a timeout: their code never
        # resumes, and nothing waits for their tasks.
        self._abandoned: set[Ticket] = set()
        # Where the first test in flight was at a Ctrl-C.
        self._interrupted_at: TracebackType | None = None

    def run(self) -> None:
        """Run every item the policy admits, until all ran or the session stops."""
        self._setup_state = adapter.install_setup_state(
            self._session,
            self._items,
            self._fixtures.release,
            self._fixtures.end_instances,
            self._segments,
        )
        self._segments = None
        self._fixtures.waits_for_test = self._setup_state.waits_for
        self._fixtures.holds_resources = self._locks.holds_any
        self._fixtures.on_blocked = self._locks.recheck
        self._locks.waits_for_copy_of = self._waits_for_copy_of
        self._setup_state.pause_timer = self._pause_timer
        self._setup_state.resume_timer = self._resume_timer
        self._setup_state.waiting_for_scope = self._waiting_for_scope
        locking.install(self._locks)
        blocking.install(self._stalls)
        strays.install(self._strays)
        # The collected tree and the plan live for the whole run, and so do
        # the tests in flight, for a second or more each: see :mod:`.collector`.
        with collector.tuned_for_run():
            try:
                admitted = self._admit()
                while admitted:
                    if admitted[0].concurrent:
                        adapter.update_main_context()
                        with (
                            # Outermost: the routings below write live lines.
                            adapter.terminal_lines(self._session.config).concurrent_phase(),
                            adapter.route_phase_capture(self._session.config),
                            process_state.watching(self._shared_state),
                        ):
                            self._loop.on_second_interrupt = self._abandon_in_flight
                            try:
                                admitted = self._loop.run(self._run_concurrent_phase(admitted))
                            except KeyboardInterrupt:
                                # A third Ctrl-C, out of the loop itself.
                                if self._abandon_in_flight():
                                    self._loop.run(_gather_quietly(list(self._tasks.values())))
                                if self._interrupted_at is not None:
                                    raise KeyboardInterrupt().with_traceback(
                                        self._interrupted_at
                                    ) from None
                                raise
                            finally:
                                self._loop.on_second_interrupt = None
                    else:
                        self._run_alone(admitted[0])
                        admitted = self._admit()
                    if self._session_ending is not None:
                        raise self._session_ending
                self._rerun_alone()
            finally:
                locking.install(None)
                timeouts.install(None)
                blocking.install(None)
                strays.install(None)
                if self._strays is not None:
                    self._strays.unwatch()
                if self._stalls is not None and self._stalls.watchdog is not None:
                    self._stalls.watchdog.close()
                if self._timeouts is not None:
                    self._timeouts.deadlines.clear()
                if self._pytest_timeouts is not None:
                    self._pytest_timeouts.limits = None
                # The setup state outlives the run (whatever is still set up is
                # torn down at the session's end): it must not keep the run's
                # bookkeeping alive with it.
                self._setup_state.pause_timer = self._setup_state.resume_timer = _no_timer

    def stop_soon(self) -> None:
        """Act on a ``shouldstop`` set from another thread: interrupt the
        tests in flight and start no more. Call it on the session loop (with
        ``call_soon_threadsafe``)."""
        self._stop_if_told()

    def _keep_failed(self, item: pytest.Item, reports: list[pytest.TestReport]) -> bool:
        """Whether to hold a failed concurrent test back and run it again
        alone once every test has run."""
        session = self._session
        if self._reruns is None or session.shouldstop or session.shouldfail:
            return False
        if not self._reruns.keep(item, reports):
            return False
        self._to_rerun.append(item)
        return True

    def _rerun_alone(self) -> None:
        """Run the tests held back by :meth:`_keep_failed` again, one at a
        time, as pytest would run a session of just them."""
        if not self._to_rerun or self._reruns is None:
            return
        # Whatever the concurrent run left set up is torn down first, then
        # the tests run in pytest's own order with pytest's own SetupState.
        adapter.restart_setup_state(self._session)
        position = {item: index for index, item in enumerate(self._items)}
        to_rerun = sorted(self._to_rerun, key=position.__getitem__)
        for index, item in enumerate(to_rerun):
            nextitem = to_rerun[index + 1] if index + 1 < len(to_rerun) else None
            self._reruns.rerunning(item)
            plan = self._plans[position[item]]
            run_alone(item, nextitem, self._loop, one_task=needs_one_task(item, plan))
            if self._session.shouldfail or self._session.shouldstop:
                break

    def _abandon_in_flight(self) -> bool:
        """At a second Ctrl-C: give up on the teardowns still running, saying
        which, so that none of them resumes later in the session. Returns
        whether there were any."""
        if not self._tasks:
            return False
        self._policy.stop()
        reporter = self._session.config.pluginmanager.get_plugin("terminalreporter")
        tasks = list(self._tasks.items())
        for ticket, task in tasks:
            item = self._items[ticket.index]
            line = f"pytest-concurrently: abandoned the teardown of {item.nodeid}"
            if reporter is not None and ticket in self._records:
                reporter.write_line(line, red=True)
            assert self._setup_state is not None
            self._setup_state.forget(item)
            bridge.abandon(task)
        return True

    def _admit(self) -> list[Ticket]:
        if self._session.shouldfail or self._session.shouldstop:
            self._policy.stop()
        return self._policy.admit()

    def _admitted(self, ticket: Ticket, item: pytest.Item) -> None:
        """Note what ``ticket`` declared, for run-time locks, and how long it
        waited to start."""
        if ticket.resources or ticket.held_through:
            held = dict(ticket.resources)
            held.update(dict.fromkeys(ticket.held_through, Access.EXCLUSIVE))
            self._locks.admitted(item, held)
        waited = self._policy.waited(ticket)
        if waited is not None and waited[0] >= _NOTICEABLE_WAIT:
            self._stats.waited(item.nodeid, *waited)

    def _released(self, item: pytest.Item) -> None:
        """``item`` has ended: free its declared holds for run-time locks."""
        self._locks.finished(item)

    def _waiting_for_scope(self, item: pytest.Item) -> None:
        """``item``'s own teardown is over, and it waits for the other tests
        of a scope it ends: the fixture layer hears of it, and ``item``
        gives back the resources it declared for itself. What is left of
        its teardown belongs to the scope, which a sequential run tears
        down after those tests; one of them may be waiting for such a
        resource (a shared fixture's ``lock()``), and would wait forever."""
        self._fixtures.closing_scope(item)
        ticket = self._ticket_of.get(item)
        if ticket is None or not ticket.resources:
            return
        names = self._policy.release_own_resources(ticket)
        if names:
            self._locks.gave_back(item, names)
            assert self._phase_over is not None
            self._phase_over.get_loop().call_soon(self._guarded, self._admit_and_start)

    def _waits_for_copy_of(self, waiter: Hashable, maker: Hashable) -> bool:
        return (
            isinstance(waiter, pytest.Item)
            and isinstance(maker, pytest.Item)
            and self._fixtures.waits_for_copy_of(waiter, maker)
        )

    def _admit_and_start(self) -> None:
        self._start(self._admit())

    def _waited_for_lock(self, owner: Hashable, name: str, seconds: float) -> None:
        """A test waited for a run-time lock: count the wait, not as test
        time, and run its timeout again."""
        if isinstance(owner, pytest.Item):
            self._stats.waited(owner.nodeid, seconds, f"lock {name!r}", in_flight=True)
            self._resume_timer(owner)

    def _pause_timer(self, owner: Hashable) -> None:
        """``owner`` waits for other tests: stop its time limits."""
        if self._timeouts is not None:
            self._timeouts.deadlines.pause(owner)

    def _resume_timer(self, owner: Hashable) -> None:
        if self._timeouts is not None:
            self._timeouts.deadlines.resume(owner)

    def _run_alone(self, ticket: Ticket) -> None:
        item = self._items[ticket.index]
        self._admitted(ticket, item)
        next_index = ticket.index + 1
        nextitem = self._items[next_index] if next_index < len(self._items) else None
        record = self._stats.test_started(item.nodeid, concurrent=False)
        try:
            self._fixtures.isolate(item)
            one_task = needs_one_task(item, self._plans[ticket.index])
            run_alone(item, nextitem, self._loop, one_task=one_task)
        finally:
            self._stats.test_ended(record)
            assert self._setup_state is not None
            self._setup_state.item_finished(item)
            self._fixtures.setup_over(item)
            self._fixtures.forget(item)
            self._policy.finish(ticket)
            self._released(item)

    async def _run_concurrent_phase(self, admitted: list[Ticket]) -> list[Ticket]:
        """Run concurrent tests until nothing is in flight; return the solo
        ticket admitted next (alone in a list), or an empty list."""
        self._phase_over = asyncio.get_running_loop().create_future()
        self._pacer = StartPacer(asyncio.get_running_loop())
        self._clean_context = contextvars.copy_context()
        if self._timeouts is None and (self._time_limits.any or self._pytest_timeouts is not None):
            deadlines = Deadlines(asyncio.get_running_loop())
            self._timeouts = TestTimeouts(
                deadlines,
                self._time_limits,
                self._abandon_stuck,
                self._stalls.latest if self._stalls is not None else lambda item: None,
            )
            timeouts.install(self._timeouts)
            if self._pytest_timeouts is not None:
                self._pytest_timeouts.limits = self._timeouts
        if self._strays is not None:
            self._strays.watch(asyncio.get_running_loop())
        watchdog = self._watchdog()
        if watchdog is not None:
            watchdog.start()
        if self._live_status is not None:
            self._live_status.start(asyncio.get_running_loop())
        self._guarded(self._start, admitted)
        try:
            return await asyncio.shield(self._phase_over)
        except asyncio.CancelledError:
            # Interrupted (Ctrl-C): cancel what is in setup or call, and let
            # every test finish its teardown before the loop stops.
            self._policy.stop()
            self._note_where_interrupted()
            self._cancel_setups_and_calls()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            raise
        finally:
            if self._live_status is not None:
                self._live_status.stop()
            if watchdog is not None:
                watchdog.pause()

    def _watchdog(self) -> LoopWatchdog | None:
        """The loop's watchdog, made on first use, when the run watches."""
        if self._stalls is None:
            return None
        if self._stalls.watchdog is None:
            self._stalls.watchdog = LoopWatchdog(
                asyncio.get_running_loop(),
                self._blocking_threshold,
                self._item_of_task.get,
                self._stalled,
            )
        return self._stalls.watchdog

    def _stalled(self, stall: Stall) -> None:
        """The loop stood still: the tests in flight other than the culprit
        get the time back, from their durations and their limits."""
        assert self._stalls is not None
        in_flight: list[pytest.Item] = list(self._ticket_of)
        self._stalls.stalled(stall, in_flight)
        seconds = stall.seconds or 0.0
        culprit = stall.culprit if isinstance(stall.culprit, pytest.Item) else None
        frozen = [item.nodeid for item in in_flight if item is not culprit]
        where = self._stalls.where(stall)
        self._stats.stalled(
            seconds, frozen, culprit.nodeid if culprit else None, where, stall.began
        )
        if self._timeouts is not None:
            self._timeouts.deadlines.postpone(seconds, sparing=stall.culprit)

    def _start(self, admitted: list[Ticket]) -> None:
        assert self._phase_over is not None
        loop = self._phase_over.get_loop()
        for ticket in admitted:
            if not ticket.concurrent:
                # The policy admits a solo ticket only when nothing is in flight.
                self._end_phase(admitted)
                return
            item = self._items[ticket.index]
            self._admitted(ticket, item)
            # Each test starts from the phase's context, not from the context
            # of the test whose end started it.
            task = self._clean_context.run(loop.create_task, self._run_concurrent(ticket))
            self._tasks[ticket] = task
            self._ticket_of[item] = ticket
            self._item_of_task[task] = item
            self._cancellable.add(ticket)
            task.add_done_callback(self._task_done)
        if not self._tasks:
            self._end_phase([])

    def _end_phase(self, next_admitted: list[Ticket]) -> None:
        assert self._phase_over is not None
        if not self._phase_over.done():
            self._phase_over.set_result(next_admitted)

    async def _run_concurrent(self, ticket: Ticket) -> None:
        assert self._pacer is not None
        turn = self._pacer.wait_for_turn()
        if turn is not None:
            # Cancelled here, the test has not started: like a test the
            # session never reached, it has no report.
            await turn
        item = self._items[ticket.index]
        task = asyncio.current_task()
        running_test.set(RunningTest(item, concurrent=True, task=task))
        task_owner.set(item)
        record = self._records[ticket] = self._stats.test_started(item.nodeid)
        if ticket.resources or ticket.held_through or ticket.group is not None:
            record.holds = _holds_in_words(ticket)
        try:
            self._fixtures.isolate(item)
            if self._timeouts is not None and task is not None:
                self._timeouts.started(item, task, *self._own_limit(ticket, item))
            await bridge.run_sync(
                adapter.run_protocol,
                item,
                functools.partial(self._entering, ticket, item),
                self._keep_failed if self._reruns is not None else None,
            )
        except BaseException as exc:
            if ticket in self._abandoned:
                return  # its code ran on after all; it was reported already
            # pytest lets KeyboardInterrupt and pytest.exit through a test's
            # report; anything else escaping here is a bug, and must end the
            # session loudly rather than vanish with the task.
            self._stop_session(exc)
        finally:
            if ticket not in self._abandoned:
                self._test_over(ticket, item)
            # The task's context holds the test, which holds the task: a
            # cycle only a full collection would free, thousands of tests
            # later. Tasks the test started keep their own copy.
            running_test.set(None)

    def _own_limit(self, ticket: Ticket, item: pytest.Item) -> tuple[float | None, str]:
        """A test's limit from the start of its setup to the end of its
        call, and the message it fails with."""
        own = self._plans[ticket.index].timeout
        if own is None:
            own = self._time_limits.test
        if own is None:
            seconds = plugin_adapters.timeouts.whole_test_timeout(item)
            if seconds is not None:
                return seconds, plugin_adapters.timeouts.timed_out_message(seconds)
        return own, (
            f"Timeout: the test ran longer than its limit of {own or 0:g} s (pytest-concurrently)"
        )

    def _test_over(self, ticket: Ticket, item: pytest.Item) -> None:
        """Count ``item`` as ended, for the statistics, its timers and the
        scopes it belongs to."""
        if self._timeouts is not None:
            self._timeouts.ended(item)
        if self._stalls is not None:
            self._stalls.forget(item)
        self._stats.test_ended(self._records.pop(ticket))
        assert self._setup_state is not None
        self._setup_state.item_finished(item)
        self._fixtures.setup_over(item)
        self._fixtures.forget(item)

    def _entering(self, ticket: Ticket, item: pytest.Item, phase: str) -> None:
        if phase == "teardown":
            self._cancellable.discard(ticket)
            self._fixtures.setup_over(item)
            self._stop_if_told(but=ticket)
        if self._timeouts is not None:
            self._timeouts.entering(item, phase)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._guarded(self._ended, task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        item = self._item_of_task.pop(task, None)
        if item is None:
            return  # abandoned: its end was handled then
        ticket = self._ticket_of.pop(item)
        del self._tasks[ticket]
        self._cancellable.discard(ticket)
        self._policy.finish(ticket)
        self._released(item)
        self._stop_if_told()
        self._start(self._admit())

    def _abandon_stuck(self, item: pytest.Item, phase: str, message: str) -> None:
        """Give up on ``item``, which went on running after a timeout
        interrupted it: report it as timed out, end it for the scheduler
        and the scopes it belongs to, and never resume its code."""
        self._guarded(self._abandon, item, phase, message)

    def _abandon(self, item: pytest.Item, phase: str, message: str) -> None:
        ticket = self._ticket_of.pop(item, None)
        if ticket is None:
            return
        task = self._tasks.pop(ticket)
        del self._item_of_task[task]
        self._abandoned.add(ticket)
        self._cancellable.discard(ticket)
        where = stacks.located(stacks.awaiting_places(task), item.config.rootpath)
        bridge.abandon(task)
        grace = self._time_limits.grace
        message = (
            f"{message}; it went on running{where} for {grace:g} s after it was interrupted, "
            "and was abandoned"
        )
        if phase != "teardown":
            message += " (its teardown did not run)"
        adapter.report_abandoned(item, phase, message)
        assert self._setup_state is not None
        self._setup_state.forget(item)
        self._test_over(ticket, item)
        self._policy.finish(ticket)
        self._released(item)
        self._stop_if_told()
        self._start(self._admit())

    def _guarded(self, callback: object, *args: object) -> None:
        """Call one of the runner's callbacks; if it fails, end the session
        with its error once the tests in flight have ended."""
        try:
            callback(*args)  # type: ignore[operator]
        except BaseException as exc:
            self._stop_session(exc)
            if not self._tasks:
                self._end_phase([])

    def _stop_session(self, exc: BaseException) -> None:
        if self._session_ending is None:
            self._session_ending = exc
        self._policy.stop()
        self._cancel_setups_and_calls()

    def _cancel_setups_and_calls(self) -> None:
        for ticket in list(self._cancellable):
            task = self._tasks.get(ticket)
            if task is not None:
                bridge.interrupt(task)

    def _note_where_interrupted(self) -> None:
        """At Ctrl-C, note for the summary which tests were in flight and
        where each was."""
        rootpath = self._session.config.rootpath
        for ticket, task in sorted(self._tasks.items(), key=lambda entry: entry[0].index):
            if ticket not in self._records:
                continue  # admitted, still waiting for its turn to start
            frames = stacks.awaiting_frames(task)
            places = [stacks.Place.of(frame) for frame in frames]
            place = stacks.users_place(places, rootpath)
            where = stacks.describe(place, rootpath) if place is not None else "(unknown)"
            if ticket not in self._cancellable:
                where += " (tearing down)"
            elif place is not None and self._interrupted_at is None:
                # pytest names the line a KeyboardInterrupt came from: the
                # first test's await rather than the runner's code.
                frame = frames[places.index(place)]
                self._interrupted_at = stacks.traceback_at(frame, place.lineno)
            self._stats.interrupted.append((self._items[ticket.index].nodeid, where))

    def _stop_if_told(self, but: Ticket | None = None) -> None:
        """When the session is to stop (``-x``, ``--maxfail``, a plugin's
        ``shouldstop``), interrupt the setups and calls in flight: those
        tests report as interrupted, and tear down."""
        session = self._session
        reason = session.shouldfail or session.shouldstop
        if not reason:
            return
        self._policy.stop()
        for ticket in list(self._cancellable):
            task = self._tasks.get(ticket)
            if ticket is but or task is None:
                continue
            self._cancellable.discard(ticket)
            why = f"interrupted: {reason}" if isinstance(reason, str) else "interrupted"
            self._items[ticket.index].stash[INTERRUPTED] = why
            bridge.interrupt(task, functools.partial(pytest.skip.Exception, why))
