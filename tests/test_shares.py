"""The split of a run among pytest-xdist's workers (``scheduling.shares``),
property-tested."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_concurrently.scheduling.shares import join_units, split

keys_strategy = st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=2), max_size=60)


@given(keys=keys_strategy, workers=st.integers(1, 6), data=st.data())
def test_every_test_runs_once_and_tied_tests_share_a_worker(
    keys: list[list[str]], workers: int, data: st.DataObject
) -> None:
    count = len(keys)
    alone = data.draw(st.sets(st.integers(0, max(count - 1, 0)), max_size=3)) if count else set()
    planned = split(count, workers, keys, alone)
    assert len(planned.shares) == workers
    placed = [index for share in planned.shares for index in share]
    assert sorted(placed + planned.alone) == list(range(count))
    assert planned.alone == sorted(alone)
    where = {index: worker for worker, share in enumerate(planned.shares) for index in share}
    for a in where:
        for b in where:
            if set(keys[a]) & set(keys[b]):
                assert where[a] == where[b], (a, b)
    for share in planned.shares:
        assert share == sorted(share)


@given(count=st.integers(0, 200), workers=st.integers(1, 8))
def test_untied_tests_split_evenly_and_in_order(count: int, workers: int) -> None:
    planned = split(count, workers, [()] * count)
    sizes = [len(share) for share in planned.shares]
    assert max(sizes) - min(sizes) <= 1
    # Neighbours stay together: each share is one stretch of the collection.
    for share in planned.shares:
        assert share == list(range(share[0], share[0] + len(share))) if share else True
    flat = [index for share in planned.shares for index in share]
    assert flat == list(range(count))


def test_units_join_through_shared_keys() -> None:
    assert join_units(5, [("a",), ("b",), ("a", "b"), (), ("c",)]) == [[0, 1, 2], [3], [4]]
