"""A concurrent test that changes os.environ, the working directory or
sys.path while other tests are in flight, other than through monkeypatch,
gets a SharedStateWarning naming it."""

from __future__ import annotations

import os
import sys
import types

import pytest
from conftest import Event, all_overlap, intervals, read_events

pytestmark = pytest.mark.usefixtures("recorder")

#: The start of every inner module: ``meet(name, point)`` records the point
#: and waits until every one of the module's ``TESTS`` concurrent tests has
#: reached it, so what each does between two points happens while all are in
#: flight (the recorded times show it).
MEETING = """
import asyncio
import os
import sys

import pytest
from recorder import record

TESTS = {tests}
arrived = {{"start": 0, "changed": 0}}
everyone = {{point: asyncio.Event() for point in arrived}}


async def meet(name, point):
    record(name, point)
    arrived[point] += 1
    if arrived[point] == TESTS:
        everyone[point].set()
    await asyncio.wait_for(everyone[point].wait(), 10)
    record(name, "met " + point)
"""

CHANGES = (
    MEETING.format(tests=6)
    + """
pytestmark = pytest.mark.concurrent
HERE = os.path.dirname(os.path.abspath(__file__))


async def test_env():
    await meet("env", "start")
    try:
        record("env", "change")
        os.environ["CONCURRENTLY_SHARED"] = "1"
        del os.environ["CONCURRENTLY_SHARED"]
    finally:
        await meet("env", "changed")


async def test_cwd():
    await meet("cwd", "start")
    before = os.getcwd()
    try:
        record("cwd", "change")
        os.chdir(os.path.join(HERE, "elsewhere"))
        os.chdir(before)
    finally:
        await meet("cwd", "changed")


async def test_fchdir():
    await meet("fchdir", "start")
    before = os.getcwd()
    fd = os.open(os.path.join(HERE, "by_descriptor"), os.O_RDONLY)
    try:
        record("fchdir", "change")
        os.fchdir(fd)
        os.chdir(before)
    finally:
        os.close(fd)
        await meet("fchdir", "changed")


async def add_entry():
    record("path", "change")
    sys.path.append("/concurrently/added")
    sys.path.remove("/concurrently/added")


async def test_path_in_a_task():
    await meet("path", "start")
    try:
        await asyncio.create_task(add_entry())
    finally:
        await meet("path", "changed")


async def test_path_replaced():
    await meet("replaced", "start")
    saved = sys.path
    try:
        record("replaced", "change")
        sys.path = [*saved, "/concurrently/replaced"]
    finally:
        sys.path = saved
        await meet("replaced", "changed")


async def test_quiet():
    await meet("quiet", "start")
    await meet("quiet", "changed")
"""
)


def warnings_summary(lines: list[str]) -> dict[str, str]:
    """Node id -> the text of its entries in the warnings summary."""
    start = next(i for i, line in enumerate(lines) if "warnings summary" in line)
    entries: dict[str, str] = {}
    nodeid = ""
    for line in lines[start + 1 :]:
        if line.startswith("-- Docs:"):
            break
        if line and not line.startswith(" "):
            nodeid = line.strip()
            entries.setdefault(nodeid, "")
        elif nodeid:
            entries[nodeid] += line.strip() + "\n"
    return entries


def assert_changed_while_all_in_flight(events: list[Event]) -> None:
    """Every change was made after every test started and before any ended."""
    times = {
        what: [e.t for e in events if e.what == what] for what in ("start", "change", "met changed")
    }
    assert times["change"]
    assert max(times["start"]) < min(times["change"])
    assert max(times["change"]) < min(times["met changed"])


