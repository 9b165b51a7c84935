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

from pytest_concurrently.scheduling import AdmissionPolicy, Ticket

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
) -> Trace:
    """Run ``tickets`` through a fresh policy on a fake clock.

    :param durations: fake run time of each ticket, by index.
    :param stop_after_calls: if given, call ``stop()`` just before the
        admit() call with this (0-based) number.
    """
    policy = AdmissionPolicy(tickets, max_in_flight)
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

SLOT_NAMES = ("db", "cache")
SLOT_VALUES = ("a", "b")

slot_maps = st.dictionaries(st.sampled_from(SLOT_NAMES), st.sampled_from(SLOT_VALUES), max_size=2)


@dataclass(frozen=True)
class Scenario:
    tickets: tuple[Ticket, ...]  # in the (shuffled) order given to the policy
    durations: Mapping[int, int]
    max_in_flight: int

    def run(self, stop_after_calls: int | None = None) -> Trace:
        return simulate(self.tickets, self.durations, self.max_in_flight, stop_after_calls)


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    solo: bool = True,
    slots: bool = True,
    max_in_flight: int | None = None,
    max_tickets: int = 10,
) -> Scenario:
    """Tickets with indexes 0..n-1, handed to the policy in a shuffled order."""
    n = draw(st.integers(min_value=0, max_value=max_tickets))
    order = draw(st.permutations(range(n)))
    tickets = []
    for index in order:
        # Mostly concurrent tickets, so that slots and the limit matter.
        concurrent = draw(st.sampled_from((True, True, True, False))) if solo else True
        slot_map: dict[Hashable, Hashable] = {}
        if slots:
            slot_map.update(draw(slot_maps))
        tickets.append(Ticket(index=index, concurrent=concurrent, slots=slot_map))
    durations = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    limit = max_in_flight if max_in_flight is not None else draw(st.integers(1, 5))
    return Scenario(
        tickets=tuple(tickets), durations=dict(enumerate(durations)), max_in_flight=limit
    )


stop_points = st.none() | st.integers(min_value=0, max_value=25)

modest = settings(max_examples=200, deadline=None)
# For the checks of argument errors, which need less variety.
brief = settings(max_examples=50, deadline=None)


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
@given(scenarios(), stop_points)
def test_idle_policy_always_admits_something(scenario: Scenario, stop_after: int | None) -> None:
    trace = scenario.run(stop_after)
    for call in trace.calls:
        if not call.stopped and not call.in_flight_before and call.waiting_before:
            assert call.admitted, f"deadlock: nothing in flight, waiting {call.waiting_before}"
    assert not trace.stalled


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
    # What never started is still waiting, in collection order.
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
    trace = scenario.run(stop_after)
    by_index = trace.by_index()
    for solo in (run for run in trace.runs if not run.ticket.concurrent):
        # Everything before it started and finished before it started ...
        for index in range(solo.index):
            assert index in by_index, f"solo {solo.index} started before {index}"
            assert finished(by_index[index]) < solo.start
        # ... and nothing after it started before it finished.
        for run in trace.runs:
            if run.index > solo.index:
                assert run.start > finished(solo), (solo.index, run.index)
    # A solo ticket that never started holds back everything after it.
    for ticket in scenario.tickets:
        if not ticket.concurrent and ticket.index not in by_index:
            assert all(run.index < ticket.index for run in trace.runs)


@modest
@given(scenarios(), stop_points)
def test_overlapping_tickets_agree_on_slots(scenario: Scenario, stop_after: int | None) -> None:
    trace = scenario.run(stop_after)
    for i, a in enumerate(trace.runs):
        for b in trace.runs[i + 1 :]:
            if overlap(a, b):
                for slot in a.ticket.slots.keys() & b.ticket.slots.keys():
                    assert a.ticket.slots[slot] == b.ticket.slots[slot], (a.index, b.index, slot)


@modest
@given(scenarios(), stop_points)
def test_admit_returns_tickets_in_collection_order(
    scenario: Scenario, stop_after: int | None
) -> None:
    trace = scenario.run(stop_after)
    for call in trace.calls:
        indexes = [t.index for t in call.admitted]
        assert indexes == sorted(indexes)
        assert [t.index for t in call.waiting_after] == sorted(t.index for t in call.waiting_after)


