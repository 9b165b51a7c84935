"""Locks with keys: the one mechanism behind resources, groups, isolation
and the lives of shared values.

A :class:`Lock` is held by any number of tickets that present the same
*key*, up to its capacity, and by nobody with another key meanwhile:

- an exclusive holder presents a key of its own, so it holds the lock alone;
- shared holders all present :data:`SHARED`;
- the tests of a group present the group's name on the lock of all groups;
- the users of one life of a shared value present the life's number.

Each lock keeps the tickets parked on it (those that found it taken), by
key, so that a release wakes only tickets that may now take it, and the
tickets that *reserve* it (see :mod:`.policy`), by key, so that a ticket
can ask in one step whether a better-placed ticket is owed the lock first.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

__all__ = ["SHARED", "KeyedQueue", "LifeLock", "Lock", "Queued"]


class _Shared:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SHARED"


#: The key every shared holder of a lock presents.
SHARED: Hashable = _Shared()


class Queued(Protocol):
    """What a :class:`KeyedQueue` holds: something ordered by ``priority``,
    with a unique ``seq`` to break ties, and gone once ``admitted``."""

    @property
    def priority(self) -> tuple[int, int]: ...

    @property
    def seq(self) -> int: ...

    @property
    def admitted(self) -> bool: ...


Q = TypeVar("Q", bound=Queued)


class KeyedQueue(Generic[Q]):
    """Entries grouped by key, each group ordered by priority, with the
    best entry of every group and of the whole queue found in O(log n).

    Entries that have been admitted are dropped lazily, when they reach
    the front of their group.
    """

    __slots__ = ("_by_key", "_fronts")

    def __init__(self) -> None:
        self._by_key: dict[Hashable, list[tuple[tuple[int, int], int, Q]]] = {}
        # (priority, seq, key) of each group's front entry; stale entries
        # (whose seq is no longer the front of their group) are skipped.
        self._fronts: list[tuple[tuple[int, int], int, Hashable]] = []

    def __bool__(self) -> bool:
        self._clean_fronts()
        return bool(self._fronts)

    def push(self, key: Hashable, entry: Q) -> None:
        """Add ``entry`` to the group of ``key``."""
        group = self._by_key.get(key)
        if group is None:
            group = self._by_key[key] = []
        heapq.heappush(group, (entry.priority, entry.seq, entry))
        if group[0][2] is entry:
            heapq.heappush(self._fronts, (entry.priority, entry.seq, key))

    def best_key(self) -> Hashable | None:
        """The key of the group whose front entry comes first, if any."""
        self._clean_fronts()
        return self._fronts[0][2] if self._fronts else None

    def pop(self, key: Hashable, at_most: float, before: tuple[int, int] | None = None) -> list[Q]:
        """Take up to ``at_most`` entries of ``key``'s group, best first, and
        only those placed no later than ``before`` if given."""
        taken: list[Q] = []
        while len(taken) < at_most:
            front = self._front_of(key)
            if front is None or (before is not None and before < front.priority):
                break
            heapq.heappop(self._by_key[key])
            taken.append(front)
        self._refresh_front(key)
        return taken

    def best_against(self, key: Hashable, *, same_key_too: bool) -> Q | None:
        """The best-placed entry among those of other keys than ``key`` (and
        of ``key`` too, when ``same_key_too``), or None."""
        self._clean_fronts()
        if not self._fronts:
            return None
        front = self._fronts[0]
        if front[2] == key and not same_key_too:
            heapq.heappop(self._fronts)
            try:
                self._clean_fronts()
                if not self._fronts:
                    return None
                second = self._fronts[0]
            finally:
                heapq.heappush(self._fronts, front)
            return self._by_key[second[2]][0][2]
        return self._by_key[front[2]][0][2]

    def _front_of(self, key: Hashable) -> Q | None:
        group = self._by_key.get(key)
        while group:
            entry = group[0][2]
            if not entry.admitted:
                return entry
            heapq.heappop(group)
        if group is not None:
            del self._by_key[key]
        return None

    def _refresh_front(self, key: Hashable) -> None:
        front = self._front_of(key)
        if front is not None:
            heapq.heappush(self._fronts, (front.priority, front.seq, key))

    def _clean_fronts(self) -> None:
        fronts = self._fronts
        while fronts:
            _, seq, key = fronts[0]
            group = self._by_key.get(key)
            if group and group[0][1] == seq:
                if not group[0][2].admitted:
                    return
                # The group's front was admitted: find its new front.
                heapq.heappop(fronts)
                self._front_of(key)
                self._refresh_front(key)
                continue
            heapq.heappop(fronts)


class Lock(Generic[Q]):
    """A lock held by tickets that present one key, up to ``capacity``.

    :param name: what the lock stands for, for messages.
    :param capacity: the most holders at once; None for no limit.
    """

    __slots__ = ("capacity", "count", "key", "name", "parked", "reserved")

    def __init__(self, name: Hashable, capacity: int | None = None) -> None:
        self.name = name
        self.capacity = capacity
        self.key: Hashable | None = None
        self.count = 0
        self.parked: KeyedQueue[Q] = KeyedQueue()
        self.reserved: KeyedQueue[Q] = KeyedQueue()

    @property
    def room(self) -> float:
        """How many more holders of the current key fit."""
        if self.capacity is None:
            return float("inf")
        return self.capacity - self.count

    def fits(self, key: Hashable) -> bool:
        """Whether a holder with ``key`` may take the lock now."""
        if self.count == 0:
            return True
        return key == self.key and self.room > 0

    def take(self, key: Hashable) -> None:
        """Count one more holder with ``key`` (which must fit)."""
        self.key = key
        self.count += 1

    def release(self) -> None:
        """Count one holder less."""
        self.count -= 1
        if not self.count:
            self.key = None

    def wakeable(self) -> tuple[Hashable | None, float]:
        """The key whose parked tickets may now take the lock, and how many
        of them; (None, 0) when none may."""
        if self.count == 0:
            key = self.parked.best_key()
            return key, (self.capacity if self.capacity is not None else float("inf"))
        return self.key, self.room


class LifeLock(Lock[Q]):
    """The lock of a slot: keys are lives, which open in increasing order.

    A life *opens* when every ticket of every earlier life has been
    admitted; its tickets may not start before (the policy counts that like
    an ``after`` link), so each life is made once, by its first ticket.
    """

    __slots__ = ("_lives", "_open", "_unadmitted", "_waiting")

    def __init__(self, name: Hashable, unadmitted: dict[int, int]) -> None:
        super().__init__(name)
        self._unadmitted = unadmitted
        self._lives = sorted(unadmitted)
        self._open = 0  # position in _lives of the earliest life not fully admitted
        self._waiting: dict[int, list[Q]] = {}

    def is_open(self, life: int) -> bool:
        """Whether every ticket of every life before ``life`` is admitted."""
        return self._open >= len(self._lives) or life <= self._lives[self._open]

    def wait_for_opening(self, life: int, entry: Q) -> None:
        """Hold ``entry`` until ``life`` opens; :meth:`admitted` returns it then."""
        self._waiting.setdefault(life, []).append(entry)

    def admitted(self, life: int) -> list[Q]:
        """Count one ticket of ``life`` as admitted; return the entries
        waiting for lives that open now."""
        self._unadmitted[life] -= 1
        opened: list[Q] = []
        while self._open < len(self._lives) and not self._unadmitted[self._lives[self._open]]:
            self._open += 1
            if self._open < len(self._lives):
                opened += self._waiting.pop(self._lives[self._open], ())
        return opened
