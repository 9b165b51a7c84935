"""The run's records: the timeline document and the end-of-run line drawn
from them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_concurrently.timeline import SCHEMA, pack_lanes

SUITE = """
import asyncio
import time
import pytest

pytestmark = pytest.mark.concurrent

@pytest.fixture(scope="module")
async def service():
    await asyncio.sleep(0.05)
    yield "service"
    await asyncio.sleep(0.05)

@pytest.mark.parametrize("n", range(4))
async def test_uses(service, n):
    await asyncio.sleep(0.3)
    assert n != 3, "three is out"

@pytest.mark.resource("db")
@pytest.mark.parametrize("n", range(2))
async def test_db(n):
    await asyncio.sleep(0.05)

@pytest.mark.skip(reason="not today")
async def test_skipped():
    pass

async def test_blocks():
    await asyncio.sleep(0.05)
    time.sleep(0.3)
"""


def _timeline(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest(
        "--concurrently-timeline",
        "out/timeline.json",
        "--concurrently-blocking-threshold=0.1",
        *args,
    )
    data = json.loads((pytester.path / "out" / "timeline.json").read_text())
    return result, data


def _overlap(first: list[float], second: list[float]) -> bool:
    return first[0] < second[1] and second[0] < first[1]


def test_the_timeline_has_every_reported_test_with_its_phases(pytester: pytest.Pytester) -> None:
    result, data = _timeline(pytester)
    result.assert_outcomes(passed=6, failed=1, skipped=1)
    assert data["schema"] == SCHEMA
    tests = {entry["nodeid"].split("::")[1]: entry for entry in data["tests"]}
    assert len(tests) == 8
    assert data["summary"]["tests"] == 8  # what pytest counted
    assert {name: entry["outcome"] for name, entry in tests.items()} == {
        "test_uses[0]": "passed",
        "test_uses[1]": "passed",
        "test_uses[2]": "passed",
        "test_uses[3]": "failed",
        "test_db[0]": "passed",
        "test_db[1]": "passed",
        "test_skipped": "skipped",
        "test_blocks": "passed",
    }
    assert tests["test_uses[3]"]["message"].startswith("AssertionError: three is out")
    # The phases come from pytest's reports, in order, on one clock.
    for entry in data["tests"]:
        assert entry["setup"][0] <= entry["setup"][1] <= entry["teardown"][0]
        if entry["call"] is not None:
            assert entry["setup"][1] <= entry["call"][0] <= entry["call"][1]
            assert entry["call"][1] <= entry["teardown"][0] <= entry["teardown"][1]
    calls = [tests[f"test_uses[{n}]"]["call"] for n in range(4)]
    assert all(_overlap(calls[0], other) for other in calls[1:])
    lanes = [tests[f"test_uses[{n}]"]["lane"] for n in range(4)]
    assert len(set(lanes)) == 4  # overlapping bars never share a lane
    # The exclusive resource: held by both, and the second waited for it.
    first, second = sorted(
        (tests["test_db[0]"], tests["test_db[1]"]), key=lambda entry: entry["setup"][0]
    )
    assert first["resources"] == second["resources"] == ["resource 'db'"]
    assert not _overlap(first["call"], second["call"])
    assert second["admission_for"] == "resource 'db'"
    assert second["queued"] < second["setup"][0]


def test_shared_fixture_instances_are_bars_of_their_own(pytester: pytest.Pytester) -> None:
    _, data = _timeline(pytester)
    fixtures = {entry["id"]: entry for entry in data["fixtures"]}
    service = fixtures["service (module)"]
    assert service["scope"] == "module"
    users = [entry for entry in data["tests"] if "test_uses" in entry["nodeid"]]
    # Set up before its first user's call, torn down after its last user's.
    assert service["setup"][1] <= min(entry["call"][0] for entry in users)
    assert service["teardown"][0] >= max(entry["call"][1] for entry in users)
    assert service["teardown"][0] <= service["teardown"][1]


def test_a_stall_is_marked_and_is_not_the_others_test_time(pytester: pytest.Pytester) -> None:
    _, data = _timeline(pytester)
    stalls = data["stalls"]
    assert len(stalls) == 1
    stall = stalls[0]
    assert stall["nodeid"].endswith("::test_blocks")
    assert stall["where"] == "test_suite.py:29 in test_blocks"
    assert stall["seconds"] == pytest.approx(data["summary"]["stalled_seconds"])
    blocks = next(entry for entry in data["tests"] if entry["nodeid"].endswith("::test_blocks"))
    checked = 0
    for entry in data["tests"]:
        span = entry["setup"][0], entry["teardown"][1]
        if entry is blocks or not (span[0] < stall["start"] and stall["start"] + 0.01 < span[1]):
            continue
        # A test in flight throughout the stall: its time leaves the stall
        # out. Its time runs from the runner's start of it to its end, a
        # little wider than its phases (some milliseconds on a loaded
        # machine, far less than the stall).
        assert entry["seconds"] == pytest.approx(span[1] - span[0] - stall["seconds"], abs=0.03)
        checked += 1
    assert checked >= 1
    assert data["summary"]["test_seconds"] == pytest.approx(
        sum(entry["seconds"] for entry in data["tests"]), abs=1e-3
    )


def test_the_end_of_run_line_sums_the_same_records(pytester: pytest.Pytester) -> None:
    result, data = _timeline(pytester)
    summary = data["summary"]
    result.stdout.fnmatch_lines(
        [
            f"concurrently: 8 tests in {summary['wall_seconds']:,.1f} s, "
            f"{summary['test_seconds']:,.1f} s of test time*, up to * in flight*",
            "concurrently: timeline written to *timeline.json",
        ]
    )


def test_the_end_of_run_line_ends_the_summary_area(pytester: pytest.Pytester) -> None:
    """With -rA the line follows the short test summary, not pytest's
    PASSES section."""
    result, _ = _timeline(pytester, "-rA")
    lines = result.stdout.lines
    summary = next(n for n, line in enumerate(lines) if "short test summary info" in line)
    ours = next(n for n, line in enumerate(lines) if line.startswith("concurrently: 8 tests"))
    final = next(n for n, line in enumerate(lines) if "1 failed, 6 passed, 1 skipped" in line)
    assert summary < ours < final
    assert all(not line.startswith("PASSED") for line in lines[ours:final])


def test_an_html_timeline_holds_the_same_document(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--concurrently-timeline", "timeline.html")
    result.assert_outcomes(passed=6, failed=1, skipped=1)
    page = (pytester.path / "timeline.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "test_suite.py::test_uses[3]" in page
    assert "http://" not in page
    assert "https://" not in page


def test_a_run_with_nothing_concurrent_writes_an_empty_timeline(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_sync(): pass")
    result = pytester.runpytest("--concurrently-timeline", "timeline.json")
    result.assert_outcomes(passed=1)
    data = json.loads((pytester.path / "timeline.json").read_text())
    assert data["schema"] == SCHEMA
    assert data["tests"] == []
    assert data["summary"]["tests"] == 0


@given(
    st.lists(
        st.tuples(st.floats(0, 100), st.floats(0.001, 10)).map(lambda pair: (pair[0], sum(pair))),
        max_size=60,
    )
)
def test_lanes_never_overlap_and_are_as_few_as_the_deepest_overlap(
    spans: list[tuple[float, float]],
) -> None:
    spans.sort()
    lanes = pack_lanes(spans)
    by_lane: dict[int, list[tuple[float, float]]] = {}
    for span, lane in zip(spans, lanes, strict=True):
        for other in by_lane.get(lane, []):
            assert not (span[0] < other[1] and other[0] < span[1])
        by_lane.setdefault(lane, []).append(span)
    deepest = max(
        (sum(1 for start, end in spans if start <= at < end) for at, _ in spans), default=0
    )
    assert len(by_lane) == max(deepest, 1 if spans else 0)


def test_under_xdist_the_workers_timelines_are_one(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result, data = _timeline(pytester, "-p", "xdist", "-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=6, failed=1, skipped=1)
    tests = {entry["nodeid"].split("::")[-1]: entry for entry in data["tests"]}
    assert len(tests) == 8
    assert data["workers"] == ["gw0", "gw1"]
    assert {entry["worker"] for entry in tests.values()} == {"gw0", "gw1"}
    assert data["summary"]["tests"] == 8
    # Each worker's tests keep lanes of their own.
    lanes: dict[int, set[str]] = {}
    for entry in tests.values():
        lanes.setdefault(entry["lane"], set()).add(entry["worker"])
    assert all(len(workers) == 1 for workers in lanes.values())
    # A worker's records keep their order: its shared fixture is set up
    # within its users' setups and torn down after their calls.
    uses = [tests[f"test_uses[{n}]"] for n in range(4)]
    for fixture in data["fixtures"]:
        users = [entry for entry in uses if entry["worker"] == fixture["worker"]]
        if fixture["name"] == "service" and users:
            assert fixture["setup"][0] >= min(entry["setup"][0] for entry in users)
            assert fixture["teardown"][1] >= max(entry["call"][1] for entry in users)
    assert all(entry["queued"] >= 0 for entry in tests.values())
