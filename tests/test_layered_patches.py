"""``monkeypatch`` in overlapping tests: each test's undo takes out its own
patches, whatever order the tests end in, and nothing leaks."""

from __future__ import annotations

import pytest
from conftest import read_events

pytestmark = pytest.mark.usefixtures("recorder")

SUITE = """
import asyncio
import colorsys
import os
import sys
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

from pytest_concurrently._pytest_adapter.layered_patches import patched_targets

REAL_FUNCTION = colorsys.rgb_to_hsv
# The session around this one (pytester's) may have patches of its own.
TARGETS_BEFORE = patched_targets()
ORIGINAL_CWD = os.getcwd()
ORIGINAL_PATH = list(sys.path)
TABLE = {{"key": "original"}}

class Holder:
    value = "original"

@pytest.fixture
def witness(request):
    yield
    record(request.node.callspec.id, "undone")

@pytest.mark.parametrize(
    ("name", "start", "end"), [("a", 0.0, {a_end}), ("b", 0.05, {b_end}), ("c", 0.1, {c_end})],
    ids=["a", "b", "c"],
)
async def test_patches(witness, monkeypatch, tmp_path, name, start, end):
    await asyncio.sleep(start)
    monkeypatch.setattr(colorsys, "rgb_to_hsv", lambda *args: name)
    monkeypatch.setenv("LAYERED_PATCH", name)
    monkeypatch.setitem(TABLE, "key", name)
    monkeypatch.delattr(Holder, "value", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    record(name, "patched")
    await asyncio.sleep(end - start)
    seen = [colorsys.rgb_to_hsv(0, 0, 0), os.environ["LAYERED_PATCH"], TABLE["key"]]
    record(name, "end", seen=seen)

@pytest.mark.isolated
async def test_zz_everything_is_back():
    assert colorsys.rgb_to_hsv is REAL_FUNCTION
    assert "LAYERED_PATCH" not in os.environ
    assert TABLE == {{"key": "original"}}
    assert Holder.value == "original"
    assert os.getcwd() == ORIGINAL_CWD
    assert sys.path == ORIGINAL_PATH
    assert patched_targets() == TARGETS_BEFORE
"""


@pytest.mark.parametrize(
    ("a_end", "b_end", "c_end"),
    [(0.4, 0.2, 0.3), (0.2, 0.3, 0.4), (0.4, 0.3, 0.2)],
    ids=["middle-first", "in-order", "reverse"],
)
def test_overlapping_patches_come_off_in_any_order(
    pytester: pytest.Pytester, a_end: float, b_end: float, c_end: float
) -> None:
    pytester.makeini("[pytest]\nconcurrently_isolated_fixtures =\n")
    pytester.makepyfile(SUITE.format(a_end=a_end, b_end=b_end, c_end=c_end))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    # Replay the patches and undos in the order they happened: at each
    # test's end, what it saw is the newest patch still in place.
    in_place: list[str] = []
    for event in read_events(pytester):
        if event.what == "patched":
            in_place.append(event.name)
        elif event.what == "undone":
            in_place.remove(event.name)
        elif event.what == "end":
            assert event.extra["seen"] == [in_place[-1]] * 3, (event, in_place)
    assert in_place == []
    ends = [event.name for event in read_events(pytester) if event.what == "end"]
    expected = [name for _, name in sorted([(a_end, "a"), (b_end, "b"), (c_end, "c")])]
    assert ends == expected  # the tests did overlap and end in the order chosen


def test_a_sequential_run_restores_as_pytest_does(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import os

def test_first(monkeypatch):
    monkeypatch.setenv("SEQUENTIAL_PATCH", "1")
    with monkeypatch.context() as inner:
        inner.setenv("SEQUENTIAL_PATCH", "2")
        assert os.environ["SEQUENTIAL_PATCH"] == "2"
    assert os.environ["SEQUENTIAL_PATCH"] == "1"
    monkeypatch.undo()
    assert "SEQUENTIAL_PATCH" not in os.environ
    monkeypatch.setenv("SEQUENTIAL_PATCH", "3")

def test_second():
    assert "SEQUENTIAL_PATCH" not in os.environ
"""
    )
    pytester.runpytest().assert_outcomes(passed=2)
