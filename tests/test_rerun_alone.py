"""``--concurrently-rerun-alone``: tests that fail concurrently run again alone."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from conftest import read_events

pytestmark = pytest.mark.usefixtures("recorder")

SHARED_STATE_SUITE = """
import asyncio
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent
state = {"owner": None}

@pytest.fixture(scope="module")
async def service():
    record("service", "setup")
    yield "service"
    record("service", "teardown")

async def test_claims_the_state(service):
    state["owner"] = "claims"
    await asyncio.sleep(0.1)
    assert state["owner"] == "claims"

async def test_takes_the_state(service):
    await asyncio.sleep(0.02)
    state["owner"] = "takes"

async def test_always_fails():
    assert 1 == 2

def test_sync():
    pass
"""


def test_a_test_that_fails_only_concurrently_passes_when_run_again_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_shared=SHARED_STATE_SUITE)
    pytester.makeconftest(
        """
        from recorder import record

        def pytest_runtest_logreport(report):
            record(report.nodeid, "report", when=report.when, outcome=report.outcome)
        """
    )
    result = pytester.runpytest(
        "--concurrently-rerun-alone", "--junitxml=results.xml", "-p", "cacheprovider", "-v"
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_claims_the_state PASSED (run again alone after failing concurrently)*",
            "*= failed when run concurrently, passed alone =*",
            "test_shared.py::test_claims_the_state: call: AssertionError: assert 'takes' == "
            "'claims'*",
            "*mark it @pytest.mark.isolated, or fix the state it shares with other tests.",
            "*= failed when run concurrently, and alone =*",
            "test_shared.py::test_always_fails: call: assert 1 == 2",
            "concurrently: * 2 failed concurrently and ran again alone (1 passed)",
        ]
    )
    events = read_events(pytester)
    # Every test is reported once, three phases each.
    reports = [(e.name, e.extra["when"]) for e in events if e.what == "report"]
    names = ("test_claims_the_state", "test_takes_the_state", "test_always_fails", "test_sync")
    phases = ("setup", "call", "teardown")
    assert sorted(reports) == sorted(
        (f"test_shared.py::{name}", when) for name in names for when in phases
    )
    # The module fixture was set up again for the run alone.
    assert [e.what for e in events if e.name == "service"] == [
        "setup",
        "teardown",
        "setup",
        "teardown",
    ]
    cases = {
        case.get("name"): [child.tag for child in case]
        for case in ET.parse(pytester.path / "results.xml").getroot().iter("testcase")
    }
    assert cases["test_claims_the_state"] == []
    assert cases["test_always_fails"] == ["failure"]
    lastfailed = json.loads(
        (pytester.path / ".pytest_cache" / "v" / "cache" / "lastfailed").read_text()
    )
    assert list(lastfailed) == ["test_shared.py::test_always_fails"]


def test_without_the_option_the_end_of_run_line_suggests_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shared=SHARED_STATE_SUITE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "concurrently: *; 2 failed while running concurrently "
            "(--concurrently-rerun-alone runs them again alone)"
        ]
    )
    result.stdout.no_fnmatch_line("*passed alone*")


def test_the_ini_option_turns_reruns_on(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_rerun_alone = true\n")
    pytester.makepyfile(test_shared=SHARED_STATE_SUITE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