@modest
@given(scenarios(), stop_points)
def test_admit_starts_everything_it_may(scenario: Scenario, stop_after: int | None) -> None:
    """After admit(), the head of the queue is not admissible under the
    module's rules (and nothing behind it may overtake it)."""
    trace = scenario.run(stop_after)
    for call in trace.calls:
        flight = call.in_flight_after
        if call.stopped or len(flight) >= scenario.max_in_flight or not call.waiting_after:
            continue
        if any(not t.concurrent for t in flight):
            continue
        held: dict[Hashable, Hashable] = {}
        for ticket in flight:
            held.update(ticket.slots)
        head = call.waiting_after[0]
        if not head.concurrent:
            assert flight, f"solo {head.index} could have started"
        else:
            assert any(held.get(slot, value) != value for slot, value in head.slots.items()), (
                f"ticket {head.index} could have started"
            )


@modest
@given(scenarios(), stop_points)
def test_tickets_start_in_collection_order(scenario: Scenario, stop_after: int | None) -> None:
    """Nobody overtakes: when a ticket starts, every earlier ticket has
    started (the runner's waits for earlier tests rely on it)."""
    trace = scenario.run(stop_after)
    order = trace.start_order()
    assert order == list(range(len(order)))


@modest
@given(scenarios(solo=False, slots=False))
def test_without_slots_or_solo_tickets_start_in_order(scenario: Scenario) -> None:
    trace = scenario.run()
    assert trace.start_order() == list(range(len(scenario.tickets)))


@modest
@given(scenarios(max_in_flight=1))
def test_max_in_flight_one_is_sequential(scenario: Scenario) -> None:
    trace = scenario.run()
    assert trace.start_order() == list(range(len(scenario.tickets)))
    runs = sorted(trace.runs, key=lambda run: run.start)
    for before, after in itertools.pairwise(runs):
        assert finished(before) < after.start
    for call in trace.calls:
        assert len(call.admitted) <= 1


@modest
@given(scenarios())
def test_finish_of_ticket_not_in_flight_raises(scenario: Scenario) -> None:
    policy = AdmissionPolicy(scenario.tickets, scenario.max_in_flight)
    stranger = Ticket(index=-1, concurrent=True)
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


def make(*specs: tuple[bool, Mapping[Hashable, Hashable]]) -> list[Ticket]:
    """Tickets numbered in order from (concurrent, slots) pairs."""
    return [Ticket(index=i, concurrent=c, slots=s) for i, (c, s) in enumerate(specs)]


def indexes(tickets: Sequence[Ticket] | frozenset[Ticket]) -> list[int]:
    return sorted(t.index for t in tickets)


def test_slot_value_waits_for_every_holder_of_another_value() -> None:
    t0, t1, t2, t3 = make(
        (True, {"db": "a"}), (True, {"db": "a"}), (True, {"db": "b"}), (True, {"db": "a"})
    )
    policy = AdmissionPolicy([t0, t1, t2, t3], max_in_flight=10)
    # 'b' waits, and the later 'a' waits behind it: a new instance of 'a'
    # after 'b', as pytest would make, not the old one reused.
    assert indexes(policy.admit()) == [0, 1]
    assert policy.waiting == (t2, t3)
    policy.finish(t0)
    assert policy.admit() == []  # t1 still holds db='a'
    policy.finish(t1)
    assert policy.admit() == [t2]
    assert policy.admit() == []  # t3 needs 'a' again
    policy.finish(t2)
    assert policy.admit() == [t3]
    policy.finish(t3)
    assert policy.done


def test_slot_blocked_ticket_holds_back_later_tickets() -> None:
    t0, t1, t2, t3 = make((True, {"db": "a"}), (True, {"db": "a"}), (True, {"db": "b"}), (True, {}))
    policy = AdmissionPolicy([t0, t1, t2, t3], max_in_flight=10)
    assert policy.admit() == [t0, t1]
    assert list(policy.waiting) == [t2, t3]
    policy.finish(t0)
    assert policy.admit() == []
    policy.finish(t1)
    assert policy.admit() == [t2, t3]


def test_admission_looks_only_at_the_head_of_the_queue() -> None:
    """Deciding who starts does not rescan the waiting tickets: a contended
    slot with many waiters costs one look per admit()."""

    class CountingValue:
        compared = 0

        def __init__(self, name: str) -> None:
            self.name = name

        def __eq__(self, other: object) -> bool:
            CountingValue.compared += 1
            return isinstance(other, CountingValue) and other.name == self.name

        __hash__ = None  # type: ignore[assignment]

    a, b = CountingValue("a"), CountingValue("b")
    tickets = [Ticket(0, True, {"db": a})] + [
        Ticket(i, True, {"db": CountingValue("b") if i % 2 else b}) for i in range(1, 4001)
    ]
    policy = AdmissionPolicy(tickets, max_in_flight=10)
    assert policy.admit() == [tickets[0]]
    CountingValue.compared = 0
    for _ in range(100):
        assert policy.admit() == []
    assert CountingValue.compared <= 100


