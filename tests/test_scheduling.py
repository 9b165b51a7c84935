"""Tests of the admission policy in :mod:`pytest_concurrently.scheduling`.

The policy has no clock, so the property tests drive it with a small
fake-clock simulator: every ticket gets a duration, the simulator asks the
policy what may start (until it answers "nothing"), starts it at the current
fake time, advances the clock to the next ticket that finishes, reports that
finish, and repeats.

Every start and every finish is also numbered as an *event*, in the order the
simulator performs them. Overlap is judged on event numbers rather than on
fake times: a ticket that finishes at time 5 and one that starts at time 5
did not overlap if the finish was reported first, and did overlap otherwise.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_concurrently.scheduling import Access, AdmissionPolicy, Ticket

# ---------------------------------------------------------------------------
# The simulator
# ---------------------------------------------------------------------------


@dataclass
class Run:
    """One execution of a ticket, as seen by the simulator."""

    ticket: Ticket
    start: int  # event number of the start
    start_time: int  # fake time of the start
    end: int | None = None  # event number of the finish
    end_time: int | None = None  # fake time of the finish

    @property
    def index(self) -> int:
        return self.ticket.index


@dataclass(frozen=True)
class AdmitCall:
    """One call to ``admit()`` and the policy's state around it."""

    event: int  # number of events (starts and finishes) before the call
    stopped: bool  # whether stop() had been called before this call
    done_before: bool  # policy.done just before the call
    in_flight_before: frozenset[Ticket]
    waiting_before: tuple[Ticket, ...]
    admitted: tuple[Ticket, ...]
    in_flight_after: frozenset[Ticket]
    waiting_after: tuple[Ticket, ...]


@dataclass
class Trace:
    """Everything that happened during one simulated session."""

    max_in_flight: int
    runs: list[Run] = field(default_factory=list)
    calls: list[AdmitCall] = field(default_factory=list)
    stop_event: int | None = None  # number of events before stop() was called
    stalled: bool = False  # idle, tickets waiting, not stopped, nothing admitted
    done: bool = False  # policy.done at the end
    waiting_at_end: tuple[Ticket, ...] = ()

    def starts(self) -> Counter[int]:
        return Counter(run.index for run in self.runs)

    def start_order(self) -> list[int]:
        return [run.index for run in sorted(self.runs, key=lambda run: run.start)]

    def by_index(self) -> dict[int, Run]:
        return {run.index: run for run in self.runs}

    def makespan(self) -> int:
        return max((run.end_time or 0 for run in self.runs), default=0)


def finished(run: Run) -> int:
    """The finish event of a run, which the simulator always records."""
    assert run.end is not None, f"ticket {run.index} never finished"
    return run.end


def overlap(a: Run, b: Run) -> bool:
    """Whether two runs were in flight at the same time."""
    return a.start < finished(b) and b.start < finished(a)


def simulate(
    tickets: Sequence[Ticket],
    durations: Mapping[int, int],
    max_in_flight: int,
    stop_after_calls: int | None = None,
    limits: Mapping[str, int] | None = None,
    release_first: bool = False,
) -> Trace:
    """Run ``tickets`` through a fresh policy on a fake clock.

    :param durations: fake run time of each ticket, by index.
    :param stop_after_calls: if given, call ``stop()`` just before the
        admit() call with this (0-based) number.
    :param release_first: give back each ticket's own resources
        (``release_own_resources``) just before finishing it.
    """
    policy = AdmissionPolicy(tickets, max_in_flight, limits)
    trace = Trace(max_in_flight=max_in_flight)
    running: dict[Ticket, tuple[int, Run]] = {}  # ticket -> (end time, run)
    clock = 0
    event = 0
    stopped = False
    # Every iteration admits or finishes at least one ticket, or ends the
    # loop; a correct policy admits each ticket at most once. The bound only
    # keeps a broken policy from hanging the test run.
    budget = 4 * len(tickets) + 4 + (stop_after_calls or 0)
    for _ in range(budget):
        if stop_after_calls is not None and len(trace.calls) == stop_after_calls:
            policy.stop()
            stopped = True
            trace.stop_event = event
        done_before = policy.done
        in_flight_before = policy.in_flight
        waiting_before = policy.waiting
        admitted = policy.admit()
        for ticket in admitted:
            run = Run(ticket=ticket, start=event, start_time=clock)
            event += 1
            trace.runs.append(run)
            running[ticket] = (clock + durations[ticket.index], run)
        trace.calls.append(
            AdmitCall(
                event=event - len(admitted),
                stopped=stopped,
                done_before=done_before,
                in_flight_before=in_flight_before,
                waiting_before=waiting_before,
                admitted=tuple(admitted),
                in_flight_after=policy.in_flight,
                waiting_after=policy.waiting,
            )
        )
        assert policy.in_flight == frozenset(running), "policy and simulator disagree"
        if admitted:
            # Ask again before any time passes: a caller may call admit() at
            # any moment, and the answer must stay consistent.
            continue
        if not running:
            trace.stalled = bool(policy.waiting) and not stopped
            break
        # Advance the clock to the next ticket to finish (ties by index).
        ticket = min(running, key=lambda t: (running[t][0], t.index))
        end_time, run = running.pop(ticket)
        clock = end_time
        if release_first:
            policy.release_own_resources(ticket)
        policy.finish(ticket)
        run.end = event
        run.end_time = clock
        event += 1
        assert policy.in_flight == frozenset(running), "policy and simulator disagree"
    else:
        pytest.fail(f"simulation did not end within {budget} steps")
    trace.done = policy.done
    trace.waiting_at_end = policy.waiting
    return trace


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

