"""What a run of many tests in flight leaves behind, and the collector's
settings while it runs.

Thousands of tests in flight make every object a test keeps, and every cycle
it leaves, cost the garbage collector's time for the rest of the session.
These inner sessions run with the collector switched off, so whatever a test
leaves in a reference cycle is still there at the end of the session, where
a hook counts it.
"""

from __future__ import annotations

import json

import pytest

#: Counts, at the end of the inner session, what the run left alive.
COUNTING_CONFTEST = """
import asyncio, gc, json
import pytest
from pytest_concurrently import bridge, current

def pytest_configure(config):
    gc.collect()
    gc.disable()

def pytest_sessionfinish(session):
    objects = gc.get_objects()
    counts = {
        "tasks": sum(isinstance(o, asyncio.Task) for o in objects),
        "running_tests": sum(isinstance(o, current.RunningTest) for o in objects),
        "suspended_greenlets": sum(
            isinstance(o, bridge._Worker) and bool(o) for o in objects
        ),
        "copied_fixture_maps": sum(
            type(item._fixtureinfo.name2fixturedefs) is not dict for item in session.items
        ),
        "most_idle_workers": bridge._MOST_IDLE_WORKERS,
    }
    with open("counts.json", "w") as f:
        json.dump(counts, f)
    gc.enable()
"""


def test_tests_leave_no_cycles_and_no_suspended_greenlets(pytester: pytest.Pytester) -> None:
    count = 300
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(
        f"""
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent

        @pytest.fixture
        async def client():
            await asyncio.sleep(0)
            yield "client"

        @pytest.fixture
        def sync_value():
            return 1

        # Every test in flight at once: more greenlets than the pool keeps.
        arrived = 0
        all_here = asyncio.Event()

        @pytest.mark.parametrize("case", range({count}))
        async def test_case(case, client, sync_value):
            global arrived
            arrived += 1
            if arrived == {count}:
                all_here.set()
            await asyncio.wait_for(all_here.wait(), 30)
        """
    )
    result = pytester.runpytest_subprocess(f"--concurrency={count}")
    result.assert_outcomes(passed=count)
    result.stdout.fnmatch_lines([f"*up to {count} in flight*"])
    counts = json.loads((pytester.path / "counts.json").read_text())
    # With the collector off, a task in a cycle with its context (through the
    # running test it holds) would still be here, and so would its test.
    assert counts["tasks"] == 0, counts
    assert counts["running_tests"] == 0, counts
    # Greenlets beyond the pool are ended, not dropped while suspended (a
    # suspended greenlet is in a cycle with its own frame).
    assert counts["suspended_greenlets"] <= counts["most_idle_workers"], counts
    # Each test's own fixture definitions are let go once it has run.
    assert counts["copied_fixture_maps"] == 0, counts


def test_the_collector_collects_less_often_while_tests_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import gc
        import pytest

        BEFORE = gc.get_threshold()

        @pytest.mark.concurrent
        async def test_during_the_run():
            young, middle, old = gc.get_threshold()
            assert (young, middle, old) == (max(BEFORE[0], 7000), BEFORE[1], max(BEFORE[2], 100))
            # Cyclic garbage is still collected.
            cycle = []
            cycle.append(cycle)
            del cycle
            assert gc.collect() >= 1

        def test_after_the_run_alone():
            pass
        """
    )
    pytester.makeconftest(
        """
        import gc

        def pytest_sessionfinish(session):
            with open("after.txt", "w") as f:
                f.write(repr(gc.get_threshold()))

        def pytest_configure(config):
            gc.set_threshold(500, 10, 20)
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    assert (pytester.path / "after.txt").read_text() == repr((500, 10, 20))


def test_planning_the_run_sets_off_no_collections(pytester: pytest.Pytester) -> None:
    count = 3000
    pytester.makeconftest(
        """
        import gc, json
        import pytest

        collections = []
        planning = False

        def note(phase, info):
            if phase == "start" and planning:
                collections.append(info["generation"])

        def pytest_configure(config):
            gc.callbacks.append(note)

        @pytest.hookimpl(wrapper=True, tryfirst=True)
        def pytest_collection_modifyitems(session, config, items):
            global planning
            planning = True
            return (yield)

        def pytest_runtest_logstart(nodeid, location):
            global planning
            if planning:
                planning = False
                with open("planning.json", "w") as f:
                    json.dump(collections, f)
        """
    )
    pytester.makepyfile(
        f"""
        import gc
        import pytest

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("case", range({count}))
        async def test_case(case):
            assert gc.isenabled()
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=count)
    # Planning 3,000 tests makes tens of thousands of objects, a young
    # collection for every 700 of them if the collector were left on; what
    # pytest itself allocates between planning and the first test may set
    # off one or two.
    collections = json.loads((pytester.path / "planning.json").read_text())
    assert len(collections) <= 2, collections
