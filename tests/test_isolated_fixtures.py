"""Tests that use fixtures whose changes every test in flight would see run
alone (``concurrently_isolated_fixtures``)."""

from __future__ import annotations

import pytest
from conftest import intervals, read_events

pytestmark = pytest.mark.usefixtures("recorder")

SUITE = """
import asyncio
import os
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

@pytest.fixture
def patched_environment(monkeypatch):
    monkeypatch.setenv("ISOLATION_MARKER", "set")

@pytest.fixture
def freezer():
    return "frozen"

async def test_patches(monkeypatch):
    record("test_patches", "start")
    monkeypatch.setattr(os, "sep", "!")
    await asyncio.sleep(0.1)
    record("test_patches", "end")

async def test_patches_through_a_fixture(patched_environment):
    record("test_patches_through_a_fixture", "start")
    await asyncio.sleep(0.1)
    record("test_patches_through_a_fixture", "end")

async def test_freezes(freezer):
    record("test_freezes", "start")
    await asyncio.sleep(0.1)
    record("test_freezes", "end")

@pytest.mark.parametrize("n", range(3))
async def test_plain(n):
    record(f"test_plain[{n}]", "start")
    await asyncio.sleep(0.1)
    record(f"test_plain[{n}]", "end")
"""


def _overlapping(spans: dict[str, tuple[float, float]], name: str) -> set[str]:
    start, end = spans[name]
    return {
        other
        for other, (other_start, other_end) in spans.items()
        if other != name and other_start < end and start < other_end
    }


def test_tests_using_monkeypatch_run_alone_and_say_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=6)
    spans = intervals(read_events(pytester))
    assert not _overlapping(spans, "test_patches")
    assert not _overlapping(spans, "test_patches_through_a_fixture")
    # The others still overlap.
    assert "test_plain[1]" in _overlapping(spans, "test_plain[0]")
    result.stdout.fnmatch_lines(
        [
            "*::test_patches PASSED (alone: it uses monkeypatch, whose changes every test "
            "in flight would see (concurrently_isolated_fixtures))*",
            "concurrently: 6 tests in *; 2 ran alone (it uses monkeypatch, whose changes "
            "every test in flight would see (concurrently_isolated_fixtures))",
        ]
    )


def test_the_ini_option_chooses_the_isolating_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_isolated_fixtures = freezer\n")
    pytester.makepyfile(SUITE)
    pytester.runpytest().assert_outcomes(passed=6)
    spans = intervals(read_events(pytester))
    assert not _overlapping(spans, "test_freezes")
    # monkeypatch is no longer on the list: those tests overlap others.
    assert _overlapping(spans, "test_patches")
    assert _overlapping(spans, "test_patches_through_a_fixture")


def test_capfd_isolates_a_test_whatever_the_list_says(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_isolated_fixtures =\n")
    pytester.makepyfile(
        """
import asyncio
import os
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

async def test_captures(capfd):
    record("test_captures", "start")
    os.write(1, b"to the descriptor\\n")
    await asyncio.sleep(0.1)
    assert capfd.readouterr().out == "to the descriptor\\n"
    record("test_captures", "end")

@pytest.mark.parametrize("n", range(2))
async def test_plain(n):
    record(f"test_plain[{n}]", "start")
    await asyncio.sleep(0.1)
    record(f"test_plain[{n}]", "end")
"""
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)
    assert not _overlapping(intervals(read_events(pytester)), "test_captures")
    result.stdout.fnmatch_lines(["*::test_captures PASSED (alone: it uses capfd, which captures*"])
