"""The controller's scheduler of a concurrent run under pytest-xdist
(``_plugin_adapters.xdist_controller.ShareScheduling``), driven as
pytest-xdist's controller drives it, with stand-in workers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_concurrently._plugin_adapters.xdist_controller import ShareScheduling


class FakeNode:
    """A worker as the scheduler sees it: what it was sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[list[int]] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: Sequence[int]) -> None:
        self.sent.append(list(indices))

    def __repr__(self) -> str:
        return self.name


class FakeInner:
    """pytest-xdist's own scheduler, which a concurrent run never uses."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.nodes: list[Any] = []
        self.collection_is_completed = True
        self.tests_finished = False
        self.has_pending = True

    def add_node(self, node: Any) -> None:
        self.calls.append("add_node")
        self.nodes.append(node)

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        self.calls.append("add_node_collection")

    def schedule(self) -> None:
        self.calls.append("schedule")


def started(
    count: int,
    workers: int,
    *,
    concurrent: bool = True,
    keys: dict[int, list[str]] | None = None,
    alone: Sequence[int] = (),
    dist: str = "load",
) -> tuple[ShareScheduling, list[FakeNode], list[str], FakeInner]:
    inner = FakeInner()
    scheduling = ShareScheduling(inner, dist)
    nodes = [FakeNode(f"gw{n}") for n in range(workers)]
    collection = [f"test_m{i // 5}.py::test_{i}" for i in range(count)]
    for node in nodes:
        scheduling.add_node(node)
        scheduling.worker_info(
            node, {"concurrent": concurrent, "keys": keys or {}, "alone": list(alone)}
        )
        scheduling.add_node_collection(node, collection)
    scheduling.schedule()
    return scheduling, nodes, collection, inner


def test_each_worker_gets_its_whole_share_in_one_command() -> None:
    scheduling, nodes, _, inner = started(10, 2)
    assert [node.sent for node in nodes] == [[[0, 1, 2, 3, 4]], [[5, 6, 7, 8, 9]]]
    assert "schedule" not in inner.calls
    assert not scheduling.tests_finished
    for node in nodes:
        for index in node.sent[0]:
            scheduling.mark_test_complete(node, index)
    assert scheduling.tests_finished


def test_a_run_that_is_not_concurrent_is_left_to_xdist() -> None:
    scheduling, nodes, _, inner = started(10, 2, concurrent=False)
    assert inner.calls.count("schedule") == 1
    assert all(node.sent == [] for node in nodes)
    assert scheduling.tests_finished is False  # the wrapped scheduler's answer
    assert scheduling.nodes == inner.nodes


def test_isolated_tests_run_last_one_at_a_time() -> None:
    scheduling, nodes, _, _ = started(6, 2, alone=[1, 4])
    assert [node.sent for node in nodes] == [[[0, 2]], [[3, 5]]]
    for index in (0, 2):
        scheduling.mark_test_complete(nodes[0], index)
    scheduling.mark_test_complete(nodes[1], 3)
    assert all(len(node.sent) == 1 for node in nodes)  # gw1's share is still running
    scheduling.mark_test_complete(nodes[1], 5)
    sent_alone = [batch for node in nodes for batch in node.sent[1:]]
    assert sent_alone == [[1]]
    owner = next(node for node in nodes if len(node.sent) == 2)
    scheduling.mark_test_complete(owner, 1)
    sent_alone = [batch for node in nodes for batch in node.sent[1:]]
    assert sorted(sent_alone) == [[1], [4]]
    assert not scheduling.tests_finished


def test_a_crash_with_one_test_in_flight_names_it() -> None:
    scheduling, nodes, collection, _ = started(6, 2)
    scheduling.test_started(collection[0])
    scheduling.mark_test_complete(nodes[0], 0)
    scheduling.test_started(collection[1])
    assert scheduling.remove_node(nodes[0]) == collection[1]
    # The share's tests that had not started go to the other worker.
    assert nodes[1].sent[1:] == [[2]]


def test_a_crash_with_several_in_flight_runs_each_again_alone() -> None:
    scheduling, nodes, collection, _ = started(6, 2)
    for index in (0, 1):
        scheduling.test_started(collection[index])
    assert scheduling.remove_node(nodes[0]) is None
    assert nodes[1].sent[1:] == [[2], [0], [1]]
    scheduling.test_started(collection[0])
    replacement = FakeNode("gw2")
    scheduling.add_node(replacement)
    scheduling.add_node_collection(replacement, collection)
    scheduling.schedule()
    assert scheduling.remove_node(nodes[1]) == collection[0]


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 30),
    workers=st.integers(1, 4),
    data=st.data(),
)
def test_every_test_runs_once_and_isolated_ones_run_with_nothing_else(
    count: int, workers: int, data: st.DataObject
) -> None:
    alone = data.draw(st.sets(st.integers(0, count - 1), max_size=3))
    scheduling, nodes, collection, _ = started(count, workers, alone=sorted(alone))
    completed: list[int] = []
    in_progress: dict[int, FakeNode] = {}
    seen: dict[FakeNode, int] = {node: 0 for node in nodes}
    for _ in range(count * 4):
        for node in nodes:
            for batch in node.sent[seen[node] :]:
                for index in batch:
                    in_progress[index] = node
            seen[node] = len(node.sent)
        if not in_progress:
            break
        index = data.draw(st.sampled_from(sorted(in_progress)))
        node = in_progress.pop(index)
        if index in alone:
            # Nothing else was in flight when an isolated test was sent.
            assert not in_progress
        scheduling.test_started(collection[index])
        scheduling.mark_test_complete(node, index)
        completed.append(index)
    assert sorted(completed) == list(range(count))
    assert scheduling.tests_finished
    # The isolated tests ran after every other test.
    assert completed[len(completed) - len(alone) :] == sorted(alone) or not alone
