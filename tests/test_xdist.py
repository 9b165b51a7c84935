"""Concurrent runs under pytest-xdist: each worker runs its share
concurrently, and what the plugin promises holds across workers.

Inner tests record with the ``recorder`` module (a monotonic clock, which
is one clock for every process on the machine) and their worker's id; the
assertions are on overlap, placement and outcomes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

import pytest
from conftest import RECORDER, intervals, read_events

pytest.importorskip("xdist")

XDIST = ("-p", "xdist", "-n", "2", "-p", "no:randomly")

#: Inner-test helpers: ``entered(name)`` / ``left(name)`` record the test's
#: interval and its worker; ``in_flight`` counts this worker's tests.
HELPERS = (
    RECORDER
    + """
import asyncio, os

in_flight = 0
peak = 0

def worker():
    return os.environ.get("PYTEST_XDIST_WORKER", "main")

def entered(name):
    global in_flight, peak
    in_flight += 1
    peak = max(peak, in_flight)
    record(name, "start", worker=worker())

def left(name):
    global in_flight
    in_flight -= 1
    record(name, "end", worker=worker(), peak=peak)

async def until_in_flight_together(count=2, timeout=20):
    # Until `count` tests of this worker have been in flight at once (the
    # peak, which a test polling now and then cannot miss): passes only when
    # the worker runs tests concurrently.
    async def wait():
        while peak < count:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), timeout)
"""
)


@pytest.fixture
def helpers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(recorder=RECORDER, helpers=HELPERS)


def workers_of(pytester: pytest.Pytester) -> dict[str, str]:
    """test name -> the worker it ran on."""
    return {
        event.name: str(event.extra["worker"])
        for event in read_events(pytester)
        if event.what == "start"
    }


@pytest.mark.parametrize("dist", ["load", "worksteal", "each"])
def test_each_worker_runs_its_share_concurrently(
    pytester: pytest.Pytester, helpers: None, dist: str
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from helpers import entered, left, until_in_flight_together

        @pytest.mark.concurrent
        @pytest.mark.parametrize("i", range(8))
        async def test_waits_for_others(i):
            entered(f"t{i}")
            try:
                await until_in_flight_together(2)
            finally:
                left(f"t{i}")
        """
    )
    result = pytester.runpytest(*XDIST, f"--dist={dist}")
    # Under --dist each, every worker runs every test.
    count = 16 if dist == "each" else 8
    result.assert_outcomes(passed=count)
    events = read_events(pytester)
    peaks: dict[str, int] = defaultdict(int)
    for event in events:
        if event.what == "end":
            worker = str(event.extra["worker"])
            peaks[worker] = max(peaks[worker], int(str(event.extra["peak"])))
    assert sorted(peaks) == ["gw0", "gw1"]
    assert all(peak >= 2 for peak in peaks.values()), peaks
    result.stdout.fnmatch_lines(
        [f"concurrently: {count} tests on 2 workers in *, up to * per worker"]
    )


