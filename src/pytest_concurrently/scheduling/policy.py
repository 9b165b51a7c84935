"""Who may start next: the admission policy.

Every test is a :class:`~.tickets.Ticket`. What a ticket needs becomes a
list of *demands*, each a :class:`~.locks.Lock` and the key it presents:

- every concurrent ticket holds the lock of the whole run shared, and a
  ticket that must run alone holds it exclusively, so it starts only when
  nothing is in flight and nothing starts while it runs;
- each named resource is a lock (with the resource's limit as capacity),
  taken with a key of the ticket's own (exclusive) or :data:`~.locks.SHARED`;
  a resource held through a shared fixture instance is taken with the
  instance's key, and the ticket's own hold of it, if any, becomes a lock
  within that one;
- groups are keys on one lock of all groups;
- each slot is a :class:`~.locks.LifeLock`, whose lives come in order.

A ticket starts when every demand fits at once, and then takes them all:
it never waits holding part of what it needs. Admission also respects the
ticket's ``after`` list (the scheduler's caller uses it to keep the test
that makes a shared value, or ends a scope, where pytest's order puts it).

A ticket that must run alone keeps its place: it starts after every ticket
before it in collection order has started (and, holding the whole run
exclusively, ended), and every ticket after it waits until it has started.

Which ticket goes first is decided by a static *priority*: collection order,
except that concurrent tickets holding a contended resource (one that
serialises a chain of at least two tickets) come first, longest chain
first, so that such a chain starts at once instead of forming a serial tail
at the end of the run.

Fairness:

- No head-of-line blocking: a ticket that cannot start is *parked* on the
  lock that stopped it, and later tickets that can start do. Except for a
  ticket that waits for a life of a shared value (tests in flight hold
  another life): nobody placed after it starts until it has, as pytest's
  order would have it. A later test might ask for that shared value with
  ``request.getfixturevalue``, which no plan sees, and replace it early.
- No starvation: a ticket that waits for an exclusive hold (of a resource
  or of the whole run) *reserves* the lock it waits for as soon as it
  waits, and each further lock that stops it; any ticket reserves
  everything it needs once it has been passed over
  ``passes_before_reserving`` times. A ticket may not take a lock that a
  better-placed ticket reserves with another key (or with the same key,
  when the lock has a capacity).

A ticket marked ``after_all_earlier`` starts only once every earlier
ticket has started: it replaces a shared value, and an earlier test may
still ask for that value in a way no plan sees.

Progress: all ``after`` links (``after_all_earlier`` and the links that keep
solo tickets in place included) point to earlier tickets; a life opens only
when the tickets of earlier lives are admitted, which counts like such a
link; reservations are made only by tickets whose links are satisfied; and
a ticket parked on a life is woken, and stops holding others back, as soon
as nothing holds that life. So when nothing is in flight, the best-placed
ticket among those whose links are satisfied finds every lock free and no
better reservation, and starts: the policy cannot deadlock.

Deciding is incremental. A release wakes only the tickets parked on that
lock that may take it now; a parked ticket is looked at again only when
woken; so each admission costs a few heap operations per demand, however
many tickets wait.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Final

from .locks import SHARED, LifeLock, Lock
from .tickets import Access, Ticket

__all__ = ["AdmissionPolicy"]

#: The default number of times a ticket is passed over before it reserves.
PASSES_BEFORE_RESERVING: Final = 8

#: A chain this long on one resource makes its tickets go first.
_CONTENDED_CHAIN: Final = 2


#: The names of the lock every ticket takes and of the lock of all groups.
_WHOLE_RUN: Final = ("the whole run",)
_GROUPS: Final = ("groups",)

#: What a ticket waited for when only ``after`` links held it back.
_EARLIER_TESTS: Final = "earlier tests"


def _describe(lock: Lock[Any], concurrent: bool) -> str:
    """What a ticket parked on ``lock`` waits for, in words for the user."""
    if isinstance(lock, LifeLock):
        return "a shared fixture value"
    if lock.name == _WHOLE_RUN:
        return "an isolated test" if concurrent else "the tests in flight"
    if lock.name == _GROUPS:
        return "another group"
    name = lock.name[0] if isinstance(lock.name, tuple) else lock.name
    return f"resource {name!r}"


class _Waiter:
    """The policy's state for one ticket."""

    __slots__ = (
        "admitted",
        "demands",
        "exclusive",
        "lives",
        "on_life",
        "passes",
        "preds_left",
        "priority",
        "rank",
        "reserved",
        "reserving",
        "seq",
        "successors",
        "ticket",
        "waited",
        "waiting_since",
        "woken_from",
    )

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self.seq = ticket.index
        self.priority: tuple[int, int] = (0, ticket.index)
        self.demands: list[tuple[Lock[_Waiter], Hashable]] = []
        self.lives: list[tuple[LifeLock[_Waiter], int]] = []
        self.exclusive = not ticket.concurrent
        self.preds_left = 0
        self.successors: list[_Waiter] = []
        self.admitted = False
        self.on_life = False  # parked on the lock of a slot
        self.reserving = False  # reserves everything it needs
        # The locks it reserves; made when it first reserves one, which most
        # tickets never do.
        self.reserved: set[Lock[_Waiter]] | None = None
        self.passes = 0
        self.woken_from: Lock[_Waiter] | None = None
        self.rank = 0  # position in priority order
        # When it was first overtaken or could not start, and then the
        # seconds from then to its start and what it waited for.
        self.waiting_since: float | None = None
        self.waited: tuple[float, str] | None = None


