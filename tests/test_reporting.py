"""Every test reports through the standard hooks, so reporters keep working."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from conftest import Event, read_events

pytestmark = pytest.mark.usefixtures("recorder")


def perf_span(events: list[Event], name: str) -> float:
    """How long ``name`` ran between its recorded start and end, by
    ``time.perf_counter``: the clock pytest measures durations with."""
    (start,) = (e.extra["perf"] for e in events if e.name == name and e.what == "start")
    (end,) = (e.extra["perf"] for e in events if e.name == name and e.what == "end")
    assert isinstance(start, float)
    assert isinstance(end, float)
    return end - start


def at_least(reported: str, span: float) -> bool:
    """Whether a duration printed as ``reported`` covers ``span``: rounding to
    the printed digits keeps the order of the two, so no margin is needed."""
    digits = len(reported.partition(".")[2])
    return float(reported) >= float(f"{span:.{digits}f}")


MIXED = """
import asyncio
import time
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

@pytest.fixture
async def broken_teardown():
    yield
    raise RuntimeError("teardown broke")

async def test_pass():
    print("output of test_pass")
    record("test_pass", "start", perf=time.perf_counter())
    await asyncio.sleep(0.1)
    record("test_pass", "end", perf=time.perf_counter())

async def test_fail():
    await asyncio.sleep(0.05)
    assert 1 == 2

@pytest.mark.skip(reason="not today")
async def test_skip():
    pass

@pytest.mark.xfail(reason="known")
async def test_xfail():
    await asyncio.sleep(0.05)
    assert False

async def test_error_in_teardown(broken_teardown):
    await asyncio.sleep(0.02)

def test_sync_pass():
    pass
"""

#: The hook events that ``HOOK_LOG`` records, by the test's node id.
HOOKS = ("logstart", "report", "logfinish")

HOOK_LOG = """
from recorder import record

def pytest_runtest_logstart(nodeid):
    record(nodeid, "logstart")

def pytest_runtest_logreport(report):
    record(report.nodeid, "report", when=report.when, outcome=report.outcome)

def pytest_runtest_logfinish(nodeid):
    record(nodeid, "logfinish")
"""


def test_outcomes_and_hook_sequence(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOOK_LOG)
    pytester.makepyfile(MIXED)
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=3, failed=1, skipped=1, xfailed=1, errors=1)
    events = [e for e in read_events(pytester) if e.what in HOOKS]
    nodeids = {e.name for e in events}
    assert len(nodeids) == 6
    for nodeid in nodeids:
        sequence = [(e.what, e.extra.get("when")) for e in events if e.name == nodeid]
        assert sequence[0] == ("logstart", None)
        assert sequence[-1] == ("logfinish", None)
        whens = [when for what, when in sequence if what == "report"]
        # Exactly one setup and one teardown report; a call report only after
        # a passed setup.
        assert whens in (["setup", "call", "teardown"], ["setup", "teardown"])
    result.stdout.fnmatch_lines(["*RuntimeError: teardown broke*", "*output of test_pass*"])


def test_junitxml(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXED)
    pytester.runpytest("--junitxml=report.xml", "-o", "junit_logging=system-out")
    root = ET.parse(pytester.path / "report.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {
        "test_pass",
        "test_fail",
        "test_skip",
        "test_xfail",
        "test_error_in_teardown",
        "test_sync_pass",
    }
    assert cases["test_fail"].find("failure") is not None
    assert cases["test_skip"].find("skipped") is not None
    assert cases["test_xfail"].find("skipped") is not None
    assert cases["test_error_in_teardown"].find("error") is not None
    assert cases["test_pass"].find("failure") is None
    assert "output of test_pass" in (cases["test_pass"].findtext("system-out") or "")
    # The reported time covers the call the test recorded from inside.
    span = perf_span(read_events(pytester), "test_pass")
    assert at_least(cases["test_pass"].get("time", "0"), span)


def test_verbose_output_names_every_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXED)
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines_random(
        [
            "*test_pass PASSED*",
            "*test_fail FAILED*",
            "*test_skip SKIPPED*",
            "*test_xfail XFAIL*",
            "*test_sync_pass PASSED*",
        ]
    )


def test_durations_are_real_per_phase(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import time
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture
        async def slow_setup():
            record("setup", "start", perf=time.perf_counter())
            await asyncio.sleep(0.3)
            record("setup", "end", perf=time.perf_counter())

        async def test_slow(slow_setup):
            record("call", "start", perf=time.perf_counter())
            await asyncio.sleep(0.2)
            record("call", "end", perf=time.perf_counter())

        async def test_other():
            await asyncio.sleep(0.2)
        """
    )
    result = pytester.runpytest("--durations=0", "-vv")
    result.assert_outcomes(passed=2)
    lines = result.stdout.lines
    setup_line = next(line for line in lines if "setup" in line and "test_slow" in line)
    call_line = next(line for line in lines if " call " in line and "test_slow" in line)
    # Each phase's duration covers what the test recorded in that phase.
    events = read_events(pytester)
    assert at_least(setup_line.split("s")[0], perf_span(events, "setup"))
    assert at_least(call_line.split("s")[0], perf_span(events, "call"))


def test_last_failed_reruns_only_failures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXED)
    pytester.runpytest()
    result = pytester.runpytest("--lf")
    result.assert_outcomes(failed=1, errors=1, passed=1)


def test_selection_and_collect_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXED)
    pytester.runpytest("-k", "pass and not sync").assert_outcomes(passed=1)
    pytester.runpytest("test_selection_and_collect_only.py::test_fail").assert_outcomes(failed=1)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*6 tests collected*"])
    result.stdout.no_fnmatch_line("concurrently:*")