RESOURCES = ("a", "b", "c")
GROUPS = (None, None, "g1", "g2")
SLOTS = ("db", "cache")
HOLDERS = ("h1", "h2")


@dataclass(frozen=True)
class Scenario:
    tickets: tuple[Ticket, ...]  # in the (shuffled) order given to the policy
    durations: Mapping[int, int]
    max_in_flight: int
    limits: Mapping[str, int] = field(default_factory=dict)

    def run(self, stop_after_calls: int | None = None) -> Trace:
        return simulate(
            self.tickets, self.durations, self.max_in_flight, stop_after_calls, self.limits
        )


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    solo: bool = True,
    slots: bool = True,
    resources: bool = True,
    groups: bool = True,
    after: bool = True,
    max_in_flight: int | None = None,
    max_tickets: int = 12,
) -> Scenario:
    """Tickets with indexes 0..n-1, handed to the policy in a shuffled order.

    Lives of a slot grow with the index, as the runner numbers them; a
    resource held through a holder is held through the same holder by
    consecutive users, as the users of one fixture instance are.
    """
    n = draw(st.integers(min_value=0, max_value=max_tickets))
    life = dict.fromkeys(SLOTS, 0)
    tickets = []
    for index in range(n):
        # Mostly concurrent tickets, so that the other constraints matter.
        concurrent = draw(st.sampled_from((True, True, True, True, False))) if solo else True
        slot_map: dict[Hashable, int] = {}
        if slots:
            for slot in draw(st.sets(st.sampled_from(SLOTS))):
                life[slot] += draw(st.sampled_from((0, 0, 1)))
                slot_map[slot] = life[slot]
        needs: dict[str, Access] = {}
        through: dict[str, Hashable] = {}
        if resources:
            needs = draw(
                st.dictionaries(
                    st.sampled_from(RESOURCES), st.sampled_from(list(Access)), max_size=2
                )
            )
            through = draw(
                st.dictionaries(st.sampled_from(RESOURCES), st.sampled_from(HOLDERS), max_size=1)
            )
        group = draw(st.sampled_from(GROUPS)) if groups else None
        earlier: tuple[int, ...] = ()
        if after and index:
            earlier = tuple(sorted(draw(st.sets(st.integers(0, index - 1), max_size=2))))
        gated = after and draw(st.sampled_from((False, False, False, True)))
        tickets.append(
            Ticket(
                index=index,
                concurrent=concurrent,
                slots=slot_map,
                resources=needs,
                held_through=through,
                group=group,
                after=earlier,
                after_all_earlier=gated,
            )
        )
    order = draw(st.permutations(range(n)))
    durations = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    limit = max_in_flight if max_in_flight is not None else draw(st.integers(1, 5))
    limits = (
        draw(st.dictionaries(st.sampled_from(RESOURCES), st.integers(1, 3))) if resources else {}
    )
    return Scenario(
        tickets=tuple(tickets[i] for i in order),
        durations=dict(enumerate(durations)),
        max_in_flight=limit,
        limits=limits,
    )


