"""Terminal lines of concurrent tests: whole outcome lines, letters under their
own file, and live output (``-s``, live logs) tagged with the test's id."""

from __future__ import annotations

import re

import pytest
from conftest import all_overlap, intervals, read_events

#: Source of a ``gate`` module for inner sessions: tests wait until all have
#: started, then each waits for the call report of the one before it in
#: ``ORDER``, so that they overlap and end in a known order.
GATE = """
import asyncio

ORDER = []
_events = {}
_started = [0]

def _event(name):
    if name not in _events:
        _events[name] = asyncio.Event()
    return _events[name]

async def all_started(count):
    _started[0] += 1
    if _started[0] == count:
        _event("all started").set()
    await asyncio.wait_for(_event("all started").wait(), 10)

def reported(nodeid):
    _event(nodeid).set()

async def after_the_one_before(nodeid):
    index = ORDER.index(nodeid)
    if index:
        await asyncio.wait_for(_event(ORDER[index - 1]).wait(), 10)
"""

#: An inner conftest that opens the gate of the next test once a test's call
#: phase is reported (the next test's code runs only after that).
GATE_CONFTEST = """
import gate

def pytest_runtest_logreport(report):
    if report.when == "call":
        gate.reported(report.nodeid)
"""

TWO_FILES = """
import gate
import pytest
from recorder import record

gate.ORDER[:] = [
    "test_one.py::test_it[0]",
    "test_two.py::test_it[0]",
    "test_one.py::test_it[1]",
    "test_two.py::test_it[1]",
]

@pytest.mark.concurrent
@pytest.mark.parametrize("n", range(2))
async def test_it(n, request):
    nodeid = request.node.nodeid
    record(nodeid, "start")
    await gate.all_started(4)
    await gate.after_the_one_before(nodeid)
    record(nodeid, "end")
    if nodeid == "test_two.py::test_it[0]":
        pytest.skip("skip-two-0")
    assert nodeid != "test_two.py::test_it[1]"
"""

#: The order the tests of TWO_FILES end in, with their outcome.
ENDING = [
    ("test_one.py::test_it[0]", "PASSED", "."),
    ("test_two.py::test_it[0]", "SKIPPED (skip-two-0)", "s"),
    ("test_one.py::test_it[1]", "PASSED", "."),
    ("test_two.py::test_it[1]", "FAILED", "F"),
]


@pytest.fixture
def two_files(pytester: pytest.Pytester, recorder: None) -> None:
    pytester.makepyfile(gate=GATE)
    pytester.makeconftest(GATE_CONFTEST)
    pytester.makepyfile(test_one=TWO_FILES, test_two=TWO_FILES)


def _overlapped(pytester: pytest.Pytester, count: int) -> None:
    spans = intervals(read_events(pytester)[-2 * count :])
    assert len(spans) == count
    assert all_overlap(spans)


@pytest.mark.usefixtures("two_files")
def test_verbose_lines_are_whole_and_in_the_order_tests_end(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, skipped=1, failed=1)
    _overlapped(pytester, 4)
    lines = result.outlines
    first = next(i for i, line in enumerate(lines) if line.startswith("test_one.py::"))
    percents = (25, 50, 75, 100)
    for offset, ((nodeid, word, _), percent) in enumerate(zip(ENDING, percents, strict=True)):
        expected = rf"{re.escape(nodeid)} {re.escape(word)} +\[{percent:3d}%\]"
        assert re.fullmatch(expected, lines[first + offset]), lines[first + offset]
    nodeids = {nodeid for nodeid, _, _ in ENDING}
    assert not [line for line in lines if line.strip() in nodeids]


@pytest.mark.usefixtures("two_files")
def test_progress_letters_go_under_their_own_file(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, skipped=1, failed=1)
    _overlapped(pytester, 4)
    files = ("test_one.py ", "test_two.py ")
    file_lines = [line.split() for line in result.outlines if line.startswith(files)]
    assert [words[:2] for words in file_lines] == [
        [nodeid.partition("::")[0], letter] for nodeid, _, letter in ENDING
    ]


