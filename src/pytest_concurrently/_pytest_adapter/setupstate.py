"""``SetupState``: which collectors are set up, and when they are torn down.

pytest keeps one stack of nodes from the session down to the running item,
and in each test's teardown pops the nodes the next test does not share
(``teardown_exact(nextitem)``). A node therefore lives for a *segment*: a run
of consecutive items, in collection order, under that node; pytest sets it up
in the segment's first test and tears it down in the teardown of the
segment's last test, where the errors of its finalizers are reported.

:class:`ConcurrentSetupState` keeps exactly those segments with several
items in flight: the stack becomes a forest, a node is set up by the first
test of its segment that needs it, and the segment's last test (in
collection order), in its own teardown, waits until every other test of the
segment has finished its teardown and then tears the node down. The
admission policy starts that last test only after every other test of the
segment has started, so it never waits for a test that has not started.

pytest versions: from 8.3 the setup error in the stack is
``(exception, traceback)``, in 8.2 the exception alone; this class writes and
reads the 8.3 form itself, since it overrides both ``setup`` and
``teardown_exact``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from _pytest.nodes import Node
from _pytest.outcomes import TEST_OUTCOME
from _pytest.runner import SetupState

from .. import bridge
from ..current import running_test
from ..process_state import unwatched

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "ConcurrentSetupState",
    "ItemSegments",
    "NodeSegment",
    "install_setup_state",
    "node_segments",
    "raise_collected",
    "restart_setup_state",
    "run_finalizers",
]


@dataclass(eq=False)
class NodeSegment:
    """One life of a collector: the consecutive items that share it.

    :param node: the collector.
    :param index: how many lives of ``node`` came before this one.
    :param last: the segment's last item, which tears the node down.
    """

    node: Node
    index: int
    last: pytest.Item | None = None
    others_left: int = 0
    others_done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ItemSegments:
    """The node segments one item belongs to, and those it ends."""

    within: list[NodeSegment] = field(default_factory=list)
    closes: list[NodeSegment] = field(default_factory=list)


def node_segments(items: Sequence[pytest.Item]) -> dict[pytest.Item, ItemSegments]:
    """For each item, the node segments it belongs to and those it ends
    (innermost first), following pytest's ``teardown_exact(nextitem)``."""
    result: dict[pytest.Item, ItemSegments] = {}
    open_segments: dict[Node, NodeSegment] = {}
    lives: dict[Node, int] = {}
    chains = [item.listchain()[:-1] for item in items]
    for position, item in enumerate(items):
        chain = chains[position]
        next_chain = set(chains[position + 1]) if position + 1 < len(items) else set()
        segments = result.setdefault(item, ItemSegments())
        for node in chain:
            segment = open_segments.get(node)
            if segment is None:
                segment = NodeSegment(node, lives.get(node, 0))
                lives[node] = segment.index + 1
                open_segments[node] = segment
            segments.within.append(segment)
        for node in reversed(chain):
            if node not in next_chain:
                segment = open_segments.pop(node)
                segment.last = item
                segments.closes.append(segment)
    for item, segments in result.items():
        for segment in segments.within:
            if segment.last is not item:
                segment.others_left += 1
    return result