stop_points = st.none() | st.integers(min_value=0, max_value=25)

modest = settings(max_examples=300, deadline=None)
# For the checks of argument errors, which need less variety.
brief = settings(max_examples=50, deadline=None)


def holdings(ticket: Ticket) -> dict[str, tuple[Hashable, Access | None]]:
    """How a ticket holds each resource: (through which holder, its own access)."""
    names = ticket.resources.keys() | ticket.held_through.keys()
    return {name: (ticket.held_through.get(name), ticket.resources.get(name)) for name in names}


def compatible(a: tuple[Hashable, Access | None], b: tuple[Hashable, Access | None]) -> bool:
    """Whether two holds of one resource may overlap."""
    (holder_a, access_a), (holder_b, access_b) = a, b
    if holder_a != holder_b:
        return False
    if access_a is None or access_b is None:
        return True
    return access_a is Access.SHARED and access_b is Access.SHARED


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


@modest
@given(scenarios())
def test_every_ticket_runs_exactly_once(scenario: Scenario) -> None:
    trace = scenario.run()
    assert not trace.stalled
    assert trace.starts() == Counter(t.index for t in scenario.tickets)
    assert all(run.end is not None for run in trace.runs)
    assert trace.waiting_at_end == ()
    assert trace.done


@modest
@given(scenarios())
def test_resources_given_back_before_the_end_are_not_given_back_twice(
    scenario: Scenario,
) -> None:
    # Giving back a ticket's own resources just before it finishes must
    # leave the policy exactly as finishing alone does: nothing released
    # twice, nothing it holds through a fixture released early.
    alone = scenario.run()
    released_first = simulate(
        scenario.tickets,
        scenario.durations,
        scenario.max_in_flight,
        limits=scenario.limits,
        release_first=True,
    )
    assert released_first.runs == alone.runs
    assert released_first.calls == alone.calls


@modest
@given(scenarios(), stop_points)
def test_idle_policy_always_admits_something(scenario: Scenario, stop_after: int | None) -> None:
    """No deadlock: with nothing in flight, a waiting ticket always starts."""
    trace = scenario.run(stop_after)
    for call in trace.calls:
        if not call.stopped and not call.in_flight_before and call.waiting_before:
            assert call.admitted, f"deadlock: nothing in flight, waiting {call.waiting_before}"
    assert not trace.stalled


@modest
@given(scenarios())
def test_the_run_is_never_idle(scenario: Scenario) -> None:
    """Something is always in flight until the end, so the run takes at
    most the sum of the durations."""
    trace = scenario.run()
    assert trace.makespan() <= sum(scenario.durations.values())


@modest
@given(scenarios(), stop_points)
def test_done_means_idle_with_nothing_more_to_admit(
    scenario: Scenario, stop_after: int | None
) -> None:
    trace = scenario.run(stop_after)
    for call in trace.calls:
        idle = not call.in_flight_before
        assert call.done_before == (idle and (call.stopped or not call.waiting_before))
    assert trace.done


@modest
@given(scenarios(), st.integers(min_value=0, max_value=25))
def test_stop_admits_nothing_more_and_drains(scenario: Scenario, stop_after: int) -> None:
    trace = scenario.run(stop_after)
    if trace.stop_event is None:
        # The session ended before the stop point was reached.
        assert trace.starts() == Counter(t.index for t in scenario.tickets)
        assert trace.done
        return
    assert all(not call.admitted for call in trace.calls if call.stopped)
    assert all(run.start < trace.stop_event for run in trace.runs)
    # Tickets in flight at stop() still finish, after it.
    assert all(run.end is not None for run in trace.runs)
    assert trace.done
    started = {run.index for run in trace.runs}
    assert [t.index for t in trace.waiting_at_end] == sorted(
        t.index for t in scenario.tickets if t.index not in started
    )
    assert trace.starts() == Counter(started)  # nothing started twice


