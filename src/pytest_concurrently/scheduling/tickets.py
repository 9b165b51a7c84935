"""What one test asks of the scheduler."""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

__all__ = ["Access", "Ticket"]


class Access(enum.Enum):
    """How a test holds a named resource."""

    EXCLUSIVE = "exclusive"
    """No other holder at the same time."""
    SHARED = "shared"
    """Other shared holders may hold it too; exclusive ones may not."""


@dataclass(frozen=True, eq=False, slots=True)
class Ticket:
    """One test's request to run.

    :param index: position in collection order; unique within a policy.
    :param concurrent: whether the test may overlap with other tests; a
        ticket that is not runs with nothing else in flight.
    :param slots: things that hold one value at a time, each with the
        value (a *life*, numbered from 0 in collection order) the test
        needs. Every ticket needing one life of a slot is admitted before
        any ticket needing a later life, and tickets needing different
        lives never overlap: a module fixture parametrized over two
        databases is used by every ``db[postgres]`` test before the first
        ``db[sqlite]`` one starts.
    :param resources: named resources the test holds, and how.
    :param held_through: resources the test holds through a shared holder
        (a wider-scoped fixture instance that declares them): resource
        name -> the holder's identity. Tickets with the same holder share
        the resource with each other and with nobody else. A resource may
        be in both maps: the test then also holds it, as ``resources``
        says, among the holder's other users.
    :param group: tickets of one group overlap with each other and with
        tickets of no group, never with tickets of another group.
    :param after: indexes of tickets that must be admitted before this one
        (each smaller than ``index``).
    :param after_all_earlier: every ticket with a smaller index must be
        admitted before this one (a test that replaces a shared value, which
        an earlier test might still ask for in a way no plan sees).

    Tickets compare by identity: two tickets are the same only if they are
    the same object.
    """

    index: int
    concurrent: bool = True
    slots: Mapping[Hashable, int] = field(default_factory=dict)
    resources: Mapping[str, Access] = field(default_factory=dict)
    held_through: Mapping[str, Hashable] = field(default_factory=dict)
    group: str | None = None
    after: tuple[int, ...] = ()
    after_all_earlier: bool = False