def test_reports_output_and_junitxml_name_each_test(
    pytester: pytest.Pytester, helpers: None
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import logging
        import warnings
        import pytest
        from helpers import entered, left, until_in_flight_together

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("i", range(6))
        async def test_prints(i):
            entered(f"t{i}")
            try:
                await until_in_flight_together(2)
                print(f"out of test {i}")
                logging.getLogger("inner").warning("log of test %d", i)
                if i == 4:
                    warnings.warn(UserWarning("warned by test 4"))
                assert i not in (1, 5), f"test {i} fails"
            finally:
                left(f"t{i}")
        """
    )
    result = pytester.runpytest(
        *XDIST, "-v", "--junitxml=out.xml", "-o", "junit_logging=system-out"
    )
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(["*test_prints[[]4[]]*", "*UserWarning: warned by test 4*"])
    for failing in (1, 5):
        section = result.stdout.str().split(f"_ test_prints[{failing}] _")[1].split("\n_")[0]
        assert f"out of test {failing}" in section
        assert f"log of test {failing}" in section
        other = 5 if failing == 1 else 1
        assert f"out of test {other}" not in section
    tree = ET.parse(pytester.path / "out.xml")
    cases = {str(case.get("name")): case for case in tree.iter("testcase")}
    assert sorted(cases) == [f"test_prints[{i}]" for i in range(6)]
    for i in range(6):
        out = cases[f"test_prints[{i}]"].findtext("system-out") or ""
        assert f"out of test {i}" in out
        assert all(f"out of test {j}" not in out for j in range(6) if j != i)
    failed = sorted(name for name, case in cases.items() if case.find("failure") is not None)
    assert failed == ["test_prints[1]", "test_prints[5]"]


@pytest.mark.parametrize("dist", ["loadfile", "loadscope"])
def test_dist_modes_keep_their_units_on_one_worker(
    pytester: pytest.Pytester, helpers: None, dist: str
) -> None:
    for module in ("a", "b", "c", "d"):
        pytester.makepyfile(
            **{
                f"test_{module}": f"""
                import pytest
                from helpers import entered, left

                @pytest.mark.concurrent
                @pytest.mark.parametrize("i", range(3))
                async def test_one(i):
                    entered(f"{module}{{i}}")
                    left(f"{module}{{i}}")
                """
            }
        )
    result = pytester.runpytest(*XDIST, f"--dist={dist}")
    result.assert_outcomes(passed=12)
    placed = workers_of(pytester)
    for module in ("a", "b", "c", "d"):
        assert len({placed[f"{module}{i}"] for i in range(3)}) == 1, placed
    assert set(placed.values()) == {"gw0", "gw1"}


def test_xdist_group_and_concurrent_group_keep_tests_on_one_worker(
    pytester: pytest.Pytester, helpers: None
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from helpers import entered, left

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("i", range(6))
        async def test_free(i):
            entered(f"free{i}")
            left(f"free{i}")

        @pytest.mark.xdist_group("pair")
        @pytest.mark.parametrize("i", range(2))
        async def test_xdist_group(i):
            entered(f"pair{i}")
            left(f"pair{i}")

        @pytest.mark.concurrent(group="red")
        @pytest.mark.parametrize("i", range(2))
        async def test_red(i):
            entered(f"red{i}")
            await asyncio.sleep(0.05)
            left(f"red{i}")

        @pytest.mark.concurrent(group="blue")
        @pytest.mark.parametrize("i", range(2))
        async def test_blue(i):
            entered(f"blue{i}")
            await asyncio.sleep(0.05)
            left(f"blue{i}")
        """
    )
    result = pytester.runpytest(*XDIST, "--dist=loadgroup")
    result.assert_outcomes(passed=12)
    placed = workers_of(pytester)
    assert placed["pair0"] == placed["pair1"]
    grouped = {placed[name] for name in ("red0", "red1", "blue0", "blue1")}
    assert len(grouped) == 1, placed
    spans = intervals(read_events(pytester))
    for red in ("red0", "red1"):
        for blue in ("blue0", "blue1"):
            (a, b), (c, d) = spans[red], spans[blue]
            assert b <= c or d <= a, f"{red} and {blue} overlapped"


def test_a_resource_holds_across_workers(pytester: pytest.Pytester, helpers: None) -> None:
    pytester.makepyfile(
        test_a="""
        import asyncio
        import pytest
        from helpers import entered, left

        pytestmark = pytest.mark.concurrent

        @pytest.mark.resource("db")
        @pytest.mark.parametrize("i", range(3))
        async def test_marked(i):
            entered(f"marked{i}")
            await asyncio.sleep(0.05)
            left(f"marked{i}")

        @pytest.mark.parametrize("i", range(6))
        async def test_free(i):
            entered(f"free{i}")
            left(f"free{i}")
        """,
        test_b="""
        import asyncio
        import pytest
        import pytest_concurrently
        from helpers import entered, left

        pytestmark = pytest.mark.concurrent

        @pytest_concurrently.resource("db")
        @pytest.fixture(scope="module")
        async def database():
            yield

        @pytest.mark.parametrize("i", range(3))
        async def test_fixture_holds(database, i):
            entered(f"fixture{i}")
            await asyncio.sleep(0.05)
            left(f"fixture{i}")

        @pytest.mark.parametrize("i", range(6))
        async def test_free(i):
            entered(f"more{i}")
            left(f"more{i}")
        """,
    )
    result = pytester.runpytest(*XDIST)
    result.assert_outcomes(passed=18)
    placed = workers_of(pytester)
    holders = [f"marked{i}" for i in range(3)] + [f"fixture{i}" for i in range(3)]
    assert len({placed[name] for name in holders}) == 1, placed
    assert set(placed.values()) == {"gw0", "gw1"}
    spans = intervals(read_events(pytester))
    fixture_life = (
        min(spans[f"fixture{i}"][0] for i in range(3)),
        max(spans[f"fixture{i}"][1] for i in range(3)),
    )
    # The fixture holds "db" from its first user to its last: no marked
    # test overlaps that stretch.
    for i in range(3):
        start, end = spans[f"marked{i}"]
        assert end <= fixture_life[0] or fixture_life[1] <= start, (spans, fixture_life)