@modest
@given(scenarios(), stop_points)
def test_never_more_than_max_in_flight(scenario: Scenario, stop_after: int | None) -> None:
    trace = scenario.run(stop_after)
    for call in trace.calls:
        assert len(call.in_flight_after) <= scenario.max_in_flight
    for run in trace.runs:
        concurrent_runs = [
            other for other in trace.runs if other.start <= run.start < finished(other)
        ]
        assert len(concurrent_runs) <= scenario.max_in_flight


@modest
@given(scenarios(), stop_points)
def test_solo_ticket_never_overlaps(scenario: Scenario, stop_after: int | None) -> None:
    trace = scenario.run(stop_after)
    for solo in (run for run in trace.runs if not run.ticket.concurrent):
        for other in trace.runs:
            if other is not solo:
                assert not overlap(solo, other), (solo.index, other.index)
    for call in trace.calls:
        if any(not t.concurrent for t in call.admitted):
            assert len(call.admitted) == 1


@modest
@given(scenarios(), stop_points)
def test_solo_tickets_keep_their_place(scenario: Scenario, stop_after: int | None) -> None:
    """Everything before a solo ticket in collection order starts (and
    finishes) before it, and nothing after it starts before it finishes."""
    trace = scenario.run(stop_after)
    by_index = trace.by_index()
    for solo in (run for run in trace.runs if not run.ticket.concurrent):
        for index in range(solo.index):
            assert index in by_index, f"solo {solo.index} started before {index}"
            assert finished(by_index[index]) < solo.start
        for run in trace.runs:
            if run.index > solo.index:
                assert run.start > finished(solo), (solo.index, run.index)
    for ticket in scenario.tickets:
        if not ticket.concurrent and ticket.index not in by_index:
            assert all(run.index < ticket.index for run in trace.runs)


@modest
@given(scenarios(), stop_points)
def test_holders_of_a_resource_never_conflict(scenario: Scenario, stop_after: int | None) -> None:
    """Exclusive holders overlap nobody holding the resource, shared ones
    only shared ones, and users of a holder only users of the same holder."""
    trace = scenario.run(stop_after)
    for i, a in enumerate(trace.runs):
        for b in trace.runs[i + 1 :]:
            if not overlap(a, b):
                continue
            held_a, held_b = holdings(a.ticket), holdings(b.ticket)
            for name in held_a.keys() & held_b.keys():
                assert compatible(held_a[name], held_b[name]), (a.index, b.index, name)


@modest
@given(scenarios(), stop_points)
def test_no_limit_is_exceeded(scenario: Scenario, stop_after: int | None) -> None:
    trace = scenario.run(stop_after)
    for run in trace.runs:
        at_start = [other for other in trace.runs if other.start <= run.start < finished(other)]
        for name, limit in scenario.limits.items():
            holding = [other for other in at_start if name in holdings(other.ticket)]
            assert len(holding) <= limit, (run.index, name)


@modest
@given(scenarios(), stop_points)
def test_two_groups_never_overlap(scenario: Scenario, stop_after: int | None) -> None:
    trace = scenario.run(stop_after)
    for i, a in enumerate(trace.runs):
        for b in trace.runs[i + 1 :]:
            if overlap(a, b) and a.ticket.group and b.ticket.group:
                assert a.ticket.group == b.ticket.group, (a.index, b.index)


@modest
@given(scenarios(), stop_points)
def test_lives_never_overlap_and_come_in_order(scenario: Scenario, stop_after: int | None) -> None:
    trace = scenario.run(stop_after)
    for i, a in enumerate(trace.runs):
        for b in trace.runs[i + 1 :]:
            for slot in a.ticket.slots.keys() & b.ticket.slots.keys():
                life_a, life_b = a.ticket.slots[slot], b.ticket.slots[slot]
                if life_a != life_b:
                    assert not overlap(a, b), (a.index, b.index, slot)
                    earlier, later = (a, b) if life_a < life_b else (b, a)
                    assert earlier.start < later.start, (earlier.index, later.index, slot)
    # Every ticket of a life starts before any ticket of a later life.
    started = trace.by_index()
    for ticket in scenario.tickets:
        if ticket.index in started:
            continue
        for slot, life in ticket.slots.items():
            for run in trace.runs:
                assert run.ticket.slots.get(slot, life) <= life, (ticket.index, run.index)


