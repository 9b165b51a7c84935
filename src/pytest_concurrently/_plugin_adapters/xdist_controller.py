"""On pytest-xdist's controller: hand each worker its whole share of a
concurrent run at once.

pytest-xdist's own schedulers send a worker a test or two at a time and
send more as it reports tests done, which suits a worker that runs one test
at a time. A worker of a concurrent run wants every test it will run up
front: it runs them concurrently, and it tears a shared fixture down after
its last user, which it can only know from the whole share.

:class:`ShareScheduling` wraps the scheduler pytest-xdist (or a plugin)
made. It learns from every worker, before that worker's collection arrives,
whether the run is concurrent and what ties tests together (see
:func:`listen_to_worker`); when it is not concurrent it leaves everything to
the wrapped scheduler. Otherwise it splits the tests with
:func:`..scheduling.shares.split`, keeping pytest-xdist's units of ``--dist
loadscope``, ``loadfile`` and ``loadgroup`` whole, and sends each worker its
share as one ``runtests`` command.

Relies on pytest-xdist's controller internals, read in 3.5 and tested with 3.8:
``WorkerController.process_from_remote`` (replaced per node in
``pytest_configure_node``, before the node's channel gets it as its
callback), ``send_runtest_some``, ``shutting_down`` and ``gateway.id``, and
the scheduler protocol of ``xdist.scheduler.protocol``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from ..scheduling import shares as share_planning

#: The event a worker sends, just before its collection, with
#: :class:`WorkerInfo`'s fields.
SHARE_INFO_EVENT = "concurrently_share_info"

#: The ``workerinput`` key that tells a worker its tests come as shares.
SHARES_INPUT = "concurrently_shares"

#: The ``--dist`` modes whose scheduling is replaced for a concurrent run;
#: ``each`` already sends every worker everything at once.
SHARED_DIST_MODES = frozenset({"load", "loadscope", "loadfile", "loadgroup", "worksteal"})


def listen_to_worker(node: Any, on_info: Callable[[Any, dict[str, Any]], None]) -> None:
    """Call ``on_info(node, info)`` when ``node``'s worker sends its share
    information; pass every other event on to pytest-xdist.

    Must be called from ``pytest_configure_node``: the node hands its
    ``process_from_remote`` to its channel right after.
    """
    forward = node.process_from_remote

    def process_from_remote(eventcall: Any) -> None:
        if isinstance(eventcall, tuple) and eventcall[0] == SHARE_INFO_EVENT:
            on_info(node, eventcall[1])
            return
        forward(eventcall)

    node.process_from_remote = process_from_remote


def dist_keys(dist: str, nodeid: str) -> tuple[Hashable, ...]:
    """What keeps a test with others under pytest-xdist's ``--dist`` mode."""
    if dist == "loadscope" and "::" in nodeid:
        return (("scope", nodeid.rsplit("::", 1)[0]),)
    if dist == "loadfile":
        return (("file", nodeid.split("::", 1)[0]),)
    if dist == "loadgroup" and "@" in nodeid:
        return (("xdist_group", nodeid.rsplit("@", 1)[1]),)
    return ()