class AdmissionPolicy:
    """Decides which tickets may start, given those already in flight.

    The caller reports every start (implicitly, through :meth:`admit`) and
    every end (:meth:`finish`); the policy never waits, and reads a clock
    only to measure waits, when given one.

    :param tickets: every test of the run.
    :param max_in_flight: the most tickets in flight at once.
    :param limits: the capacity of named resources; a resource not named
        here has no limit.
    :param passes_before_reserving: how often a ticket may be passed over
        before it stops later tickets from overtaking it; by default
        ``max_in_flight`` (at least 8), about one turn of the whole flight.
    :param clock: where :meth:`waited` reads the time; without one, waits
        are not measured.
    """

    def __init__(
        self,
        tickets: Iterable[Ticket],
        max_in_flight: int,
        limits: Mapping[str, int] | None = None,
        passes_before_reserving: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        limits = dict(limits or {})
        for name, limit in limits.items():
            if limit < 1:
                raise ValueError(f"the limit of resource {name!r} must be at least 1, got {limit}")
        waiters = [_Waiter(ticket) for ticket in sorted(tickets, key=lambda t: t.index)]
        self._by_index = {waiter.seq: waiter for waiter in waiters}
        if len(self._by_index) != len(waiters):
            raise ValueError("ticket indexes must be unique")
        self._max_in_flight = max_in_flight
        self._passes_before_reserving = (
            passes_before_reserving
            if passes_before_reserving is not None
            else max(PASSES_BEFORE_RESERVING, max_in_flight)
        )
        self._in_flight: dict[Ticket, _Waiter] = {}
        self._not_admitted = len(waiters)
        self._solo_running = False
        self._stopped = False
        self._ready: list[tuple[tuple[int, int], int, _Waiter]] = []
        self._waiting_for_life: list[tuple[tuple[int, int], int, _Waiter]] = []
        self._limits = limits
        self._clock = clock
        self._resources: dict[Hashable, Lock[_Waiter]] = {}
        self._build(waiters, limits)

    # -- building ---------------------------------------------------------------

    def _build(self, waiters: list[_Waiter], limits: dict[str, int]) -> None:
        whole_run: Lock[_Waiter] = Lock(_WHOLE_RUN)
        groups: Lock[_Waiter] = Lock(_GROUPS)
        resources = self._resources
        lives: dict[Hashable, dict[int, int]] = {}

        def resource(name: Hashable, capacity: int | None) -> Lock[_Waiter]:
            lock = resources.get(name)
            if lock is None:
                lock = resources[name] = Lock(name, capacity)
            return lock

        for waiter in waiters:
            ticket = waiter.ticket
            own_key = ("exclusive", ticket.index)
            waiter.demands.append((whole_run, SHARED if ticket.concurrent else own_key))
            if ticket.group is not None:
                waiter.demands.append((groups, ("group", ticket.group)))
            for name, access in ticket.resources.items():
                key = own_key if access is Access.EXCLUSIVE else SHARED
                waiter.exclusive = waiter.exclusive or access is Access.EXCLUSIVE
                holder = ticket.held_through.get(name)
                if holder is None:
                    waiter.demands.append((resource(name, limits.get(name)), key))
                else:
                    # Among the holder's users, the ticket's own hold.
                    waiter.demands.append((resource((name, holder), None), key))
            for name, holder in ticket.held_through.items():
                waiter.demands.append((resource(name, limits.get(name)), ("held", holder)))
            for slot, life in ticket.slots.items():
                counts = lives.setdefault(slot, {})
                counts[life] = counts.get(life, 0) + 1
            for index in ticket.after:
                earlier = self._by_index.get(index)
                if earlier is None or index >= ticket.index:
                    raise ValueError(
                        f"ticket {ticket.index} comes after {index}, which is not an earlier ticket"
                    )
                earlier.successors.append(waiter)
                waiter.preds_left += 1
        self._keep_solo_places(waiters)
        # Tickets that wait for every earlier ticket to be admitted, and the
        # position of the earliest ticket not admitted yet.
        self._in_order = waiters
        self._first_unadmitted = 0
        self._gated: list[tuple[int, _Waiter]] = []
        for waiter in waiters:
            if waiter.ticket.after_all_earlier:
                waiter.preds_left += 1
                heapq.heappush(self._gated, (waiter.seq, waiter))
        life_locks = {slot: LifeLock[_Waiter](slot, counts) for slot, counts in lives.items()}
        for waiter in waiters:
            for slot, life in waiter.ticket.slots.items():
                lock = life_locks[slot]
                waiter.lives.append((lock, life))
                waiter.demands.append((lock, life))
                if not lock.is_open(life):
                    lock.wait_for_opening(life, waiter)
                    waiter.preds_left += 1
        self._prioritise(waiters, resources)
        self._by_priority = sorted(waiters, key=lambda waiter: waiter.priority)
        for rank, waiter in enumerate(self._by_priority):
            waiter.rank = rank
        self._overtaken_up_to = 0  # ranks below this are admitted or waiting
        for waiter in waiters:
            if not waiter.preds_left:
                self._make_ready(waiter)
        self._open_gates()

    @staticmethod
    def _keep_solo_places(waiters: list[_Waiter]) -> None:
        """A ticket that runs alone comes after every ticket before it, and
        before every ticket after it, in collection order."""
        since_solo: list[_Waiter] = []
        solo: _Waiter | None = None
        for waiter in waiters:
            if solo is not None:
                solo.successors.append(waiter)
                waiter.preds_left += 1
            if waiter.ticket.concurrent:
                since_solo.append(waiter)
                continue
            for earlier in since_solo:
                earlier.successors.append(waiter)
            waiter.preds_left += len(since_solo)
            since_solo = []
            solo = waiter

    @staticmethod
    def _prioritise(waiters: list[_Waiter], resources: dict[Hashable, Lock[_Waiter]]) -> None:
        """Put the tickets of long chains on one resource first."""
        chains: dict[Lock[_Waiter], float] = {}
        for waiter in waiters:
            for lock, key in waiter.demands:
                if lock.name in resources and resources[lock.name] is lock:
                    if key is SHARED:
                        share = 1 / lock.capacity if lock.capacity is not None else 0.0
                    elif isinstance(key, tuple) and key[0] == "held":
                        share = 0.0
                    else:
                        share = 1.0
                    chains[lock] = chains.get(lock, 0.0) + share
        for waiter in waiters:
            chain = max((chains.get(lock, 0.0) for lock, _ in waiter.demands), default=0.0)
            # A ticket that runs alone keeps its place: going first, it would
            # hold everything else back.
            if chain >= _CONTENDED_CHAIN and waiter.ticket.concurrent:
                waiter.priority = (-int(chain), waiter.seq)

    # -- what the caller sees -------------------------------------------------------

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
        return tuple(w.ticket for w in self._by_index.values() if not w.admitted)

    @property
    def done(self) -> bool:
        """True when nothing is in flight and nothing more will be admitted."""
        return not self._in_flight and (self._stopped or not self._not_admitted)

    def stop(self) -> None:
        """Admit nothing more; tickets in flight may still finish."""
        self._stopped = True

    def admit(self) -> list[Ticket]:
        """Return the tickets that may start now, best placed first, and
        count them as in flight.

        A ticket that must run alone is only ever returned alone.
        """
        if self._stopped or self._solo_running:
            return []
        admitted: list[Ticket] = []
        ready = self._ready
        while ready and len(self._in_flight) < self._max_in_flight:
            if self._held_back_by_a_life(ready[0][0]):
                break
            waiter = heapq.heappop(ready)[2]
            blocker = self._blocker(waiter)
            if blocker is not None:
                self._park(waiter, blocker)
                continue
            self._start(waiter)
            admitted.append(waiter.ticket)
            if not waiter.ticket.concurrent:
                self._solo_running = True
                break
        return admitted

    def finish(self, ticket: Ticket) -> None:
        """Record that an admitted ticket has ended (in any way)."""
        waiter = self._in_flight.pop(ticket, None)
        if waiter is None:
            raise ValueError(f"ticket {ticket.index} is not in flight")
        if not ticket.concurrent:
            self._solo_running = False
        for lock, _ in waiter.demands:
            lock.release()
            self._wake(lock)

    def release_own_resources(self, ticket: Ticket) -> list[str]:
        """Give back, before an admitted ``ticket`` ends, the resources it
        holds for itself (not those it holds through a shared fixture), and
        return their names. :meth:`finish` then leaves them alone."""
        waiter = self._in_flight.get(ticket)
        if waiter is None:
            raise ValueError(f"ticket {ticket.index} is not in flight")
        own = {
            self._resources[name]: name
            for name in ticket.resources
            if ticket.held_through.get(name) is None
        }
        released: list[str] = []
        kept: list[tuple[Lock[_Waiter], Hashable]] = []
        for lock, key in waiter.demands:
            name = own.get(lock)
            if name is None:
                kept.append((lock, key))
                continue
            lock.release()
            self._wake(lock)
            released.append(name)
        waiter.demands = kept
        return released

    def waited(self, ticket: Ticket) -> tuple[float, str] | None:
        """How long an admitted ticket waited, and for what (in words): from
        the first time it could not start for a lock, or a ticket placed
        after it started first, until it started. None if it never waited
        (or the policy has no clock)."""
        waiter = self._by_index.get(ticket.index)
        return waiter.waited if waiter is not None and waiter.ticket is ticket else None

    def try_hold(self, name: str, access: Access, holder: Hashable) -> bool:
        """Take resource ``name`` for ``holder``, a test already running, if
        it fits now; return whether it did.

        A hold taken while running is not owed to waiting tickets that
        reserve the resource: the test holding it is already in flight, and
        finishing it frees everything it holds.
        """
        lock = self._resource_lock(name)
        key = SHARED if access is Access.SHARED else ("at run time", holder)
        if not lock.fits(key):
            return False
        lock.take(key)
        return True

    def release_hold(self, name: str) -> None:
        """Give back a hold taken with :meth:`try_hold`."""
        lock = self._resource_lock(name)
        lock.release()
        self._wake(lock)

    def _resource_lock(self, name: str) -> Lock[_Waiter]:
        lock = self._resources.get(name)
        if lock is None:
            lock = self._resources[name] = Lock(name, self._limits.get(name))
        return lock

    # -- the mechanics ------------------------------------------------------------------

    def _make_ready(self, waiter: _Waiter) -> None:
        heapq.heappush(self._ready, (waiter.priority, waiter.seq, waiter))

    def _blocker(self, waiter: _Waiter) -> Lock[_Waiter] | None:
        """The first lock ``waiter`` cannot take now, if any."""
        for lock, key in waiter.demands:
            if not lock.fits(key):
                return lock
            owed = lock.reserved.best_against(key, same_key_too=lock.capacity is not None)
            if owed is not None and owed.priority < waiter.priority:
                return lock
        return None

    def _held_back_by_a_life(self, priority: tuple[int, int]) -> bool:
        """Whether a better-placed ticket waits for a life of a shared value:
        then nobody after it starts (see the module docstring)."""
        waiting = self._waiting_for_life
        while waiting and not waiting[0][2].on_life:
            heapq.heappop(waiting)
        return bool(waiting) and waiting[0][0] < priority

    def _park(self, waiter: _Waiter, lock: Lock[_Waiter]) -> None:
        woken_from, waiter.woken_from = waiter.woken_from, None
        if isinstance(lock, LifeLock):
            waiter.on_life = True
            heapq.heappush(self._waiting_for_life, (waiter.priority, waiter.seq, waiter))
        if woken_from is not None:
            waiter.passes += 1
        lock.parked.push(self._key(waiter, lock), waiter)
        if self._clock is not None:
            if waiter.waiting_since is None:
                waiter.waiting_since = self._clock()
            if waiter.waited is None or waiter.waited[1] == _EARLIER_TESTS:
                waiter.waited = (0.0, _describe(lock, waiter.ticket.concurrent))
        if waiter.passes >= self._passes_before_reserving:
            self._reserve(waiter)
        elif waiter.exclusive:
            self._reserve_one(waiter, lock)
        if woken_from is not None and woken_from is not lock:
            # It was woken to take that lock and did not: maybe another can.
            self._wake(woken_from)

    def _reserve(self, waiter: _Waiter) -> None:
        """From now on, no ticket placed after ``waiter`` takes what it needs
        in a way that would keep it waiting."""
        if waiter.reserving:
            return
        waiter.reserving = True
        for lock, _ in waiter.demands:
            self._reserve_one(waiter, lock)

    def _reserve_one(self, waiter: _Waiter, lock: Lock[_Waiter]) -> None:
        """No ticket placed after ``waiter`` takes ``lock`` in a way that
        would keep ``waiter`` waiting. (Lives need no reservation: they
        open in order.)"""
        if isinstance(lock, LifeLock):
            return
        if waiter.reserved is None:
            waiter.reserved = set()
        elif lock in waiter.reserved:
            return
        waiter.reserved.add(lock)
        lock.reserved.push(self._key(waiter, lock), waiter)

    def _passed_over(self, lock: Lock[_Waiter], key: Hashable, taker: _Waiter) -> None:
        """``taker`` takes ``lock`` with ``key``: the best-placed ticket parked
        on it with another key, if placed before ``taker``, is passed over."""
        passed = lock.parked.best_against(key, same_key_too=False)
        if passed is not None and passed.priority < taker.priority:
            passed.passes += 1
            if passed.passes >= self._passes_before_reserving:
                self._reserve(passed)

    @staticmethod
    def _key(waiter: _Waiter, lock: Lock[_Waiter]) -> Hashable:
        for held, key in waiter.demands:
            if held is lock:
                return key
        raise AssertionError("a ticket parks only on a lock it needs")

    def _start(self, waiter: _Waiter) -> None:
        waiter.admitted = True
        waiter.woken_from = None
        if self._clock is not None:
            self._time_waits(waiter)
        self._not_admitted -= 1
        self._in_flight[waiter.ticket] = waiter
        for lock, key in waiter.demands:
            lock.take(key)
            if lock.parked and not isinstance(lock, LifeLock):
                self._passed_over(lock, key, waiter)
        for lock, _ in waiter.demands:
            # Others with the same key (a group, shared holders) may join.
            self._wake(lock)
        for life_lock, life in waiter.lives:
            for successor in life_lock.admitted(life):
                self._predecessor_admitted(successor)
        for successor in waiter.successors:
            self._predecessor_admitted(successor)
        if self._gated:
            self._open_gates()

    def _open_gates(self) -> None:
        """Release the gated tickets all of whose earlier tickets are admitted."""
        in_order = self._in_order
        while self._first_unadmitted < len(in_order) and in_order[self._first_unadmitted].admitted:
            self._first_unadmitted += 1
        first = (
            in_order[self._first_unadmitted].seq if self._first_unadmitted < len(in_order) else None
        )
        while self._gated and (first is None or self._gated[0][0] <= first):
            self._predecessor_admitted(heapq.heappop(self._gated)[1])

    def _predecessor_admitted(self, waiter: _Waiter) -> None:
        waiter.preds_left -= 1
        if not waiter.preds_left:
            self._make_ready(waiter)

    def _time_waits(self, starting: _Waiter) -> None:
        """``starting`` starts: the tickets placed before it that have not
        started are waiting from now on, if they were not already; and
        ``starting`` waited from its own start of waiting until now."""
        assert self._clock is not None
        now = self._clock()
        for rank in range(self._overtaken_up_to, starting.rank):
            overtaken = self._by_priority[rank]
            if not overtaken.admitted and overtaken.waiting_since is None:
                overtaken.waiting_since = now
                overtaken.waited = (0.0, _EARLIER_TESTS)
        self._overtaken_up_to = max(self._overtaken_up_to, starting.rank + 1)
        if starting.waiting_since is not None and starting.waited is not None:
            starting.waited = (now - starting.waiting_since, starting.waited[1])

    def _wake(self, lock: Lock[_Waiter]) -> None:
        if not lock.parked:
            return
        key, how_many = lock.wakeable()
        if key is None or how_many <= 0:
            return
        # Tickets placed after a reservation against them would only park again.
        owed = lock.reserved.best_against(key, same_key_too=lock.capacity is not None)
        before = owed.priority if owed is not None else None
        for waiter in lock.parked.pop(key, how_many, before=before):
            waiter.woken_from = lock
            waiter.on_life = False
            self._make_ready(waiter)