@modest
@given(scenarios(), stop_points)
def test_after_is_respected(scenario: Scenario, stop_after: int | None) -> None:
    trace = scenario.run(stop_after)
    runs = trace.by_index()
    for run in trace.runs:
        if run.ticket.after_all_earlier:
            for index in range(run.index):
                assert index in runs, (index, run.index)
                assert runs[index].start < run.start, (index, run.index)
        for index in run.ticket.after:
            assert index in runs, (index, run.index)
            assert runs[index].start < run.start, (index, run.index)


@modest
@given(scenarios(resources=False, groups=False), stop_points)
def test_without_declarations_tickets_start_in_collection_order(
    scenario: Scenario, stop_after: int | None
) -> None:
    """Lives, solo tickets and after links alone never let a ticket
    overtake another: pytest's order is kept."""
    trace = scenario.run(stop_after)
    order = trace.start_order()
    assert order == list(range(len(order)))


@modest
@given(scenarios(max_in_flight=1))
def test_max_in_flight_one_is_sequential(scenario: Scenario) -> None:
    trace = scenario.run()
    runs = sorted(trace.runs, key=lambda run: run.start)
    for before, after in itertools.pairwise(runs):
        assert finished(before) < after.start
    for call in trace.calls:
        assert len(call.admitted) <= 1


@st.composite
def chain_scenarios(draw: st.DrawFn) -> Scenario:
    """Tickets of which some hold one exclusive resource, and nothing else."""
    n = draw(st.integers(1, 30))
    tickets = [
        Ticket(index, resources={"r": Access.EXCLUSIVE} if draw(st.booleans()) else {})
        for index in range(n)
    ]
    durations = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    return Scenario(tuple(tickets), dict(enumerate(durations)), draw(st.integers(1, 6)))


@modest
@given(chain_scenarios())
def test_makespan_is_within_bound_of_the_chain(scenario: Scenario) -> None:
    """A resource's chain starts at once and keeps going: the run takes at
    most the chain, plus the other tickets' share of the flight, plus one
    ticket's duration (and exactly the chain when it is the longest part
    and the flight has room for everything)."""
    trace = scenario.run()
    chain = sum(scenario.durations[t.index] for t in scenario.tickets if t.resources)
    others = sum(scenario.durations[t.index] for t in scenario.tickets if not t.resources)
    longest = max(scenario.durations.values())
    assert trace.makespan() <= chain + others / scenario.max_in_flight + longest
    if scenario.max_in_flight >= len(scenario.tickets):
        assert trace.makespan() == max(chain, longest)


@modest
@given(scenarios())
def test_finish_of_ticket_not_in_flight_raises(scenario: Scenario) -> None:
    policy = AdmissionPolicy(scenario.tickets, scenario.max_in_flight, scenario.limits)
    stranger = Ticket(index=-1)
    with pytest.raises(ValueError, match="not in flight"):
        policy.finish(stranger)
    admitted = policy.admit()
    for ticket in policy.waiting:
        with pytest.raises(ValueError, match="not in flight"):
            policy.finish(ticket)
    for ticket in admitted:
        policy.finish(ticket)
        with pytest.raises(ValueError, match="not in flight"):
            policy.finish(ticket)


@brief
@given(scenarios(), st.integers(max_value=0))
def test_max_in_flight_below_one_raises(scenario: Scenario, limit: int) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        AdmissionPolicy(scenario.tickets, limit)


@brief
@given(scenarios(max_tickets=6).filter(lambda s: len(s.tickets) > 0), st.data())
def test_duplicate_indexes_raise(scenario: Scenario, data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(scenario.tickets))
    copy = Ticket(index=original.index, concurrent=data.draw(st.booleans()))
    with pytest.raises(ValueError, match="unique"):
        AdmissionPolicy([*scenario.tickets, copy], scenario.max_in_flight)


# ---------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------

X, S = Access.EXCLUSIVE, Access.SHARED


def indexes(tickets: Sequence[Ticket] | frozenset[Ticket]) -> list[int]:
    return sorted(t.index for t in tickets)


def test_later_tickets_overtake_one_that_waits() -> None:
    t0 = Ticket(0, resources={"db": X})
    t1 = Ticket(1, resources={"db": X})
    t2 = Ticket(2)
    policy = AdmissionPolicy([t0, t1, t2], max_in_flight=10)
    assert indexes(policy.admit()) == [0, 2]
    policy.finish(t0)
    assert policy.admit() == [t1]


