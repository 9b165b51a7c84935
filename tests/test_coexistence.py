"""Installing pytest-concurrently next to pytest-asyncio changes no outcome.

How auto mode and the ``concurrent`` marker run tests written for
pytest-asyncio and anyio is tested in test_dropin.py.
"""

from __future__ import annotations

import pytest
from conftest import all_overlap, intervals, read_events

pytest.importorskip("pytest_asyncio")

ASYNCIO_SUITE = """
import asyncio
import pytest
import pytest_asyncio

@pytest_asyncio.fixture
async def value():
    await asyncio.sleep(0.01)
    return 42

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_loop_value():
    return asyncio.get_running_loop()

@pytest.mark.asyncio
async def test_fixture(value):
    assert value == 42

@pytest.mark.asyncio(loop_scope="module")
async def test_module_loop(shared_loop_value):
    assert asyncio.get_running_loop() is shared_loop_value

@pytest.mark.asyncio
async def test_fails():
    assert False

def test_sync():
    pass

@pytest.mark.asyncio
async def test_skipped():
    pytest.skip("no")
"""


def _enable_pytest_asyncio(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pytest_asyncio_suite_has_the_same_outcomes(pytester: pytest.Pytester, mode: str) -> None:
    _enable_pytest_asyncio(pytester, mode)
    pytester.makepyfile(ASYNCIO_SUITE)
    without = pytester.runpytest("-p", "asyncio", "-p", "no:concurrently")
    with_plugin = pytester.runpytest("-p", "asyncio")
    for result in (without, with_plugin):
        result.assert_outcomes(passed=3, failed=1, skipped=1, warnings=None)


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return not (a[1] <= b[0] or b[1] <= a[0])


@pytest.mark.usefixtures("recorder")
def test_pytest_asyncio_tests_run_beside_concurrent_ones(pytester: pytest.Pytester) -> None:
    _enable_pytest_asyncio(pytester, "strict")
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(3))
        async def test_ours_before(n):
            record(f"before{n}", "start"); await asyncio.sleep(0.05); record(f"before{n}", "end")

        @pytest.mark.asyncio
        async def test_owned_by_pytest_asyncio():
            record("owned", "start"); await asyncio.sleep(0.05); record("owned", "end")

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(3))
        async def test_ours_after(n):
            record(f"after{n}", "start"); await asyncio.sleep(0.05); record(f"after{n}", "end")
        """
    )
    result = pytester.runpytest("-p", "asyncio")
    result.assert_outcomes(passed=7)
    spans = intervals(read_events(pytester))
    before = {name: span for name, span in spans.items() if name.startswith("before")}
    after = {name: span for name, span in spans.items() if name.startswith("after")}
    assert len(before) == len(after) == 3
    # Ours overlap each other; the pytest-asyncio test overlaps none of them.
    assert all_overlap(before)
    assert all_overlap(after)
    assert not [name for name in (*before, *after) if _overlaps(spans[name], spans["owned"])]


def test_pytest_asyncio_fixture_in_an_async_test_that_runs_alone(
    pytester: pytest.Pytester,
) -> None:
    _enable_pytest_asyncio(pytester, "strict")
    pytester.makepyfile(
        """
        import pytest_asyncio

        @pytest_asyncio.fixture
        async def theirs():
            return 1

        async def test_ours_alone(theirs):
            assert theirs == 1
        """
    )
    pytester.runpytest("-p", "asyncio").assert_outcomes(passed=1)
