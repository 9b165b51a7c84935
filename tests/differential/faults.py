"""Seeded suites of concurrent tests that misbehave, and what each should
report.

:func:`generate_fault_suite` writes a suite in which every test does one
thing from :data:`BEHAVIOURS`: passes, fails, hangs past its time limit,
ignores the interruption of its limit, blocks the event loop, leaves a task
running, hangs in a fixture's setup or in its teardown. Every test uses a
function-scoped fixture of its own and a module-scoped one shared by all, and
the suite's conftest records reports, warnings and fixture events.
:func:`check_run` compares a run's records with what each behaviour
predicts: the reports of each test, the warnings on it (and on no other),
and that every fixture that should be torn down was torn down exactly once.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["BEHAVIOURS", "FaultSuite", "check_run", "generate_fault_suite"]

#: Behaviour -> its weight in a random suite.
BEHAVIOURS: Final = {
    "passes": 6,
    "fails": 2,
    "hangs": 2,
    "ignores_timeout": 1,
    "blocks_loop": 1,
    "leaves_task": 2,
    "hangs_in_setup": 1,
    "hangs_in_teardown": 1,
}

#: Seconds: each misbehaving test's limits, the grace period, the watchdog
#: threshold and how long a blocking test blocks. The block is long enough
#: that a loaded machine does not hide it, the threshold long enough that a
#: loaded machine's pauses are not taken for one.
LIMIT: Final = 0.3
GRACE: Final = 0.3
THRESHOLD: Final = 0.25
BLOCK: Final = 0.6

CONFTEST: Final = """
import json
import os

import pytest

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "events.jsonl")


def record(**event):
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(event) + "\\n")


def pytest_runtest_logreport(report):
    text = str(report.longrepr) if report.longrepr else ""
    record(kind="report", nodeid=report.nodeid, when=report.when, outcome=report.outcome,
           text=text)


def pytest_warning_recorded(warning_message, when, nodeid, location):
    record(kind="warning", nodeid=nodeid, category=warning_message.category.__name__)
"""

MODULE_HEADER: Final = """
import asyncio
import time

import pytest
from conftest import record

pytestmark = pytest.mark.concurrent


@pytest.fixture(scope="module")
async def shared():
    record(kind="fixture", name="shared", what="setup")
    yield
    record(kind="fixture", name="shared", what="teardown")


@pytest.fixture
async def own(request, shared):
    record(kind="fixture", name=request.node.nodeid, what="setup")
    yield
    record(kind="fixture", name=request.node.nodeid, what="teardown")


@pytest.fixture
async def hangs_in_setup(own):
    await asyncio.Event().wait()


@pytest.fixture
async def hangs_in_teardown(own):
    yield
    await asyncio.Event().wait()


async def forever(nodeid):
    try:
        await asyncio.Event().wait()
    finally:
        record(kind="stray", nodeid=nodeid, what="stopped")
