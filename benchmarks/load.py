"""Peak memory of a large concurrent run with failures and timeouts.

Generates a suite of ``--tests`` async tests (default 10,000) that wait
``--sleep`` seconds (default 0.5), use a function-scoped and a
session-scoped fixture, print a line, and in small shares fail or time out;
runs it with ``--concurrency`` (default 1,000) and ``--junitxml`` in a
subprocess, and reports the most tests in flight at once, the peak resident
memory of that run, of the same pytest collecting the suite only, and the
difference per test. Tests admitted together start a few per turn of the
loop, so with short waits the first end before the last start: a long
``--sleep`` keeps every admitted test in flight at once. Every other
installed pytest plugin is disabled (``-p no:NAME``). On Linux it also
measures, in a process of its own, what one greenlet suspended as deep as
a test in flight costs::

    python benchmarks/load.py
    python benchmarks/load.py --tests 2000 --concurrency 500
    python benchmarks/load.py --concurrency 10000 --sleep 20

The target is under 20 KiB per test.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = """
import asyncio
import pytest

pytestmark = pytest.mark.concurrent


@pytest.fixture(scope="session")
async def service():
    await asyncio.sleep(0.01)
    yield "service"


@pytest.fixture
async def client(service):
    await asyncio.sleep(0.01)
    yield service + " client"


@pytest.mark.parametrize("case", range({tests}))
async def test_case(case, client):
    print("case", case)
    await asyncio.sleep({sleep})
    if case % 97 == 0:
        assert case < 0, "a failure"
    if case % 89 == 0:
        await asyncio.sleep(30)
"""


def _other_plugins() -> list[str]:
    """``-p no:NAME`` for every installed pytest plugin but this one, so the
    run measures pytest and pytest-concurrently alone whatever else the
    interpreter has."""
    names = {
        entry.name
        for entry in importlib.metadata.entry_points(group="pytest11")
        if entry.name != "concurrently"
    }
    return [argument for name in sorted(names) for argument in ("-p", f"no:{name}")]


def _peak_kib(arguments: list[str], directory: Path) -> tuple[int, float, str, int | None]:
    """Run pytest with ``arguments`` in ``directory`` in a fresh process
    that reports its own peak resident memory; return it, the wall time,
    the last line of output and the most tests the run had in flight at
    once (from its end-of-run line), if it says."""
    probe = (
        "import resource, sys, pytest\n"
        "code = pytest.main(sys.argv[1:])\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", probe, *arguments],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    peak = next(int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("PEAK"))
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    last = lines[lines.index(next(line for line in lines if line.startswith("PEAK"))) - 1]
    in_flight = next(
        (
            int(found.group(1).replace(",", ""))
            for line in lines
            if (found := re.search(r"up to ([\d,]+) in flight", line))
        ),
        None,
    )
    return peak, wall, last, in_flight


#: Suspends greenlets at the depth a test in flight waits at (19 Python frames
#: from the worker's start to ``bridge.wait_for``, 5 of the calls between them
#: made through C, as pluggy's hook calls are) and prints the resident memory
#: each costs.
GREENLET_PROBE = """
import gc, sys
import greenlet

count, depth, through_c = map(int, sys.argv[1:])
hub = greenlet.getcurrent()

def resident_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4

def descend(left, c_left):
    if left == 0:
        hub.switch()
    elif c_left:
        descend(*(left - 1, c_left - 1))
    else:
        descend(left - 1, 0)

gc.disable()
before = resident_kib()
suspended = []
for _ in range(count):
    worker = greenlet.greenlet(descend)
    worker.switch(depth - 1, through_c)
    suspended.append(worker)
print((resident_kib() - before) / count)
"""


def _suspended_greenlet_kib(count: int = 5_000, depth: int = 19, through_c: int = 5) -> float:
    """Resident memory of one greenlet suspended as a test in flight is,
    measured apart in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", GREENLET_PROBE, str(count), str(depth), str(through_c)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def main() -> None:
    """Generate, run and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=1_000)
    parser.add_argument(
        "--sleep",
        type=float,
        default=0.5,
        help="seconds each test waits (default 0.5); tests admitted together start a "
        "few per turn of the loop, so short waits keep fewer in flight than admitted",
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="load-") as name:
        directory = Path(name)
        (directory / "test_load.py").write_text(
            SUITE.format(tests=options.tests, sleep=options.sleep)
        )
        (directory / "pytest.ini").write_text(
            # Longer than a test's wait, shorter than the wait of the 1 in 89
            # that time out.
            f"[pytest]\nconcurrently_timeout = {options.sleep + 10:g}\n"
            "concurrently_timeout_grace = 1\n"
        )
        common = ["-q", "-p", "no:cacheprovider", *_other_plugins()]
        collected, _, _, _ = _peak_kib([*common, "--collect-only"], directory)
        peak, wall, summary, in_flight = _peak_kib(
            [*common, f"--concurrency={options.concurrency}", "--junitxml=out.xml"], directory
        )
    per_test = (peak - collected) / options.tests
    print(
        f"tests: {options.tests:,} waiting {options.sleep:g} s each, "
        f"--concurrency={options.concurrency:,}, wall: {wall:.1f} s"
    )
    if in_flight is not None:
        print(f"most in flight at once: {in_flight:,}")
    print(f"outcome: {summary.strip('= ')}")
    print(f"peak RSS collecting only: {collected / 1024:,.1f} MiB")
    print(f"peak RSS of the run:      {peak / 1024:,.1f} MiB")
    print(f"per test: {per_test:,.1f} KiB (target: under 20 KiB)")
    if Path("/proc/self/statm").exists():
        greenlet_kib = _suspended_greenlet_kib()
        print(f"of which a test in flight holds a suspended greenlet: {greenlet_kib:,.1f} KiB")


if __name__ == "__main__":
    main()