def test_shared_holders_overlap_and_exclude_an_exclusive_one() -> None:
    t0, t1 = Ticket(0, resources={"db": S}), Ticket(1, resources={"db": S})
    t2 = Ticket(2, resources={"db": X})
    policy = AdmissionPolicy([t0, t1, t2], max_in_flight=10)
    assert indexes(policy.admit()) == [0, 1]
    policy.finish(t0)
    assert policy.admit() == []
    policy.finish(t1)
    assert policy.admit() == [t2]


def test_a_waiting_exclusive_holder_is_not_starved_by_shared_ones() -> None:
    """Readers that keep coming do not overtake a waiting writer."""
    readers = [Ticket(i, resources={"db": S}) for i in (0, 2, 3, 4)]
    writer = Ticket(1, resources={"db": X})
    policy = AdmissionPolicy([*readers, writer], max_in_flight=10)
    assert policy.admit() == [readers[0]]
    policy.finish(readers[0])
    assert policy.admit() == [writer]
    policy.finish(writer)
    assert indexes(policy.admit()) == [2, 3, 4]


def test_a_limit_caps_the_holders() -> None:
    tickets = [Ticket(i, resources={"browser": S}) for i in range(5)]
    policy = AdmissionPolicy(tickets, max_in_flight=10, limits={"browser": 2})
    assert indexes(policy.admit()) == [0, 1]
    policy.finish(tickets[0])
    assert policy.admit() == [tickets[2]]


def test_groups_exclude_each_other_and_not_the_ungrouped() -> None:
    a0, b1 = Ticket(0, group="a"), Ticket(1, group="b")
    a2, n3 = Ticket(2, group="a"), Ticket(3)
    policy = AdmissionPolicy([a0, b1, a2, n3], max_in_flight=10)
    assert indexes(policy.admit()) == [0, 2, 3]
    policy.finish(a0)
    assert policy.admit() == []
    policy.finish(a2)
    assert policy.admit() == [b1]


def test_a_group_passed_over_again_and_again_gets_its_turn() -> None:
    """Group b waits while group a keeps the lock; after a few passes it
    reserves it, and the rest of group a waits for it."""
    tickets = [Ticket(0, group="a"), Ticket(1, group="b")]
    tickets += [Ticket(i, group="a") for i in range(2, 40)]
    policy = AdmissionPolicy(tickets, max_in_flight=2, passes_before_reserving=3)
    started = indexes(policy.admit())
    in_flight = set(policy.in_flight)
    b_started_after = None
    while policy.waiting or in_flight:
        first = min(in_flight, key=lambda t: t.index)
        policy.finish(first)
        in_flight.remove(first)
        for ticket in policy.admit():
            if ticket.group == "b":
                b_started_after = len(started)
            started.append(ticket.index)
            in_flight.add(ticket)
    assert b_started_after is not None
    assert b_started_after < 10


def test_solo_ticket_waits_for_earlier_and_holds_back_later() -> None:
    t0, t1, t2, t3 = Ticket(0), Ticket(1), Ticket(2, concurrent=False), Ticket(3)
    policy = AdmissionPolicy([t0, t1, t2, t3], max_in_flight=10)
    assert policy.admit() == [t0, t1]
    policy.finish(t0)
    assert policy.admit() == []
    policy.finish(t1)
    assert policy.admit() == [t2]
    assert policy.admit() == []
    policy.finish(t2)
    assert policy.admit() == [t3]


def test_lives_of_a_slot_come_in_order_and_hold_back_later_tickets() -> None:
    """A ticket waiting for a life holds back every later ticket: one of
    them might ask for the shared value in a way no plan sees."""
    t0, t1 = Ticket(0, slots={"db": 0}), Ticket(1, slots={"db": 1})
    t2, t3 = Ticket(2, slots={"db": 1}), Ticket(3)
    policy = AdmissionPolicy([t0, t1, t2, t3], max_in_flight=10)
    assert indexes(policy.admit()) == [0]
    policy.finish(t0)
    assert indexes(policy.admit()) == [1, 2, 3]


