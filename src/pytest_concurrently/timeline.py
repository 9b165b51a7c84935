"""The timeline of a run: the records of :mod:`.stats` as one JSON document,
written as JSON or as a self-contained HTML page (``--concurrently-timeline``).

The document's schema is ``pytest-concurrently-timeline/1``, described in
the reference. Times in it are seconds since the run's first test started.
"""

from __future__ import annotations

import datetime
import heapq
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .stats import RunStats, TestRecord

__all__ = ["SCHEMA", "document", "merged", "pack_lanes", "write", "write_document"]

SCHEMA = "pytest-concurrently-timeline/1"


def pack_lanes(spans: Iterable[tuple[float, float]]) -> list[int]:
    """A lane for each ``(start, end)`` span, in the order given, so that
    spans on one lane never overlap and few lanes are used: each span takes
    the lane that came free first, or a new one. Spans must come in order of
    their starts."""
    free: list[tuple[float, int]] = []  # (end of its last span, lane)
    lanes: list[int] = []
    count = 0
    for start, end in spans:
        if free and free[0][0] <= start:
            _, lane = heapq.heappop(free)
        else:
            lane = count
            count += 1
        lanes.append(lane)
        heapq.heappush(free, (max(end, start), lane))
    return lanes


def _span(interval: tuple[float, float] | None, zero: float) -> list[float] | None:
    if interval is None:
        return None
    return [round(interval[0] - zero, 6), round(interval[1] - zero, 6)]


def _test_entry(record: TestRecord, zero: float) -> dict[str, Any]:
    queued = record.queued
    return {
        "nodeid": record.nodeid,
        "outcome": record.outcome or "interrupted",
        "lane": 0,
        "queued": round((queued[0] if queued else record.started) - zero, 6),
        "admission_for": queued[1] if queued else None,
        "setup": _span(record.setup, zero),
        "call": _span(record.call, zero),
        "teardown": _span(record.teardown, zero),
        "waits": [
            {"start": round(start - zero, 6), "end": round(stop - zero, 6), "for": what}
            for start, stop, what in record.waits
        ],
        "resources": list(record.holds),
        "message": record.message,
        "concurrent": record.concurrent,
        "seconds": round(record.own_seconds, 6),
    }


