"""Installing pytest-concurrently next to pytest-asyncio changes no outcome."""

from __future__ import annotations

import pytest

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


def test_pytest_asyncio_tests_run_beside_concurrent_ones(pytester: pytest.Pytester) -> None:
    _enable_pytest_asyncio(pytester, "strict")
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.asyncio
        async def test_owned_by_pytest_asyncio():
            await asyncio.sleep(0.01)

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(3))
        async def test_ours(n):
            await asyncio.sleep(0.05)
        """
    )
    result = pytester.runpytest("-p", "asyncio")
    result.assert_outcomes(passed=4)


def test_auto_mode_leaves_pytest_asyncio_tests_to_it_and_says_so(
    pytester: pytest.Pytester,
) -> None:
    _enable_pytest_asyncio(pytester, "strict")
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.asyncio
        async def test_owned():
            await asyncio.sleep(0.01)

        async def test_ours():
            await asyncio.sleep(0.01)
        """
    )
    result = pytester.runpytest("-p", "asyncio", "--concurrently-mode=auto")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["concurrently: 2 tests in *; 1 async test left to pytest-asyncio"])


def test_concurrent_marker_on_a_pytest_asyncio_test_is_an_error(pytester: pytest.Pytester) -> None:
    _enable_pytest_asyncio(pytester, "strict")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.concurrent
        async def test_both():
            pass
        """
    )
    result = pytester.runpytest("-p", "asyncio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_both: is marked concurrent but is run by pytest-asyncio*"])


def test_pytest_asyncio_fixture_in_a_concurrent_test_is_an_error(pytester: pytest.Pytester) -> None:
    _enable_pytest_asyncio(pytester, "strict")
    pytester.makepyfile(
        """
        import pytest
        import pytest_asyncio

        @pytest_asyncio.fixture
        async def theirs():
            return 1

        @pytest.mark.concurrent
        async def test_uses_theirs(theirs):
            pass
        """
    )
    result = pytester.runpytest("-p", "asyncio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_uses_theirs: uses the fixture theirs, made with @pytest_asyncio.fixture*"]
    )


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