def test_different_slots_do_not_conflict() -> None:
    t0, t1, t2 = make(
        (True, {"db": "a"}), (True, {"cache": "b"}), (True, {"db": "a", "cache": "b"})
    )
    policy = AdmissionPolicy([t0, t1, t2], max_in_flight=10)
    assert policy.admit() == [t0, t1, t2]


def test_one_disagreeing_slot_is_enough_to_wait() -> None:
    t0, t1 = make((True, {"db": "a", "cache": "a"}), (True, {"db": "a", "cache": "b"}))
    policy = AdmissionPolicy([t0, t1], max_in_flight=10)
    assert policy.admit() == [t0]
    policy.finish(t0)
    assert policy.admit() == [t1]


def test_solo_ticket_waits_for_earlier_and_holds_back_later() -> None:
    t0, t1, t2, t3 = make((True, {}), (True, {}), (False, {}), (True, {}))
    policy = AdmissionPolicy([t0, t1, t2, t3], max_in_flight=10)
    assert policy.admit() == [t0, t1]
    policy.finish(t0)
    assert policy.admit() == []
    policy.finish(t1)
    assert policy.admit() == [t2]
    assert policy.admit() == []
    policy.finish(t2)
    assert policy.admit() == [t3]


def test_solo_ticket_waits_for_earlier_ticket_blocked_by_a_slot() -> None:
    t0, t1, t2, t3 = make((True, {"db": "a"}), (True, {"db": "b"}), (False, {}), (True, {}))
    policy = AdmissionPolicy([t0, t1, t2, t3], max_in_flight=10)
    # t1 waits for the slot, so the solo t2 may not start, and t3 stays behind it.
    assert policy.admit() == [t0]
    policy.finish(t0)
    assert policy.admit() == [t1]
    policy.finish(t1)
    assert policy.admit() == [t2]
    policy.finish(t2)
    assert policy.admit() == [t3]


def test_solo_ticket_first() -> None:
    t0, t1 = make((False, {}), (True, {}))
    policy = AdmissionPolicy([t1, t0], max_in_flight=3)
    assert policy.admit() == [t0]
    assert policy.admit() == []
    policy.finish(t0)
    assert policy.admit() == [t1]


def test_limit_caps_each_admission() -> None:
    tickets = make(*[(True, {})] * 5)
    policy = AdmissionPolicy(tickets, max_in_flight=2)
    assert policy.admit() == tickets[:2]
    assert policy.admit() == []
    policy.finish(tickets[1])
    assert policy.admit() == [tickets[2]]
    assert indexes(policy.in_flight) == [0, 2]


def test_tickets_are_sorted_by_index() -> None:
    tickets = make(*[(True, {})] * 4)
    policy = AdmissionPolicy(reversed(tickets), max_in_flight=10)
    assert policy.waiting == tuple(tickets)
    assert policy.admit() == tickets


def test_stop_lets_in_flight_tickets_finish() -> None:
    t0, t1, t2 = make((True, {}), (True, {}), (True, {}))
    policy = AdmissionPolicy([t0, t1, t2], max_in_flight=2)
    assert policy.admit() == [t0, t1]
    policy.stop()
    assert not policy.done
    policy.finish(t0)
    assert policy.admit() == []
    assert not policy.done
    policy.finish(t1)
    assert policy.admit() == []
    assert policy.done
    assert policy.waiting == (t2,)


def test_empty_policy_is_done() -> None:
    policy = AdmissionPolicy([], max_in_flight=1)
    assert policy.done
    assert policy.admit() == []


def test_tickets_compare_by_identity() -> None:
    (t0,) = make((True, {}))
    twin = Ticket(index=0, concurrent=True)
    policy = AdmissionPolicy([t0], max_in_flight=1)
    assert policy.admit() == [t0]
    with pytest.raises(ValueError, match="not in flight"):
        policy.finish(twin)
    policy.finish(t0)
    assert policy.done


@pytest.mark.parametrize("limit", [0, -1])
def test_invalid_limit(limit: int) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        AdmissionPolicy([], max_in_flight=limit)


def test_duplicate_index() -> None:
    with pytest.raises(ValueError, match="unique"):
        AdmissionPolicy([Ticket(0, True), Ticket(0, False)], max_in_flight=1)


def test_simulator_times() -> None:
    """The simulator itself: durations drive which ticket finishes first."""
    tickets = make((True, {}), (True, {}), (True, {}))
    trace = simulate(tickets, {0: 5, 1: 1, 2: 2}, max_in_flight=2)
    runs = trace.by_index()
    assert (runs[0].start_time, runs[0].end_time) == (0, 5)
    assert (runs[1].start_time, runs[1].end_time) == (0, 1)
    assert (runs[2].start_time, runs[2].end_time) == (1, 3)
    assert trace.done