def document(stats: RunStats, *, command: str = "") -> dict[str, Any]:
    """The timeline of the run ``stats`` recorded, as the JSON document."""
    records = sorted(stats.records.values(), key=lambda record: record.started)
    zero = min(
        (record.queued[0] if record.queued else record.started for record in records),
        default=stats.began[1],
    )
    tests = [_test_entry(record, zero) for record in records]
    ends = [record.ended if record.ended is not None else record.started for record in records]
    for entry, lane in zip(
        tests,
        pack_lanes(
            (record.queued[0] if record.queued else record.started, end)
            for record, end in zip(records, ends, strict=True)
        ),
        strict=True,
    ):
        entry["lane"] = lane
    fixtures = []
    fixture_spans = []
    for fixture in sorted(stats.fixtures, key=lambda fixture: fixture.setup[0]):
        label = f"{fixture.name}[{fixture.param}]" if fixture.param is not None else fixture.name
        setup = (fixture.setup[0], fixture.setup[1] or fixture.setup[0])
        teardown = None
        if fixture.teardown is not None:
            teardown = (fixture.teardown[0], fixture.teardown[1] or fixture.teardown[0])
        fixture_spans.append((setup[0], (teardown or setup)[1]))
        fixtures.append(
            {
                "id": f"{label} ({fixture.scope})",
                "name": fixture.name,
                "scope": fixture.scope,
                "lane": 0,
                "setup": _span(setup, zero),
                "teardown": _span(teardown, zero),
            }
        )
    for entry, lane in zip(fixtures, pack_lanes(fixture_spans), strict=True):
        entry["lane"] = lane
    wall = stats.wall_seconds
    test_seconds = stats.test_seconds
    began = datetime.datetime.fromtimestamp(stats.began[0] + (zero - stats.began[1]))
    return {
        "zero": stats.began[0] + (zero - stats.began[1]),
        "schema": SCHEMA,
        "created": began.astimezone(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "summary": {
            "tests": stats.tests,
            "wall_seconds": round(wall, 6),
            "test_seconds": round(test_seconds, 6),
            "speedup": round(test_seconds / wall, 3) if wall > 0 else None,
            "peak_in_flight": stats.peak_in_flight,
            "stalled_seconds": round(stats.stalled_seconds, 6),
            "waited_seconds": round(sum(seconds for seconds, _ in stats.waits.values()), 6),
        },
        "tests": tests,
        "fixtures": fixtures,
        "stalls": [
            {
                "start": round(stall.began - zero, 6),
                "seconds": round(stall.seconds, 6),
                "nodeid": stall.nodeid,
                "where": stall.where,
            }
            for stall in stats.stalls
        ],
    }


def merged(parts: list[tuple[str, dict[str, Any]]], *, command: str = "") -> dict[str, Any]:
    """One timeline of a run whose pytest-xdist workers each made one.

    :param parts: (worker id, that worker's :func:`document`).

    Times move onto the earliest worker's clock (each document's ``zero``
    is its wall-clock start); each worker's lanes come after the previous
    worker's, and every test and fixture names its worker.
    """
    parts = sorted(parts, key=lambda part: part[0])
    zero = min((data["zero"] for _, data in parts), default=0.0)
    tests: list[dict[str, Any]] = []
    fixtures: list[dict[str, Any]] = []
    stalls: list[dict[str, Any]] = []
    test_lanes = fixture_lanes = 0
    summaries = [data["summary"] for _, data in parts]
    for worker, data in parts:
        delta = data["zero"] - zero
        for entry in data["tests"]:
            entry = {**entry, "worker": worker, "lane": entry["lane"] + test_lanes}
            entry["queued"] = round(entry["queued"] + delta, 6)
            for phase in ("setup", "call", "teardown"):
                entry[phase] = _shifted(entry[phase], delta)
            entry["waits"] = [
                {
                    **wait,
                    "start": round(wait["start"] + delta, 6),
                    "end": round(wait["end"] + delta, 6),
                }
                for wait in entry["waits"]
            ]
            tests.append(entry)
        for entry in data["fixtures"]:
            entry = {**entry, "worker": worker, "lane": entry["lane"] + fixture_lanes}
            entry["setup"] = _shifted(entry["setup"], delta)
            entry["teardown"] = _shifted(entry["teardown"], delta)
            fixtures.append(entry)
        stalls.extend(
            {**stall, "worker": worker, "start": round(stall["start"] + delta, 6)}
            for stall in data["stalls"]
        )
        test_lanes += 1 + max((entry["lane"] for entry in data["tests"]), default=-1)
        fixture_lanes += 1 + max((entry["lane"] for entry in data["fixtures"]), default=-1)
    ends = [
        max(span[1] for span in (entry["setup"], entry["call"], entry["teardown"]) if span)
        for entry in tests
        if entry["setup"] or entry["call"] or entry["teardown"]
    ]
    wall = max(ends, default=0.0)
    test_seconds = sum(summary["test_seconds"] for summary in summaries)
    tests.sort(key=lambda entry: entry["queued"])
    return {
        "zero": zero,
        "schema": SCHEMA,
        "created": datetime.datetime.fromtimestamp(zero, datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": command,
        "workers": [worker for worker, _ in parts],
        "summary": {
            "tests": sum(summary["tests"] for summary in summaries),
            "wall_seconds": round(wall, 6),
            "test_seconds": round(test_seconds, 6),
            "speedup": round(test_seconds / wall, 3) if wall > 0 else None,
            "peak_in_flight": max((s["peak_in_flight"] for s in summaries), default=0),
            "stalled_seconds": round(sum(s["stalled_seconds"] for s in summaries), 6),
            "waited_seconds": round(sum(s["waited_seconds"] for s in summaries), 6),
        },
        "tests": tests,
        "fixtures": fixtures,
        "stalls": stalls,
    }


def _shifted(span: list[float] | None, delta: float) -> list[float] | None:
    if span is None:
        return None
    return [round(span[0] + delta, 6), round(span[1] + delta, 6)]


def write(path: Path, stats: RunStats, *, command: str = "") -> None:
    """Write the timeline to ``path``: an HTML page if its name ends in
    ``.html`` or ``.htm``, else JSON."""
    write_document(path, document(stats, command=command))


def write_document(path: Path, data: dict[str, Any]) -> None:
    """Write a timeline :func:`document` to ``path``, as :func:`write` does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in {".html", ".htm"}:
        from .timeline_html import render_html

        path.write_text(render_html(data), encoding="utf-8")
    else:
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