"""

_BODIES: Final = {
    "passes": ("own", "", "    await asyncio.sleep({pause})\n"),
    "fails": ("own", "", "    await asyncio.sleep({pause})\n    assert False, 'fails'\n"),
    "hangs": (
        "own",
        f"@pytest.mark.concurrent(timeout={LIMIT})\n",
        "    await asyncio.Event().wait()\n",
    ),
    "ignores_timeout": (
        "own",
        f"@pytest.mark.concurrent(timeout={LIMIT})\n",
        "    while True:\n"
        "        try:\n"
        "            await asyncio.sleep(0.02)\n"
        "        except asyncio.CancelledError:\n"
        "            pass\n",
    ),
    "blocks_loop": ("own", "", f"    await asyncio.sleep({{pause}})\n    time.sleep({BLOCK})\n"),
    "leaves_task": (
        "own, request",
        "",
        "    asyncio.create_task(forever(request.node.nodeid))\n    await asyncio.sleep({pause})\n",
    ),
    "hangs_in_setup": (
        "hangs_in_setup",
        f"@pytest.mark.concurrent(timeout={LIMIT})\n",
        "    pass\n",
    ),
    "hangs_in_teardown": (
        "hangs_in_teardown",
        f"@pytest.mark.concurrent(timeout={LIMIT})\n",
        "    await asyncio.sleep({pause})\n",
    ),
}


@dataclass(frozen=True)
class FaultSuite:
    """A generated suite: its files, and the behaviour of each test by node id."""

    files: dict[str, str]
    behaviours: dict[str, str]
    concurrency: int


def generate_fault_suite(seed: int) -> FaultSuite:
    """The suite of ``seed``: 6 to 24 tests in one module."""
    rng = random.Random(f"faults:{seed}")
    names = list(BEHAVIOURS)
    weights = [BEHAVIOURS[name] for name in names]
    count = rng.randint(6, 24)
    lines = [MODULE_HEADER]
    behaviours: dict[str, str] = {}
    for index in range(count):
        behaviour = rng.choices(names, weights)[0]
        arguments, mark, body = _BODIES[behaviour]
        name = f"test_{index:02d}_{behaviour}"
        behaviours[f"test_faults.py::{name}"] = behaviour
        pause = round(rng.uniform(0.0, 0.2), 3)
        lines.append(f"\n\n{mark}async def {name}({arguments}):\n{body.format(pause=pause)}")
    ini = (
        "[pytest]\n"
        f"concurrently_timeout_grace = {GRACE}\n"
        f"concurrently_blocking_threshold = {THRESHOLD}\n"
    )
    return FaultSuite(
        {"conftest.py": CONFTEST, "test_faults.py": "".join(lines), "pytest.ini": ini},
        behaviours,
        rng.randint(2, count),
    )


def _expected_reports(behaviour: str) -> dict[str, str]:
    if behaviour == "hangs_in_setup":
        return {"setup": "failed", "teardown": "passed"}
    outcomes = {"setup": "passed", "call": "passed", "teardown": "passed"}
    if behaviour in ("fails", "hangs", "ignores_timeout"):
        outcomes["call"] = "failed"
    if behaviour == "hangs_in_teardown":
        outcomes["teardown"] = "failed"
    return outcomes


_EXPECTED_TEXT: Final = {
    "hangs": "Timeout: the test ran longer than its limit",
    "ignores_timeout": "and was abandoned (its teardown did not run)",
    "hangs_in_setup": "Timeout: the test ran longer than its limit",
    "hangs_in_teardown": "Timeout: the teardown ran longer than its limit",
}

_EXPECTED_WARNING: Final = {
    "blocks_loop": "BlockedLoopWarning",
    "leaves_task": "StrayTaskWarning",
}


def check_run(suite: FaultSuite, events_path: Path) -> list[str]:
    """What in the run's records differs from the prediction, in words
    (empty when nothing does)."""
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    problems: list[str] = []
    reports: dict[str, dict[str, str]] = {}
    texts: dict[str, str] = {}
    for event in events:
        if event["kind"] == "report":
            phases = reports.setdefault(event["nodeid"], {})
            if event["when"] in phases:
                problems.append(f"{event['nodeid']}: two {event['when']} reports")
            phases[event["when"]] = event["outcome"]
            texts[event["nodeid"]] = texts.get(event["nodeid"], "") + event["text"]
    warned: dict[str, set[str]] = {}
    for event in events:
        if event["kind"] == "warning" and event["category"] in _EXPECTED_WARNING.values():
            warned.setdefault(event["nodeid"], set()).add(event["category"])
    fixture_events: dict[str, list[str]] = {}
    for event in events:
        if event["kind"] == "fixture":
            fixture_events.setdefault(event["name"], []).append(event["what"])
    stopped = {event["nodeid"] for event in events if event["kind"] == "stray"}

    for nodeid, behaviour in suite.behaviours.items():
        expected = _expected_reports(behaviour)
        if reports.get(nodeid) != expected:
            problems.append(
                f"{nodeid} ({behaviour}): reports {reports.get(nodeid)}, expected {expected}"
            )
        text = _EXPECTED_TEXT.get(behaviour)
        if text is not None and text not in texts.get(nodeid, ""):
            problems.append(f"{nodeid} ({behaviour}): no {text!r} in its reports")
        expected_warnings = (
            {_EXPECTED_WARNING[behaviour]} if behaviour in _EXPECTED_WARNING else set()
        )
        if warned.get(nodeid, set()) != expected_warnings:
            problems.append(
                f"{nodeid} ({behaviour}): warnings {sorted(warned.get(nodeid, set()))}, "
                f"expected {sorted(expected_warnings)}"
            )
        # An abandoned test's teardown does not run, but its own fixture
        # depends on the shared one, and pytest tears a fixture's dependants
        # down before it: once, at the end of the module.
        expected_fixture = ["setup", "teardown"]
        if fixture_events.get(nodeid) != expected_fixture:
            problems.append(
                f"{nodeid} ({behaviour}): own fixture {fixture_events.get(nodeid)}, "
                f"expected {expected_fixture}"
            )
        if behaviour == "leaves_task" and nodeid not in stopped:
            problems.append(f"{nodeid}: the task it left running was not stopped")
    if fixture_events.get("shared") != ["setup", "teardown"]:
        problems.append(
            f"shared fixture: {fixture_events.get('shared')}, expected one setup and one teardown"
        )
    return problems


def _soak(seeds: range) -> int:
    """Run ``seeds`` in temporary directories; print and count the seeds
    whose run differs from the prediction."""
    import subprocess
    import sys
    import tempfile

    bad = 0
    for seed in seeds:
        suite = generate_fault_suite(seed)
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory)
            for name, text in suite.files.items():
                (path / name).write_text(text)
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    f"--concurrency={suite.concurrency}",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:randomly",
                    "-q",
                ],
                cwd=path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            problems = check_run(suite, path / "events.jsonl")
        if problems:
            bad += 1
            print(f"seed {seed}:", *problems, run.stdout[-2000:], sep="\n  ")
    print(f"{len(seeds)} seeds, {bad} with differences from the prediction")
    return bad


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--start", type=int, default=0)
    arguments = parser.parse_args()
    raise SystemExit(1 if _soak(range(arguments.start, arguments.start + arguments.seeds)) else 0)