def test_isolated_tests_run_with_no_test_in_flight_on_any_worker(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        recorder=RECORDER,
        test_many="""
        import asyncio
        import os
        import pytest

        FLIGHT = os.path.join(os.path.dirname(__file__), "flight")
        os.makedirs(FLIGHT, exist_ok=True)

        @pytest.fixture(autouse=True)
        def in_flight(request):
            path = os.path.join(FLIGHT, request.node.name)
            open(path, "w").close()
            yield
            os.remove(path)

        @pytest.mark.concurrent
        @pytest.mark.parametrize("i", range(10))
        async def test_busy(i):
            await asyncio.sleep(0.05)

        @pytest.mark.isolated
        @pytest.mark.parametrize("i", range(2))
        async def test_alone(i):
            others = sorted(set(os.listdir(FLIGHT)) - {f"test_alone[{i}]"})
            assert others == []
            await asyncio.sleep(0.05)

        @pytest.mark.concurrent
        @pytest.mark.parametrize("i", range(10))
        async def test_more(i):
            await asyncio.sleep(0.05)
        """,
    )
    result = pytester.runpytest(*XDIST, "-v")
    result.assert_outcomes(passed=22)
    lines = [line for line in result.stdout.lines if "PASSED" in line]
    # They run last, after every other test.
    assert all("test_alone" in line for line in lines[-2:]), lines


def test_a_failure_with_x_stops_the_other_worker(pytester: pytest.Pytester, helpers: None) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from helpers import worker

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("i", range(4))
        async def test_first_half(i):
            if i == 0:
                await asyncio.sleep(0.2)
                raise AssertionError("the failure")
            await asyncio.sleep(60)

        @pytest.mark.parametrize("i", range(4))
        async def test_second_half(i):
            await asyncio.sleep(60)
        """
    )
    result = pytester.runpytest(*XDIST, "-x")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, outcomes
    assert outcomes.get("interrupted") == 7, outcomes
    assert "passed" not in outcomes


def test_a_crashed_worker_names_the_test_and_the_others_run_on(
    pytester: pytest.Pytester, helpers: None
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import os
        import pytest
        from helpers import until_in_flight_together, entered, left

        @pytest.mark.concurrent
        @pytest.mark.parametrize("i", range(8))
        async def test_one(i):
            entered(f"t{i}")
            try:
                await until_in_flight_together(2, timeout=2)
            except asyncio.TimeoutError:
                pass  # run again alone after the crash
            if i == 1:
                os._exit(3)
            # Still in flight when test 1 ends its worker, most likely: then
            # each runs again alone, and test 1 is named when it crashes alone.
            await asyncio.sleep(0.5)
            left(f"t{i}")
        """
    )
    result = pytester.runpytest(*XDIST)
    result.stdout.fnmatch_lines(["*worker 'gw*' crashed while running '*test_one[[]1[]]'*"])
    outcomes = result.parseoutcomes()
    assert outcomes == {"failed": 1, "passed": 7}, outcomes


def test_a_run_with_no_concurrent_test_is_scheduled_by_xdist(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.parametrize("i", range(20))
        def test_sync(i):
            pass
        """
    )
    result = pytester.runpytest(*XDIST)
    result.assert_outcomes(passed=20)
    assert "concurrently:" not in result.stdout.str()


def test_rerun_alone_under_xdist_is_summed(pytester: pytest.Pytester, helpers: None) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        import helpers
        from helpers import entered, left

        checked = asyncio.Event()

        @pytest.mark.concurrent
        @pytest.mark.parametrize("i", range(6))
        async def test_one(i):
            entered(f"t{i}")
            try:
                if i in (0, 4):
                    # Fails only while the worker's other tests are in flight.
                    try:
                        await helpers.until_in_flight_together(3, timeout=1)
                    except asyncio.TimeoutError:
                        pass
                    checked.set()
                    assert helpers.in_flight == 1
                else:
                    await asyncio.wait_for(checked.wait(), 20)
            finally:
                left(f"t{i}")
        """
    )
    result = pytester.runpytest(*XDIST, "--concurrently-rerun-alone")
    result.assert_outcomes(passed=6)
    line = "concurrently: 6 tests on 2 workers*; 2 failed concurrently and ran again alone*"
    result.stdout.fnmatch_lines([line])


def test_a_usage_error_found_by_the_workers_ends_the_run_as_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nconcurrently_resources = browser:3\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrent
        @pytest.mark.resource("browser", limit=2)
        async def test_browse():
            pass
        """
    )
    result = pytester.runpytest(*XDIST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert output.count("ERROR collecting") == 1
    result.stdout.fnmatch_lines(["*resource 'browser' has two limits*"])


def test_a_run_time_lock_of_an_undeclared_resource_warns_that_it_holds_per_worker(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        import pytest_concurrently

        pytestmark = pytest.mark.concurrent

        async def test_undeclared():
            async with pytest_concurrently.lock("db"):
                pass

        @pytest.mark.resource("db")
        async def test_declared():
            async with pytest_concurrently.lock("db"):
                pass
        """
    )
    result = pytester.runpytest(*XDIST)
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_undeclared",
            "*WorkerLocalLockWarning: pytest_concurrently.lock('db') holds only among the tests "
            "of this pytest-xdist worker*",
        ]
    )