def test_each_change_while_others_are_in_flight_is_named_on_its_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.mkdir("elsewhere")
    pytester.mkdir("by_descriptor")
    pytester.makepyfile(test_shared=CHANGES)
    environ, cwd, path, chdir = os.environ, os.getcwd(), list(sys.path), os.chdir
    result = pytester.runpytest()
    result.assert_outcomes(passed=6, warnings=4)
    assert_changed_while_all_in_flight(read_events(pytester))
    warned = warnings_summary(result.outlines)
    assert set(warned) == {
        f"test_shared.py::{name}"
        for name in ("test_env", "test_cwd", "test_fchdir", "test_path_in_a_task")
    }
    here = str(pytester.path)
    expected = {
        "test_env": (
            "set os.environ['CONCURRENTLY_SHARED']",
            "monkeypatch.setenv or monkeypatch.delenv",
            'os.environ["CONCURRENTLY_SHARED"] = "1"',
        ),
        "test_cwd": (
            f"changed the working directory to {os.path.join(here, 'elsewhere')!r}",
            "monkeypatch.chdir",
            'os.chdir(os.path.join(HERE, "elsewhere"))',
        ),
        "test_fchdir": (
            "changed the working directory to ",
            "monkeypatch.chdir",
            "os.fchdir(fd)",
        ),
        "test_path_in_a_task": (
            "added '/concurrently/added' to sys.path",
            "monkeypatch.syspath_prepend",
            'sys.path.append("/concurrently/added")',
        ),
    }
    for name, (what, layered, line) in expected.items():
        text = warned[f"test_shared.py::{name}"]
        # Once per test and kind: the change back is not warned about again.
        assert text.count("SharedStateWarning") == 1, text
        assert f"SharedStateWarning: test_shared.py::{name} {what}" in text, text
        assert "while 5 other tests were in flight" in text, text
        assert f"Use {layered} (monkeypatch takes out only this test's change" in text, text
        assert "@pytest.mark.isolated" in text, text
        assert "concurrently_isolated_fixtures" in text, text
        # Where the change was made: the test's own line.
        assert line in text, text
    # Everything is as it was once the run is over.
    assert os.environ is environ
    assert type(os.environ) is os._Environ
    assert "CONCURRENTLY_SHARED" not in os.environ
    assert os.getcwd() == cwd
    assert os.chdir is chdir
    assert sys.path == path
    assert type(sys.path) is list
    assert type(sys) is types.ModuleType


LAYERED = (
    MEETING.format(tests=5)
    + """
pytestmark = pytest.mark.concurrent
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def shared_setting():
    # Set up once for the tests that use it: no one test's doing.
    os.environ["CONCURRENTLY_SHARED_FIXTURE"] = "1"
    yield
    del os.environ["CONCURRENTLY_SHARED_FIXTURE"]


async def test_setenv(monkeypatch, shared_setting):
    await meet("setenv", "start")
    try:
        record("setenv", "change")
        monkeypatch.setenv("CONCURRENTLY_LAYERED", "1")
        monkeypatch.delenv("HOME", raising=False)
        assert os.environ["CONCURRENTLY_LAYERED"] == "1"
        monkeypatch.undo()
    finally:
        await meet("setenv", "changed")


async def test_chdir(monkeypatch):
    await meet("chdir", "start")
    try:
        record("chdir", "change")
        monkeypatch.chdir(os.path.join(HERE, "elsewhere"))
        assert os.getcwd() == os.path.join(HERE, "elsewhere")
        monkeypatch.undo()
    finally:
        await meet("chdir", "changed")


async def test_syspath_prepend(monkeypatch):
    await meet("prepend", "start")
    try:
        record("prepend", "change")
        monkeypatch.syspath_prepend(os.path.join(HERE, "elsewhere"))
        assert sys.path[0] == os.path.join(HERE, "elsewhere")
        monkeypatch.undo()
    finally:
        await meet("prepend", "changed")


async def test_syspath_replaced(monkeypatch):
    await meet("replaced", "start")
    try:
        record("replaced", "change")
        monkeypatch.setattr(sys, "path", [*sys.path, "/concurrently/replaced"])
        monkeypatch.undo()
    finally:
        await meet("replaced", "changed")


async def test_unlayered(shared_setting):
    await meet("unlayered", "start")
    try:
        record("unlayered", "change")
        os.environ["CONCURRENTLY_UNLAYERED"] = "1"
        del os.environ["CONCURRENTLY_UNLAYERED"]
    finally:
        await meet("unlayered", "changed")
"""
)


