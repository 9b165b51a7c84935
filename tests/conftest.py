"""Shared helpers for the plugin's tests.

Inner test sessions record what happened (start and end of tests and
fixtures) to ``events.jsonl`` in their directory with :data:`RECORDER`; the
outer tests read it with :func:`read_events` and assert on the order and the
overlap of intervals, never on wall-clock durations.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass

import pytest

#: Source of a ``recorder`` module for inner sessions: ``record(name, what)``
#: appends one event with a monotonic timestamp.
RECORDER = """
import json, os, time

def record(name, what, **extra):
    with open(os.path.join(os.path.dirname(__file__), "events.jsonl"), "a") as f:
        f.write(json.dumps({"name": name, "what": what, "t": time.monotonic(), **extra}) + "\\n")
"""


@dataclass(frozen=True)
class Event:
    name: str
    what: str
    t: float
    extra: dict[str, object]


def read_events(pytester: pytest.Pytester) -> list[Event]:
    path = pytester.path / "events.jsonl"
    events = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        name, what, t = data.pop("name"), data.pop("what"), data.pop("t")
        events.append(Event(name, what, t, data))
    return events


def intervals(
    events: list[Event], start: str = "start", end: str = "end"
) -> dict[str, tuple[float, float]]:
    """name -> (start time, end time) for every name that has both events."""
    starts = {e.name: e.t for e in events if e.what == start}
    ends = {e.name: e.t for e in events if e.what == end}
    return {name: (starts[name], ends[name]) for name in starts if name in ends}


def all_overlap(spans: dict[str, tuple[float, float]]) -> bool:
    """True when some instant lies inside every interval."""
    return max(s for s, _ in spans.values()) < min(e for _, e in spans.values())


def peak_overlap(spans: dict[str, tuple[float, float]]) -> int:
    """The most intervals that contain one instant."""
    points = sorted([(s, 1) for s, _ in spans.values()] + [(e, -1) for _, e in spans.values()])
    peak = current = 0
    for _, step in points:
        current += step
        peak = max(peak, current)
    return peak


@pytest.fixture
def recorder(pytester: pytest.Pytester) -> None:
    """Make ``from recorder import record`` work in the inner session."""
    pytester.makepyfile(recorder=RECORDER)
    pytester.syspathinsert()


#: Options every inner session gets: no pytest-asyncio, anyio or
#: pytest-randomly plugin (the tests that check coexistence with them turn
#: them back on), so inner outcomes depend on this plugin alone.
INNER_OPTIONS = "-p no:asyncio -p no:anyio -p no:randomly"


@pytest.fixture(autouse=True)
def _without_other_async_plugins(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "pytester" in request.fixturenames:
        # pytester clears PYTEST_ADDOPTS when it is created, so set it after.
        request.getfixturevalue("pytester")
        monkeypatch.setenv("PYTEST_ADDOPTS", INNER_OPTIONS)


#: Suites written for pytest-asyncio and anyio, run as inner sessions by
#: test_dropin_corpus.py, never collected by the outer session.
collect_ignore = ["dropin_corpus"]


def installed_version(distribution: str) -> tuple[int, ...]:
    """The major and minor version of an installed distribution, (0,) when
    it is not installed."""
    try:
        text = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return (0,)
    return tuple(int("".join(c for c in part if c.isdigit()) or 0) for part in text.split(".")[:2])