class ConcurrentSetupState(SetupState):
    """A ``SetupState`` that holds several items at once.

    ``stack`` keeps pytest's shape (node -> finalizers, setup error) but may
    hold several branches of the collection tree. Whatever is still set up
    when the session ends (after ``-x``, say) is torn down by
    ``teardown_exact(None)`` outside any test, as in pytest.
    """

    def __init__(
        self,
        items: Sequence[pytest.Item],
        on_item_released: Callable[[pytest.Item], object] = lambda item: None,
        on_item_setup: Callable[[pytest.Item], object] = lambda item: None,
        segments: dict[pytest.Item, ItemSegments] | None = None,
    ) -> None:
        super().__init__()
        self._segments = node_segments(items) if segments is None else segments
        self._finished: set[pytest.Item] = set()
        self._on_item_released = on_item_released
        self._on_item_setup = on_item_setup
        #: Stop and restart a test's time limit while its teardown waits
        #: for the other tests of a scope it ends; set by the runner.
        self.pause_timer: Callable[[pytest.Item], object] = lambda item: None
        self.resume_timer: Callable[[pytest.Item], object] = lambda item: None
        #: Called when a test's own teardown is over and it starts to wait
        #: for the other tests of a scope it ends; set by the runner.
        self.waiting_for_scope: Callable[[pytest.Item], object] = lambda item: None

    def setup(self, item: pytest.Item) -> None:
        """Set up the collectors ``item`` needs that are not set up yet, then
        the item itself."""
        self._on_item_setup(item)
        for node in item.listchain():
            entry = self.stack.get(node)
            if entry is not None:
                if entry[1] is not None:
                    raise entry[1][0].with_traceback(entry[1][1])
                continue
            self.stack[node] = ([node.teardown], None)
            try:
                if node is item:
                    node.setup()
                else:
                    with unwatched():
                        node.setup()
            except TEST_OUTCOME as exc:
                self.stack[node] = (self.stack[node][0], (exc, exc.__traceback__))
                raise

    def teardown_exact(self, nextitem: pytest.Item | None) -> None:
        """Tear down the running item, then the collectors whose segment it
        ends, each after the segment's other items have finished; outside
        any item, tear down everything still set up."""
        del nextitem  # the segments were computed from the collection order
        current = running_test.get()
        if current is None:
            self._finalize_all(list(reversed(self.stack)))
            return
        item = current.item
        exceptions: list[BaseException] = []
        try:
            exceptions.extend(self._finalize(item))
            found = self._segments.get(item)
            for segment in found.closes if found is not None else ():
                if segment.others_left and bridge.in_bridged_code():
                    self.waiting_for_scope(item)
                    # Waiting for other tests is not this test's time.
                    self.pause_timer(item)
                    try:
                        bridge.wait_for(segment.others_done.wait())
                    finally:
                        self.resume_timer(item)
                with unwatched():
                    exceptions.extend(self._finalize(segment.node))
        finally:
            self.item_finished(item)
            # pytest sets PYTEST_CURRENT_TEST before this call and deletes it
            # after; a test that finished meanwhile has deleted it already.
            os.environ.setdefault("PYTEST_CURRENT_TEST", f"{item.nodeid} (teardown)")
        raise_collected(exceptions, "errors during test teardown")

    def waits_for(self, closer: pytest.Item, item: pytest.Item) -> bool:
        """Whether ``closer``'s teardown waits for ``item``: it ends a scope
        segment ``item`` belongs to."""
        found = self._segments.get(item)
        return found is not None and any(
            segment.last is closer and closer is not item for segment in found.within
        )

    def forget(self, item: pytest.Item) -> None:
        """Drop ``item``'s own entry without running its finalizers: its
        teardown was abandoned midway and must not be resumed or repeated."""
        self.stack.pop(item, None)

    def item_finished(self, item: pytest.Item) -> None:
        """Count ``item`` as done with every segment it belongs to. Called at
        the end of its teardown, and again (harmlessly) when its protocol
        ends, in case a plugin's protocol skipped the teardown."""
        if item in self._finished:
            return
        self._finished.add(item)
        self._on_item_released(item)
        # Nothing asks about a finished item's segments again; thousands of
        # them kept to the end of the session would only slow the garbage
        # collector.
        found = self._segments.pop(item, None)
        for segment in found.within if found is not None else ():
            if segment.last is not item:
                segment.others_left -= 1
                if segment.others_left == 0:
                    segment.others_done.set()

    def _finalize_all(self, nodes: list[Node]) -> None:
        exceptions: list[BaseException] = []
        for node in nodes:
            exceptions.extend(self._finalize(node))
        raise_collected(exceptions, "errors during test teardown")

    def _finalize(self, node: Node) -> list[BaseException]:
        entry = self.stack.pop(node, None)
        if entry is None:
            return []
        exceptions = run_finalizers(entry[0], catching=TEST_OUTCOME)
        if len(exceptions) > 1:
            return [BaseExceptionGroup(f"errors while tearing down {node!r}", exceptions[::-1])]
        return exceptions


def run_finalizers(
    finalizers: list[Callable[[], object]],
    catching: type[BaseException] | tuple[type[BaseException], ...],
) -> list[BaseException]:
    """Pop and call ``finalizers``, last registered first, as pytest does;
    return the exceptions of the kinds ``catching`` they raised, in order."""
    exceptions: list[BaseException] = []
    while finalizers:
        finalizer = finalizers.pop()
        try:
            finalizer()
        except catching as exc:
            exceptions.append(exc)
    return exceptions


def raise_collected(exceptions: list[BaseException], message: str) -> None:
    """Raise the one exception, or a group of several (last first, as pytest
    groups teardown errors)."""
    if len(exceptions) == 1:
        raise exceptions[0]
    if exceptions:
        raise BaseExceptionGroup(message, exceptions[::-1])


def restart_setup_state(session: pytest.Session) -> None:
    """Tear down whatever the session's ``SetupState`` still holds, outside
    any test, and give the session a fresh pytest ``SetupState``."""
    session._setupstate.teardown_exact(None)
    session._setupstate = SetupState()


def install_setup_state(
    session: pytest.Session,
    items: Sequence[pytest.Item],
    on_item_released: Callable[[pytest.Item], object] = lambda item: None,
    on_item_setup: Callable[[pytest.Item], object] = lambda item: None,
    segments: dict[pytest.Item, ItemSegments] | None = None,
) -> ConcurrentSetupState:
    """Replace the session's ``SetupState`` with a :class:`ConcurrentSetupState`.

    :param on_item_released: called once an item's teardown is over (the
        collectors it ends included).
    :param on_item_setup: called at the start of an item's setup, before
        anything is set up for it.
    :param segments: the items' node segments (:func:`node_segments`),
        when already computed; the state takes them over.
    """
    state = ConcurrentSetupState(items, on_item_released, on_item_setup, segments)
    session._setupstate = state
    return state