def test_a_ticket_waiting_for_a_resource_holds_back_nobody() -> None:
    t0, t1 = Ticket(0, resources={"r": X}), Ticket(1, resources={"r": X})
    t2 = Ticket(2, slots={"db": 0})
    policy = AdmissionPolicy([t0, t1, t2], max_in_flight=10)
    assert indexes(policy.admit()) == [0, 2]


def test_a_later_life_waits_for_every_ticket_of_the_earlier_one() -> None:
    """A ticket of life 0 held back by a resource keeps life 1 from starting."""
    t0 = Ticket(0, resources={"r": X})
    t1 = Ticket(1, slots={"db": 0}, resources={"r": X})
    t2 = Ticket(2, slots={"db": 1})
    policy = AdmissionPolicy([t0, t1, t2], max_in_flight=10)
    assert policy.admit() == [t0]
    policy.finish(t0)
    assert policy.admit() == [t1]
    policy.finish(t1)
    assert policy.admit() == [t2]


def test_after_holds_a_ticket_until_its_predecessors_started() -> None:
    t0 = Ticket(0, resources={"r": X})
    t1 = Ticket(1, resources={"r": X})
    t2 = Ticket(2, after=(1,))
    policy = AdmissionPolicy([t0, t1, t2], max_in_flight=10)
    assert policy.admit() == [t0]
    policy.finish(t0)
    assert indexes(policy.admit()) == [1, 2]


def test_users_of_one_holder_share_its_resource() -> None:
    t0 = Ticket(0, held_through={"db": "instance-1"})
    t1 = Ticket(1, held_through={"db": "instance-1"}, resources={"db": X})
    t2 = Ticket(2, held_through={"db": "instance-1"}, resources={"db": X})
    t3 = Ticket(3, resources={"db": S})
    policy = AdmissionPolicy([t0, t1, t2, t3], max_in_flight=10)
    assert indexes(policy.admit()) == [0, 1]
    policy.finish(t1)
    assert policy.admit() == [t2]
    policy.finish(t0)
    policy.finish(t2)
    assert policy.admit() == [t3]


def test_a_solo_ticket_on_a_contended_resource_keeps_its_place() -> None:
    tickets = [Ticket(0, resources={"db": X}), Ticket(1, resources={"db": X}), Ticket(2)]
    tickets += [Ticket(3, concurrent=False, resources={"db": X}), Ticket(4)]
    policy = AdmissionPolicy(tickets, max_in_flight=10)
    assert indexes(policy.admit()) == [0, 2]
    policy.finish(tickets[0])
    assert policy.admit() == [tickets[1]]
    policy.finish(tickets[1])
    policy.finish(tickets[2])
    assert policy.admit() == [tickets[3]]
    policy.finish(tickets[3])
    assert policy.admit() == [tickets[4]]


def test_an_exclusive_waiter_reserves_only_what_stopped_it() -> None:
    """A ticket waiting for 'a' does not keep later tickets off 'b', which
    it also needs but which is free."""
    t0 = Ticket(0, resources={"a": X})
    t1 = Ticket(1, resources={"a": X, "b": X})
    t2 = Ticket(2, resources={"b": X})
    policy = AdmissionPolicy([t0, t1, t2], max_in_flight=10)
    assert indexes(policy.admit()) == [0, 2]


def test_contended_chain_starts_first() -> None:
    """With room for one test at a time, the tickets of a resource that
    serialises three of them go before the rest."""
    tickets = [Ticket(0), Ticket(1)] + [Ticket(i, resources={"r": X}) for i in (2, 3, 4)]
    policy = AdmissionPolicy(tickets, max_in_flight=1)
    order = []
    while not policy.done:
        (ticket,) = policy.admit()
        order.append(ticket.index)
        policy.finish(ticket)
    assert order == [2, 3, 4, 0, 1]


def test_admission_looks_only_at_what_changed() -> None:
    """A release wakes only tickets that may take the released lock: with
    4,000 tickets queued on one resource, each admission looks at a few."""
    looked = 0
    tickets = [Ticket(i, resources={"r": X}) for i in range(4000)]
    policy = AdmissionPolicy(tickets, max_in_flight=10)
    blocker = policy._blocker

    def counting(waiter: object) -> object:
        nonlocal looked
        looked += 1
        return blocker(waiter)  # type: ignore[arg-type]

    policy._blocker = counting  # type: ignore[method-assign,assignment]
    (first,) = policy.admit()
    looked = 0
    policy.finish(first)
    assert len(policy.admit()) == 1
    # The first admit parked every ticket; from then on each end looks at one.
    assert looked <= 2


