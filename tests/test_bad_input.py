"""Misused options and markers get a usage error that names the test and the fix."""

from __future__ import annotations

import pytest

PASSING = """
import pytest

@pytest.mark.concurrent
async def test_ok():
    pass
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--concurrently-mode=fast"],
            "*--concurrently-mode must be one of off, marked, auto; got 'fast'*",
        ),
        (
            ["--concurrently-sync-tests=sometimes"],
            "*--concurrently-sync-tests must be one of interleave, alone, thread; got 'sometimes'*",
        ),
        (["--concurrency=0"], "*--concurrency must be a whole number of at least 1*got '0'*"),
        (["--concurrency=many"], "*--concurrency must be a whole number of at least 1*got 'many'*"),
    ],
)
def test_bad_options(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--pdb"],
            "*--pdb stops at one test while others run*--concurrently-mode=off*",
        ),
        (["--sw"], "*--stepwise needs the first failure*add --concurrency=1*"),
    ],
)
def test_options_that_need_one_test_at_a_time(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    pytester.runpytest(*args, "--concurrently-mode=off").assert_outcomes(passed=1)


def test_trace_cannot_step_into_async_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("async def test_async():\n    assert False\n")
    for mode in ("marked", "off"):
        result = pytester.runpytest("--trace", f"--concurrently-mode={mode}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--trace cannot step into async tests such as*"])


def test_stepwise_with_one_test_at_a_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    pytester.runpytest("--sw", "--concurrency=1").assert_outcomes(passed=1)


def test_bad_ini_values(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconcurrently_mode = sometimes\n")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the concurrently_mode ini option must be one of*'sometimes'*"])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "@pytest.mark.concurrent(limit=3)\nasync def test_args(): pass",
            [
                "@pytest.mark.concurrent takes only group=, timeout= and thread=, got (limit=3).",
                "Fix: write @pytest.mark.concurrent, or with group='name', timeout=seconds or "
                "thread=True.",
                "    *::test_args",
            ],
        ),
        (
            "@pytest.mark.isolated('why')\nasync def test_args(): pass",
            [
                "@pytest.mark.isolated takes no arguments, got ('why').",
                "Fix: write @pytest.mark.isolated.",
                "    *::test_args",
            ],
        ),
        (
            "@pytest.mark.concurrent\ndef test_sync(): pass",
            [
                "@pytest.mark.concurrent applies to async tests*",
                "Fix: make the test async, run it in a thread with thread=True, or remove the "
                "marker.",
                "    *::test_sync",
            ],
        ),
        (
            "@pytest.mark.concurrent\n@pytest.mark.isolated\nasync def test_both(): pass",
            [
                "This test is marked both concurrent and isolated.",
                "Fix: keep one of the two.",
                "    *::test_both",
            ],
        ),
    ],
)
def test_misused_markers(pytester: pytest.Pytester, source: str, message: list[str]) -> None:
    pytester.makepyfile("import pytest\n\n" + source + "\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: pytest-concurrently: 1 test uses markers wrongly; no test ran.", "", *message]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_module_marker_on_sync_tests_is_fine(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.concurrent

        def test_sync():
            pass

        async def test_async():
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_marker_on_a_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrent
        @pytest.fixture
        async def resource():
            return 1

        async def test_uses(resource):
            pass
        """
    )
    result = pytester.runpytest()
    output = result.stdout.str() + result.stderr.str()
    # pytest itself refuses marks on fixtures: an error from pytest 9 on, a
    # warning that says the mark has no effect before.
    if int(pytest.__version__.split(".")[0]) >= 9:
        assert result.ret == pytest.ExitCode.INTERRUPTED
        assert "Marks cannot be applied to fixtures" in output
    else:
        assert "Marks applied to fixtures have no effect" in output
    assert "INTERNALERROR" not in output


def test_hook_may_mark_sync_tests_concurrent(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.concurrent)
        """
    )
    pytester.makepyfile(
        """
        def test_sync():
            pass

        async def test_async():
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_every_misused_test_is_named_in_one_run_grouped_by_cause(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.concurrent
        def test_sync():
            pass

        @pytest.mark.concurrent
        def test_sync_too():
            pass

        @pytest.mark.isolated("why")
        async def test_isolated():
            pass
        """,
        test_b="""
        import pytest

        @pytest.mark.concurrent
        def test_sync_again():
            pass

        @pytest.mark.concurrent(group=1)
        async def test_group():
            pass
        """,
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-concurrently: 5 tests use markers wrongly; no test ran.",
            "",
            "@pytest.mark.concurrent applies to async tests*",
            "Fix: make the test async, run it in a thread with thread=True, or remove the marker.",
            "    test_a.py::test_sync",
            "    test_a.py::test_sync_too",
            "    test_b.py::test_sync_again",
            "",
            "@pytest.mark.isolated takes no arguments*",
            "Fix: write @pytest.mark.isolated.",
            "    test_a.py::test_isolated",
            "",
            "@pytest.mark.concurrent(group=...) needs a non-empty string*",
            "Fix: name the group, as in group='payments'.",
            "    test_b.py::test_group",
        ]
    )


def test_under_xdist_misused_markers_are_reported_once_before_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrent
        def test_sync():
            pass

        async def test_fine():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    # Each worker found it; it is shown once (the short summary may repeat
    # it, whole on CI).
    assert output.count("ERROR collecting") == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting*",
            "pytest-concurrently: 1 test uses markers wrongly; no test ran.",
            "",
            "@pytest.mark.concurrent applies to async tests*",
            "Fix: make the test async, run it in a thread with thread=True, or remove the marker.",
            "    *::test_sync",
            "*short test summary info*",
        ]
    )
    result.stdout.no_fnmatch_line("*PASSED*")
    result.stdout.no_fnmatch_line("*passed*")