def test_deselection_by_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(config, items):
            keep = [item for item in items if item.name != "test_fail"]
            config.hook.pytest_deselected(items=[i for i in items if i not in keep])
            items[:] = keep
        """
    )
    pytester.makepyfile(MIXED)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, skipped=1, xfailed=1, errors=1, deselected=1)


def test_exitfirst_stops_admitting_and_tears_everything_down(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent
        failed_fast = asyncio.Event()

        @pytest.fixture(scope="module")
        async def shared():
            yield
            record("shared", "teardown")

        @pytest.fixture
        async def own(request):
            yield
            record(request.node.name, "teardown")
            if request.node.name == "test_fails_fast":
                failed_fast.set()

        async def test_fails_fast(shared, own):
            record("test_fails_fast", "start")
            await asyncio.sleep(0.05)
            assert False

        @pytest.mark.parametrize("n", range(20))
        async def test_slow(n, shared, own):
            record(f"test_slow[{n}]", "start")
            # Still in flight when test_fails_fast has failed and is torn down.
            await asyncio.wait_for(failed_fast.wait(), 10)
        """
    )
    result = pytester.runpytest("-x", "--concurrency=3")
    outcomes = result.parseoutcomes()
    events = read_events(pytester)
    started = {e.name for e in events if e.what == "start"}
    # Tests already in flight are interrupted and torn down; nothing new is
    # admitted.
    assert started == {"test_fails_fast", "test_slow[0]", "test_slow[1]"}
    assert outcomes == {"failed": 1, "interrupted": 2}
    torn_down = {e.name for e in events if e.what == "teardown"}
    assert torn_down == started | {"shared"}
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_maxfail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("n", range(10))
        async def test_fails(n):
            await asyncio.sleep(0.05 * (n + 1))
            assert False
        """
    )
    result = pytester.runpytest("--maxfail=2", "--concurrency=2")
    # test_fails[1] is the second failure; test_fails[2] was already in flight
    # and is interrupted; test_fails[3:] never start.
    assert result.parseoutcomes() == {"failed": 2, "interrupted": 1}
    result.stdout.no_fnmatch_line("*test_fails?3?*")


def test_end_of_run_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(4))
        async def test_it(n):
            await asyncio.sleep(0.2)
        """
    )
    result = pytester.runpytest()
    result.stdout.re_match_lines(
        [
            r"concurrently: 4 tests in \d+\.\d s, \d+\.\d s of test time \(\d+\.\dx\), "
            r"up to 4 in flight"
        ]
    )


def test_an_error_outside_any_test_phase_ends_the_session_loudly(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        def pytest_runtest_logstart(nodeid):
            if nodeid.endswith("test_two"):
                raise RuntimeError("a reporting plugin broke")
        """
    )
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent

        async def test_one():
            await asyncio.sleep(0.05)

        async def test_two():
            pass
        """
    )
    result = pytester.runpytest()
    # As in plain pytest, an exception from a reporting hook is an internal
    # error of the session, never a silently missing test.
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["*RuntimeError: a reporting plugin broke*"])


def test_assertion_explanations_of_concurrent_tests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_assertrepr_compare(op, left, right):
            if left == "custom":
                return ["explained by the conftest"]
        """
    )
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent

        async def test_lists():
            await asyncio.sleep(0.05)
            assert [1, 2, 3] == [1, 2, 4]

        async def test_custom():
            await asyncio.sleep(0.05)
            assert "custom" == "other"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*At index 2 diff: 3 != 4*"])
    result.stdout.fnmatch_lines(["*assert explained by the conftest*"])


def test_warnings_are_recorded_for_the_test_that_issued_them(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from recorder import record

        def pytest_warning_recorded(warning_message, nodeid, when):
            record(nodeid, "warning", message=str(warning_message.message), when=when)
        """
    )
    pytester.makepyfile(
        """
        import asyncio
        import warnings
        import pytest

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("n", range(3))
        async def test_warns(n):
            await asyncio.sleep(0.05 * (3 - n))
            warnings.warn(f"from test {n}", UserWarning)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, warnings=3)
    recorded = {(e.name, e.extra["message"]) for e in read_events(pytester) if e.what == "warning"}
    module = "test_warnings_are_recorded_for_the_test_that_issued_them.py"
    assert recorded == {(f"{module}::test_warns[{n}]", f"from test {n}") for n in range(3)}


def test_warning_filters_from_the_command_line_apply(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import warnings
        import pytest

        @pytest.mark.concurrent
        async def test_warns():
            warnings.warn("now an error", UserWarning)
        """
    )
    result = pytester.runpytest("-W", "error::UserWarning")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*UserWarning: now an error*"])


def test_setup_show_keeps_output_with_its_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.fixture
        async def resource():
            yield

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(2))
        async def test_prints(n, resource):
            print(f"printed by test_prints[{n}]")
            await asyncio.sleep(0.05)
            assert False

        def test_alone():
            assert False
        """
    )
    result = pytester.runpytest("--setup-show")
    result.assert_outcomes(failed=3)
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    for report in reports:
        if report.when != "call":
            continue
        out = dict(report.sections).get("Captured stdout call", "")
        if "test_prints" in report.nodeid:
            name = report.nodeid.split("::")[-1]
            assert out == f"printed by {name}\n"
        else:
            assert "printed by" not in out


def test_the_same_warning_is_reported_for_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import warnings
        import pytest

        pytestmark = pytest.mark.concurrent

        def helper():
            warnings.warn("from the helper", UserWarning)

        async def test_one():
            helper()

        async def test_two():
            helper()
        """
    )
    pytester.runpytest("--concurrency=1").assert_outcomes(passed=2, warnings=2)