def test_stop_lets_in_flight_tickets_finish() -> None:
    t0, t1, t2 = Ticket(0), Ticket(1), Ticket(2)
    policy = AdmissionPolicy([t0, t1, t2], max_in_flight=2)
    assert policy.admit() == [t0, t1]
    policy.stop()
    assert not policy.done
    policy.finish(t0)
    assert policy.admit() == []
    policy.finish(t1)
    assert policy.done
    assert policy.waiting == (t2,)


def test_empty_policy_is_done() -> None:
    policy = AdmissionPolicy([], max_in_flight=1)
    assert policy.done
    assert policy.admit() == []


def test_tickets_compare_by_identity() -> None:
    t0 = Ticket(0)
    policy = AdmissionPolicy([t0], max_in_flight=1)
    assert policy.admit() == [t0]
    with pytest.raises(ValueError, match="not in flight"):
        policy.finish(Ticket(0))
    policy.finish(t0)
    assert policy.done


@pytest.mark.parametrize("limit", [0, -1])
def test_invalid_limits(limit: int) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        AdmissionPolicy([], max_in_flight=limit)
    with pytest.raises(ValueError, match="resource 'db'"):
        AdmissionPolicy([], max_in_flight=1, limits={"db": limit})


def test_after_must_name_an_earlier_ticket() -> None:
    with pytest.raises(ValueError, match="not an earlier ticket"):
        AdmissionPolicy([Ticket(0, after=(1,)), Ticket(1)], max_in_flight=1)


def test_duplicate_index() -> None:
    with pytest.raises(ValueError, match="unique"):
        AdmissionPolicy([Ticket(0), Ticket(0, concurrent=False)], max_in_flight=1)


def test_simulator_times() -> None:
    """The simulator itself: durations drive which ticket finishes first."""
    tickets = [Ticket(0), Ticket(1), Ticket(2)]
    trace = simulate(tickets, {0: 5, 1: 1, 2: 2}, max_in_flight=2)
    runs = trace.by_index()
    assert (runs[0].start_time, runs[0].end_time) == (0, 5)
    assert (runs[1].start_time, runs[1].end_time) == (0, 1)
    assert (runs[2].start_time, runs[2].end_time) == (1, 3)
    assert trace.done


def test_a_hold_at_run_time_is_not_owed_to_waiting_tickets() -> None:
    """A test in flight takes a free resource even when a waiting ticket
    reserves it; a ticket does not start while a run-time hold conflicts."""
    t0 = Ticket(0, resources={"db": S})
    t1 = Ticket(1, resources={"db": X, "other": X})
    t2 = Ticket(2, resources={"other": S})
    t3 = Ticket(3, resources={"db": S})
    policy = AdmissionPolicy([t0, t1, t2, t3], max_in_flight=10)
    assert indexes(policy.admit()) == [0, 2]  # t1 waits for db and reserves it
    policy.finish(t0)
    assert policy.admit() == []  # t1 now waits for 'other'; t3 is held back
    assert policy.try_hold("db", S, holder="task")
    assert not policy.try_hold("db", X, holder="another task")
    policy.finish(t2)
    assert policy.admit() == []  # t1 needs db, held at run time
    policy.release_hold("db")
    assert policy.admit() == [t1]


def test_resources_given_back_early_let_a_waiting_holder_start() -> None:
    """A ticket still in flight gives back what it declared for itself, but
    not what it holds through a shared fixture."""
    closer = Ticket(0, resources={"db": X, "cache": X}, held_through={"cache": "h1"})
    db_user = Ticket(1, resources={"db": X})
    cache_user = Ticket(2, resources={"cache": X})
    policy = AdmissionPolicy([closer, db_user, cache_user], max_in_flight=10)
    assert policy.admit() == [closer]
    assert policy.release_own_resources(closer) == ["db"]
    assert policy.admit() == [db_user]
    assert policy.release_own_resources(closer) == []
    policy.finish(closer)
    assert policy.admit() == [cache_user]
    with pytest.raises(ValueError, match="not in flight"):
        policy.release_own_resources(closer)