def test_changes_through_monkeypatch_and_shared_fixtures_are_not_warned_about(
    pytester: pytest.Pytester,
) -> None:
    # Tests that use monkeypatch run alone unless it is taken off the list.
    pytester.makeini("[pytest]\nconcurrently_isolated_fixtures =\n")
    pytester.mkdir("elsewhere")
    pytester.makepyfile(test_layered=LAYERED)
    result = pytester.runpytest()
    result.assert_outcomes(passed=5, warnings=1)
    assert_changed_while_all_in_flight(read_events(pytester))
    warned = warnings_summary(result.outlines)
    assert list(warned) == ["test_layered.py::test_unlayered"]
    assert "set os.environ['CONCURRENTLY_UNLAYERED']" in warned["test_layered.py::test_unlayered"]


ALONE = (
    MEETING.format(tests=2)
    + """
HERE = os.path.dirname(os.path.abspath(__file__))


def change_everything(name):
    before = os.getcwd()
    record(name, "change")
    os.environ["CONCURRENTLY_SHARED"] = "1"
    del os.environ["CONCURRENTLY_SHARED"]
    os.chdir(os.path.join(HERE, "elsewhere"))
    os.chdir(before)
    sys.path.append("/concurrently/added")
    sys.path.remove("/concurrently/added")


@pytest.mark.isolated
async def test_isolated():
    record("isolated", "begin")
    change_everything("isolated")
    record("isolated", "finish")


def test_sequential():
    record("sequential", "begin")
    change_everything("sequential")
    record("sequential", "finish")


@pytest.mark.concurrent(group="solo")
async def test_alone_in_flight():
    record("solo", "begin")
    change_everything("solo")
    record("solo", "finish")


@pytest.mark.concurrent(group="pair")
async def test_unlayered():
    await meet("unlayered", "start")
    try:
        change_everything("unlayered")
    finally:
        await meet("unlayered", "changed")


@pytest.mark.concurrent(group="pair")
async def test_quiet():
    await meet("quiet", "start")
    await meet("quiet", "changed")
"""
)


def test_a_test_alone_in_flight_is_not_warned_about(pytester: pytest.Pytester) -> None:
    pytester.mkdir("elsewhere")
    pytester.makepyfile(test_alone=ALONE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=5, warnings=3)
    events = read_events(pytester)
    pair = [e for e in events if e.name in ("unlayered", "quiet")]
    assert_changed_while_all_in_flight(pair)
    # The others ran with no other test in flight.
    pair_start, pair_end = min(e.t for e in pair), max(e.t for e in pair)
    for name in ("isolated", "sequential", "solo"):
        times = [e.t for e in events if e.name == name]
        assert len(times) == 3
        assert max(times) < pair_start or min(times) > pair_end
    warned = warnings_summary(result.outlines)
    assert list(warned) == ["test_alone.py::test_unlayered"]
    text = warned["test_alone.py::test_unlayered"]
    assert text.count("while 1 other test was in flight; it sees the change") == 3, text
    for what in ("os.environ['CONCURRENTLY_SHARED']", "the working directory to", "to sys.path"):
        assert what in text, text