PRINTING = """
import contextvars
import sys
import gate
import pytest
from recorder import record

gate.ORDER[:] = [f"test_printing.py::test_prints[{n}]" for n in (2, 0, 1)]

@pytest.mark.concurrent
@pytest.mark.parametrize("n", range(3))
async def test_prints(n, request):
    nodeid = request.node.nodeid
    record(nodeid, "start")
    print(f"partial-{n}", end="")
    print(f"err-{n}", file=sys.stderr)
    await gate.all_started(3)
    # Every test has written the start of its line before any ends it.
    print(f" rest-{n}")
    await gate.after_the_one_before(nodeid)
    contextvars.Context().run(print, f"outside-{n}")
    print(f"tail-{n}", end="")
    record(nodeid, "end")
"""


@pytest.mark.usefixtures("recorder")
def test_with_s_each_line_carries_its_test_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(gate=GATE)
    pytester.makeconftest(GATE_CONFTEST)
    pytester.makepyfile(test_printing=PRINTING)
    result = pytester.runpytest("-s", "-v")
    result.assert_outcomes(passed=3)
    _overlapped(pytester, 3)
    out, err = result.outlines, result.errlines
    for n in range(3):
        nodeid = f"test_printing.py::test_prints[{n}]"
        # The partial line at the end of the call is written when it ends.
        assert [line for line in out if nodeid in line] == [
            f"[{nodeid}] partial-{n} rest-{n}",
            f"[{nodeid}] tail-{n}",
            f"{nodeid} PASSED",
        ]
        # Code outside any test's context writes untouched.
        assert f"outside-{n}" in out
        assert [line for line in err if f"err-{n}" in line] == [f"[{nodeid}] err-{n}"]


LOGGING = """
import logging
import gate
import pytest
from recorder import record

log = logging.getLogger("app")

@pytest.mark.concurrent
@pytest.mark.parametrize("n", range(3))
async def test_logs(n, request):
    record(request.node.nodeid, "start")
    log.info("first-%d", n)
    await gate.all_started(3)
    log.warning("second-%d\\ncontinued-%d", n, n)
    record(request.node.nodeid, "end")
"""


@pytest.mark.usefixtures("recorder")
def test_live_log_records_carry_their_test_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(gate=GATE)
    pytester.makepyfile(test_logging=LOGGING)
    result = pytester.runpytest("--log-cli-level=INFO")
    result.assert_outcomes(passed=3)
    _overlapped(pytester, 3)
    out = result.outlines
    for n in range(3):
        prefix = f"[test_logging.py::test_logs[{n}]] "
        mine = [line for line in out if re.search(rf"(first|second|continued)-{n}\b", line)]
        assert len(mine) == 3
        assert all(line.startswith(prefix) for line in mine), mine
        assert re.fullmatch(rf"{re.escape(prefix)}INFO +app:.* first-{n}", mine[0])
        assert mine[2] == f"{prefix}continued-{n}"
    assert not [line for line in out if "live log" in line]


SEQUENTIAL = """
import logging

def test_first():
    print("plain out 1")
    logging.getLogger("app").warning("plain record 1")

def test_second():
    print("plain out 2", end="")
    logging.getLogger("app").warning("plain record 2")
"""

CONCURRENT_NEIGHBOURS = """
import logging
import pytest

@pytest.mark.concurrent
@pytest.mark.parametrize("n", range(3))
async def test_async(n):
    print(f"async out {n}", end="")
    logging.getLogger("app").warning("async record %d", n)
"""


def _sequential_part(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("test_sync.py"))
    end = next(i for i in range(start, len(lines)) if not lines[i] or lines[i].startswith("="))
    # In -v output, a test that waited for the tests in flight says so.
    return [re.sub(r" \(waited [^)]*\)", "", line) for line in lines[start:end]]


@pytest.mark.parametrize(
    "options",
    [["-s"], ["-s", "-v"], [], ["--log-cli-level=INFO"]],
    ids=["s", "s-verbose", "dots", "live-logs"],
)
def test_sequential_tests_print_as_without_the_plugin(
    pytester: pytest.Pytester, options: list[str]
) -> None:
    pytester.makepyfile(test_async=CONCURRENT_NEIGHBOURS, test_sync=SEQUENTIAL)
    # Progress percentages count the other file's tests too.
    options = [*options, "-o", "console_output_style=classic"]
    mixed = pytester.runpytest(*options)
    mixed.assert_outcomes(passed=5)
    alone = pytester.runpytest(*options, "-p", "no:concurrently", "test_sync.py")
    alone.assert_outcomes(passed=2)
    assert _sequential_part(mixed.outlines) == _sequential_part(alone.outlines)
