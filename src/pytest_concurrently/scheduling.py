"""Who may start next: the admission policy.

This module knows nothing about pytest. It sees each test as a :class:`Ticket`
(its position in collection order, whether it may share the loop with other
tests, and which shared instances it needs) and decides, every time something
changes, which tickets may start now.

The rules:

1. Tickets start in collection order, and a ticket that cannot start yet
   holds back every later ticket: nobody overtakes. The runner relies on
   this: when a ticket starts, every earlier ticket has started, so a test
   may wait for earlier tests (the last test of a module waits for the
   module's other tests before the module is torn down, as pytest tears it
   down in that test's teardown) without any risk of waiting for a test that
   waits for it.
2. A solo ticket (one that must run with nothing else in flight) starts only
   when nothing is in flight, and while it runs nothing else starts.
3. At most ``max_in_flight`` tickets run at once.
4. Two tickets that name the same *slot* with different values never overlap.
   A slot is something that can hold one value at a time, such as a
   module-scoped fixture parametrized over two databases: every user of
   ``db[postgres]`` must finish before the first user of ``db[sqlite]``
   starts. Values are compared with ``==``.

For example, with ``max_in_flight=3`` and tickets ``t0 t1{db:a} t2{db:b}
t3 t4(solo) t5``: ``t0`` and ``t1`` start; ``t2`` waits for ``t1`` (the slot
holds ``a``), and ``t3`` waits behind ``t2``. When ``t1`` ends, ``t2`` and
``t3`` start; ``t4`` starts when ``t0``, ``t2`` and ``t3`` have all ended,
and ``t5`` after ``t4``.

The policy cannot deadlock: whenever nothing is in flight, the earliest
waiting ticket is admissible (no slot is held, the limit is not reached and no
earlier ticket is pending), so every call to :meth:`AdmissionPolicy.admit`
with an empty flight admits at least one ticket until all have started.

Deciding is incremental: :meth:`AdmissionPolicy.admit` looks only at the head
of the queue, so it costs one step per ticket it admits plus one, however many
tickets wait.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["AdmissionPolicy", "Ticket"]


@dataclass(frozen=True, eq=False)
class Ticket:
    """One test's request to run.

    :param index: position in collection order; unique within a policy.
    :param concurrent: whether the test may overlap with other concurrent tests.
    :param slots: shared resources the test needs, each with the value it needs
        the resource to hold (see the module docstring, rule 4).

    Tickets compare by identity: two tickets are the same only if they are
    the same object.
    """

    index: int
    concurrent: bool
    slots: Mapping[Hashable, object] = field(default_factory=dict)


class AdmissionPolicy:
    """Decides which tickets may start, given those already in flight.

    The caller reports every start (implicitly, through :meth:`admit`) and
    every end (:meth:`finish`); the policy holds no clock and never waits.
    """

    def __init__(self, tickets: Iterable[Ticket], max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self._waiting: deque[Ticket] = deque(sorted(tickets, key=lambda t: t.index))
        if len({t.index for t in self._waiting}) != len(self._waiting):
            raise ValueError("ticket indexes must be unique")
        self._max_in_flight = max_in_flight
        self._in_flight: set[Ticket] = set()
        self._solo_running = False
        # slot -> (value, number of in-flight tickets holding it)
        self._slot_values: dict[Hashable, object] = {}
        self._slot_holders: Counter[Hashable] = Counter()
        self._stopped = False

    @property
    def in_flight(self) -> frozenset[Ticket]:
        """The tickets admitted and not yet finished."""
        return frozenset(self._in_flight)

    @property
    def in_flight_count(self) -> int:
        """How many tickets are admitted and not yet finished."""
        return len(self._in_flight)

    @property
    def waiting(self) -> tuple[Ticket, ...]:
        """The tickets not yet admitted, in collection order."""
        return tuple(self._waiting)

    @property
    def done(self) -> bool:
        """True when nothing is in flight and nothing more will be admitted."""
        return not self._in_flight and (self._stopped or not self._waiting)

    def stop(self) -> None:
        """Admit nothing more; tickets in flight may still finish."""
        self._stopped = True

    def admit(self) -> list[Ticket]:
        """Return the tickets that may start now, in collection order, and
        count them as in flight.

        A solo ticket is only ever returned alone.
        """
        if self._stopped or self._solo_running:
            return []
        admitted: list[Ticket] = []
        waiting = self._waiting
        while waiting and len(self._in_flight) < self._max_in_flight:
            ticket = waiting[0]
            if not ticket.concurrent:
                if not self._in_flight:
                    waiting.popleft()
                    self._start(ticket)
                    self._solo_running = True
                    admitted.append(ticket)
                break
            if not self._slots_agree(ticket):
                break
            waiting.popleft()
            self._start(ticket)
            admitted.append(ticket)
        return admitted

    def finish(self, ticket: Ticket) -> None:
        """Record that an admitted ticket has ended (in any way)."""
        if ticket not in self._in_flight:
            raise ValueError(f"ticket {ticket.index} is not in flight")
        self._in_flight.remove(ticket)
        if not ticket.concurrent:
            self._solo_running = False
        for slot in ticket.slots:
            self._slot_holders[slot] -= 1
            if not self._slot_holders[slot]:
                del self._slot_holders[slot]
                del self._slot_values[slot]

    def _slots_agree(self, ticket: Ticket) -> bool:
        for slot, value in ticket.slots.items():
            if slot not in self._slot_values:
                continue  # a free slot takes any value
            held = self._slot_values[slot]
            if held is not value and held != value:
                return False
        return True

    def _start(self, ticket: Ticket) -> None:
        self._in_flight.add(ticket)
        for slot, value in ticket.slots.items():
            self._slot_values[slot] = value
            self._slot_holders[slot] += 1