ERRORS = (
    MEETING.format(tests=4)
    + """
pytestmark = pytest.mark.concurrent
HERE = os.path.dirname(os.path.abspath(__file__))
BEFORE = os.getcwd()


async def test_env():
    await meet("env", "start")
    try:
        record("env", "change")
        os.environ["CONCURRENTLY_SHARED"] = "1"
    finally:
        await meet("env", "changed")


async def test_cwd():
    await meet("cwd", "start")
    try:
        record("cwd", "change")
        os.chdir(os.path.join(HERE, "elsewhere"))
    finally:
        await meet("cwd", "changed")


async def test_path():
    await meet("path", "start")
    try:
        record("path", "change")
        sys.path.insert(0, "/concurrently/added")
    finally:
        await meet("path", "changed")


async def test_untouched():
    await meet("untouched", "start")
    await meet("untouched", "changed")
    # The changes that failed their tests were not made.
    assert "CONCURRENTLY_SHARED" not in os.environ
    assert os.getcwd() == BEFORE
    assert "/concurrently/added" not in sys.path
"""
)


def test_as_an_error_it_fails_the_test_and_the_change_is_not_made(
    pytester: pytest.Pytester,
) -> None:
    pytester.mkdir("elsewhere")
    pytester.makepyfile(test_errors=ERRORS)
    result = pytester.runpytest("-W", "error::pytest_concurrently.SharedStateWarning")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=3, passed=1)
    assert_changed_while_all_in_flight(read_events(pytester))
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    errors = [line for line in result.outlines if line.startswith("E ")]
    for message in (
        "test_env set os.environ['CONCURRENTLY_SHARED'] while 3 other tests were in flight",
        "test_cwd changed the working directory to",
        "test_path added '/concurrently/added' to sys.path",
    ):
        expected = f"pytest_concurrently.SharedStateWarning: test_errors.py::{message}"
        assert sum(expected in line for line in errors) == 1, errors
    # Each traceback ends at the test's own line.
    assert '>           os.environ["CONCURRENTLY_SHARED"] = "1"' in result.outlines
    assert "process_state.py" not in result.stdout.str()
    assert "CONCURRENTLY_SHARED" not in os.environ


def test_the_warning_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_shared_state = ignore\n")
    pytester.mkdir("elsewhere")
    pytester.mkdir("by_descriptor")
    pytester.makepyfile(test_shared=CHANGES)
    result = pytester.runpytest()
    result.assert_outcomes(passed=6, warnings=0)
    assert_changed_while_all_in_flight(read_events(pytester))
    result.stdout.no_fnmatch_line("*SharedStateWarning*")


def test_a_bad_shared_state_setting_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_shared_state = sometimes\n")
    pytester.makepyfile("async def test_nothing(): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*the concurrently_shared_state ini option must be one of warn, ignore*"]
    )


def test_a_package_put_on_sys_path_by_pytest_is_no_test_s_doing(
    pytester: pytest.Pytester,
) -> None:
    """In prepend import mode, pytest puts a package's root first on
    sys.path when it sets the package up, if something else is first: a
    neighbour's monkeypatch.syspath_prepend, say. That is the collector's
    setup, not the test's change."""
    pytester.makeini("[pytest]\nconcurrently_isolated_fixtures =\n")
    for package in ("pkg_a", "pkg_b"):
        pytester.mkpydir(package)
    (pytester.path / "pkg_a" / "test_a.py").write_text(
        "import asyncio\n"
        "from recorder import record\n\n"
        "async def test_a(monkeypatch):\n"
        "    record('a', 'start')\n"
        "    monkeypatch.syspath_prepend('/concurrently/elsewhere')\n"
        "    await asyncio.sleep(0.3)\n"
        "    record('a', 'end')\n"
    )
    (pytester.path / "pkg_b" / "test_b.py").write_text(
        "import asyncio\n"
        "from recorder import record\n\n"
        "async def test_b():\n"
        "    record('b', 'start')\n"
        "    await asyncio.sleep(0.1)\n"
        "    record('b', 'end')\n"
    )
    result = pytester.runpytest("--concurrently-mode=auto", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert all_overlap(intervals(read_events(pytester)))
    assert "SharedStateWarning" not in result.stdout.str()
