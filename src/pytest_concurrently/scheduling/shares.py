"""How a run's tests are split among processes that each run theirs
concurrently (pytest-xdist's workers).

A worker runs its tests concurrently, so it wants its whole share at once,
not a test or two at a time; and the guarantees one process gives (resource
locks, groups) hold across processes only when every test that they relate
runs in the same one. So tests are first joined into *units* that must not
be split: tests that share any key (a resource, a group, pytest-xdist's
scope) are one unit. Units then fill the shares in collection order, each
share about as many tests as the others, so that a share keeps neighbours
together and a module's fixtures are set up in few workers.

Tests that must run with nothing else in flight anywhere (``isolated``)
are in no share: they run last, one at a time, while every worker is idle.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Shares:
    """The split of a run.

    :param shares: per worker, the indices of the tests it runs together,
        in collection order.
    :param alone: the indices of the tests that run afterwards, one at a
        time, with no other test in flight anywhere.
    """

    shares: list[list[int]]
    alone: list[int]


def join_units(count: int, keys: Sequence[Iterable[Hashable]]) -> list[list[int]]:
    """Join tests ``0 .. count - 1`` into units: two tests share a unit when
    they share a key, directly or through other tests. Units come in the
    order of their first test, and list their tests in order."""
    parent = list(range(count))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first_with: dict[Hashable, int] = {}
    for index in range(count):
        for key in keys[index]:
            other = first_with.setdefault(key, index)
            if other != index:
                a, b = root(other), root(index)
                if a != b:
                    # The smaller index stays the root: the unit's first test.
                    parent[max(a, b)] = min(a, b)
    units: dict[int, list[int]] = {}
    for index in range(count):
        units.setdefault(root(index), []).append(index)
    return list(units.values())


def split(
    count: int,
    workers: int,
    keys: Sequence[Iterable[Hashable]],
    alone: Collection[int] = (),
) -> Shares:
    """Split tests ``0 .. count - 1`` among ``workers`` workers.

    :param keys: per test, what ties it to other tests (see
        :func:`join_units`).
    :param alone: tests that run last, one at a time, with no other test in
        flight (in no share, whatever their keys).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    alone_set = set(alone)
    kept = [index for index in range(count) if index not in alone_set]
    units = join_units(len(kept), [keys[index] for index in kept])
    shares: list[list[int]] = [[] for _ in range(workers)]
    total = len(kept)
    filled = 0
    worker = 0
    for unit in units:
        shares[worker].extend(kept[position] for position in unit)
        filled += len(unit)
        # Move on once this worker has its part of the whole; a unit larger
        # than a part leaves the later workers less.
        while worker < workers - 1 and filled * workers >= total * (worker + 1):
            worker += 1
    for share in shares:
        share.sort()
    return Shares(shares=shares, alone=sorted(alone_set & set(range(count))))