class ShareScheduling:
    """A pytest-xdist scheduler that sends each worker its whole share of a
    concurrent run, and leaves a run that is not concurrent to ``inner``.

    :param inner: the scheduler pytest-xdist (or a plugin) made.
    :param dist: the ``--dist`` mode.
    """

    def __init__(self, inner: Any, dist: str) -> None:
        self._inner = inner
        self._dist = dist
        self._info: dict[Any, dict[str, Any]] = {}
        self._collections: dict[Any, Sequence[str]] = {}
        # None until the first schedule: then whether the run is ours.
        self._ours: bool | None = None
        self._nodes: list[Any] = []
        # Per worker, the tests sent and not yet done, in the order sent (a
        # dict, so that a test is taken out in constant time).
        self._pending: dict[Any, dict[int, None]] = {}
        self._started: set[int] = set()
        # Tests of a crashed worker, for the next worker free to take them.
        self._orphans: list[int] = []
        # Tests in flight in a worker that crashed: each runs alone next.
        self._suspects: list[int] = []
        self._alone: list[int] = []
        self._alone_running: int | None = None
        self._index_of: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        # Other plugins read the scheduler's attributes (pytest-rerunfailures
        # reads ``config``): they are the wrapped scheduler's.
        return getattr(self._inner, name)

    # What workers say -------------------------------------------------

    def worker_info(self, node: Any, info: dict[str, Any]) -> None:
        """Note what ``node``'s worker sent (see :func:`listen_to_worker`)."""
        self._info[node] = info

    def test_started(self, nodeid: str) -> None:
        """Note that a worker began ``nodeid``: if the worker dies, it is
        the test named as the one that crashed it."""
        index = self._index_of.get(nodeid)
        if index is not None:
            self._started.add(index)

    # pytest-xdist's scheduler protocol --------------------------------

    @property
    def nodes(self) -> list[Any]:
        """The workers scheduled to."""
        return list(self._nodes) if self._ours else list(self._inner.nodes)

    @property
    def collection_is_completed(self) -> bool:
        """Whether every worker has sent its collection."""
        if not self._ours:
            return bool(self._inner.collection_is_completed)
        return all(node in self._collections for node in self._nodes)

    @property
    def tests_finished(self) -> bool:
        """Whether every test has run."""
        if not self._ours:
            return bool(self._inner.tests_finished)
        return self.collection_is_completed and not self.has_pending

    @property
    def has_pending(self) -> bool:
        """Whether some test has yet to run."""
        if not self._ours:
            return bool(self._inner.has_pending)
        return bool(
            any(self._pending.values())
            or self._orphans
            or self._suspects
            or self._alone
            or self._alone_running is not None
        )

    def add_node(self, node: Any) -> None:
        """A worker is up."""
        if not self._ours:
            self._inner.add_node(node)
        self._nodes.append(node)
        self._pending[node] = {}

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        """A worker collected ``collection``."""
        if not self._ours:
            self._inner.add_node_collection(node, collection)
        elif list(collection) != list(self._collection):
            # A replacement worker that collected other tests gets none.
            self._nodes.remove(node)
            return
        self._collections[node] = collection

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        """A worker finished a test."""
        if not self._ours:
            self._inner.mark_test_complete(node, item_index, duration)
            return
        pending = self._pending.get(node)
        if pending is not None:
            pending.pop(item_index, None)
        if item_index == self._alone_running:
            self._alone_running = None
        self._next_alone()

    def mark_test_pending(self, item: str) -> None:
        """Run ``item`` (again) on some worker."""
        if not self._ours:
            self._inner.mark_test_pending(item)
            return
        self._orphans.append(self._index_of[item])
        self._hand_out_orphans()

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None:
        """A worker gave tests back unrun."""
        if not self._ours:
            self._inner.remove_pending_tests_from_node(node, indices)
            return
        pending = self._pending.get(node, {})
        for index in indices:
            if index in pending:
                del pending[index]
                self._orphans.append(index)
        self._hand_out_orphans()

    def remove_node(self, node: Any) -> str | None:
        """A worker is gone: hand the tests it left to other workers, and
        return the test it crashed in, when that is known.

        With one test in flight, that test crashed the worker. With several,
        any of them may have: each runs again alone, in a batch of its own,
        and the one that crashes a worker then is named.
        """
        if node in self._nodes:
            self._nodes.remove(node)
        if not self._ours:
            return self._inner.remove_node(node)  # type: ignore[no-any-return]
        pending = list(self._pending.pop(node, {}))
        in_flight = [index for index in pending if index in self._started]
        self._started.difference_update(in_flight)
        self._orphans.extend(index for index in pending if index not in in_flight)
        crashed = None
        if len(in_flight) == 1:
            crashed = in_flight[0]
        else:
            self._suspects.extend(in_flight)
        if crashed is not None and crashed == self._alone_running:
            self._alone_running = None
        self._hand_out_orphans()
        self._next_alone()
        return None if crashed is None else self._collection[crashed]

    def schedule(self) -> None:
        """Send every worker its share (the first time), or hand a new
        worker what a crashed one left."""
        if self._ours is None:
            self._ours = self._is_concurrent_run()
            if not self._ours:
                self._inner.schedule()
                return
            self._split()
        elif not self._ours:
            self._inner.schedule()
            return
        self._hand_out_orphans()
        self._next_alone()

    # Shares -----------------------------------------------------------

    @property
    def _collection(self) -> Sequence[str]:
        return next(iter(self._collections.values()))

    def _is_concurrent_run(self) -> bool:
        collections = list(self._collections.values())
        if not collections or any(list(c) != list(collections[0]) for c in collections[1:]):
            # pytest-xdist's scheduler reports the difference and runs nothing.
            return False
        return any(info.get("concurrent") for info in self._info.values())

    def _split(self) -> None:
        collection = self._collection
        self._index_of = {nodeid: index for index, nodeid in enumerate(collection)}
        info = next(info for info in self._info.values() if info.get("concurrent"))
        declared: dict[int, list[str]] = {int(k): v for k, v in info.get("keys", {}).items()}
        keys = [
            (*dist_keys(self._dist, nodeid), *declared.get(index, ()))
            for index, nodeid in enumerate(collection)
        ]
        live = [node for node in self._nodes if not _shutting_down(node)]
        planned = share_planning.split(len(collection), len(live), keys, info.get("alone", ()))
        for node, share in zip(live, planned.shares, strict=True):
            if share:
                self._pending[node].update(dict.fromkeys(share))
                node.send_runtest_some(share)
        self._alone = list(planned.alone)

    def _free_node(self) -> Any | None:
        live = [node for node in self._nodes if not _shutting_down(node)]
        if not live:
            return None
        return min(live, key=lambda node: len(self._pending[node]))

    def _hand_out_orphans(self) -> None:
        node = self._free_node()
        if node is None:
            return
        if self._orphans:
            orphans, self._orphans = sorted(self._orphans), []
            self._pending[node].update(dict.fromkeys(orphans))
            node.send_runtest_some(orphans)
        for suspect in self._suspects:
            self._pending[node][suspect] = None
            node.send_runtest_some([suspect])
        self._suspects = []

    def _next_alone(self) -> None:
        """Once every share has run, start the next test that runs with
        nothing else in flight."""
        if self._alone_running is not None or not self._alone:
            return
        if self._orphans or self._suspects or any(self._pending.values()):
            return
        node = self._free_node()
        if node is None:
            return
        index = self._alone.pop(0)
        self._alone_running = index
        self._pending[node][index] = None
        node.send_runtest_some([index])


def _shutting_down(node: Any) -> bool:
    return bool(getattr(node, "shutting_down", False))
