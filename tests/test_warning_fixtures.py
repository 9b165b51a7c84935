"""``pytest.warns``, ``recwarn``, ``deprecated_call`` and the
``filterwarnings`` marker in overlapping concurrent tests: each acts on its
own test's warnings alone, and a warning stays with the test that issued it."""

from __future__ import annotations

import warnings

import pytest
from conftest import all_overlap, intervals, read_events

from pytest_concurrently.warning_filters import WarningFilters, compile_filter, decide

pytestmark = pytest.mark.usefixtures("recorder")

SUITE = """
import asyncio
import warnings
import pytest
from recorder import record

pytestmark = pytest.mark.concurrent

def library():
    warnings.warn("from the library", UserWarning)

@pytest.mark.isolated
def test_0_filters_before():
    record("filters", "before", filters=repr(warnings.filters))

async def test_warns_catches_its_own():
    record("warns", "start")
    with pytest.warns(UserWarning, match="mine") as caught:
        warnings.simplefilter("ignore", RuntimeWarning)
        await asyncio.sleep(END_WARNS)
        warnings.warn("mine", UserWarning)
        library()
        await asyncio.sleep(0.1)
    record("warns", "end", caught=sorted(str(w.message) for w in caught))

async def test_neighbour_warns_meanwhile():
    record("neighbour", "start")
    await asyncio.sleep(0.05)
    warnings.warn("the neighbour's", UserWarning)
    library()
    await asyncio.sleep(END_NEIGHBOUR)
    record("neighbour", "end")

async def test_did_not_warn():
    record("silent", "start")
    with pytest.warns(UserWarning):
        await asyncio.sleep(0.15)
    record("silent", "end")

async def test_recwarn(recwarn):
    record("recwarn", "start")
    await asyncio.sleep(0.02)
    library()
    library()
    warnings.warn("old", DeprecationWarning)
    await asyncio.sleep(END_RECWARN)
    record("recwarn", "end", seen=[str(w.message) for w in recwarn])

async def test_deprecated_call():
    record("deprecated", "start")
    with pytest.deprecated_call():
        await asyncio.sleep(0.05)
        warnings.warn("going away", DeprecationWarning)
    await asyncio.sleep(0.05)
    record("deprecated", "end")

@pytest.mark.filterwarnings("error::UserWarning")
async def test_errors_on_warnings():
    record("errors", "start")
    await asyncio.sleep(0.03)
    record("errors", "end")
    library()

@pytest.mark.filterwarnings("ignore:from the library")
async def test_ignores_the_library():
    record("ignores", "start")
    await asyncio.sleep(0.03)
    library()
    await asyncio.sleep(0.1)
    record("ignores", "end")

@pytest.mark.isolated
def test_z_filters_after():
    record("filters", "after", filters=repr(warnings.filters))
"""


@pytest.mark.parametrize(
    ("end_warns", "end_neighbour", "end_recwarn"),
    [(0.05, 0.1, 0.1), (0.0, 0.2, 0.0), (0.1, 0.0, 0.2)],
)
def test_warnings_stay_with_their_test(
    pytester: pytest.Pytester, end_warns: float, end_neighbour: float, end_recwarn: float
) -> None:
    source = (
        SUITE.replace("END_WARNS", str(end_warns))
        .replace("END_NEIGHBOUR", str(end_neighbour))
        .replace("END_RECWARN", str(end_recwarn))
    )
    pytester.makepyfile(test_warnings=source)
    result = pytester.runpytest("-p", "no:randomly", "-rA")
    result.assert_outcomes(passed=7, failed=2)
    events = read_events(pytester)
    spans = intervals(events)
    assert all_overlap({name: spans[name] for name in ("warns", "neighbour", "recwarn")})
    extra = {(e.name, e.what): e.extra for e in events}
    assert extra[("warns", "end")]["caught"] == ["from the library", "mine"]
    assert extra[("recwarn", "end")]["seen"] == ["from the library", "old"]
    # Nothing a test did to the filters outlives it.
    assert extra[("filters", "before")] == extra[("filters", "after")]
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        ["FAILED test_warnings.py::test_did_not_warn - Failed: DID NOT WARN*"]
    )
    result.stdout.fnmatch_lines(
        ["FAILED test_warnings.py::test_errors_on_warnings - UserWarning: from the library"]
    )
    seen = _summary_by_test(output)
    # The neighbour's warnings are its own, though another test's
    # pytest.warns and the library's "ignore" were open when it issued them.
    assert seen["test_warnings.py::test_neighbour_warns_meanwhile"] == {
        "UserWarning: the neighbour's",
        "UserWarning: from the library",
    }
    # pytest.warns hands on what it caught and did not match, as in pytest.
    assert seen["test_warnings.py::test_warns_catches_its_own"] == {"UserWarning: from the library"}
    assert set(seen) == {
        "test_warnings.py::test_neighbour_warns_meanwhile",
        "test_warnings.py::test_warns_catches_its_own",
    }


def _summary_by_test(output: str) -> dict[str, set[str]]:
    """Test id -> the warnings the summary lists for it."""
    summary = output[output.index("warnings summary") : output.index("-- Docs")]
    seen: dict[str, set[str]] = {}
    for group in summary.split("\n\n"):
        lines = group.strip().splitlines()
        names = [line for line in lines if line.startswith("test_")]
        messages = [line.split(": ", 1)[1] for line in lines if line.startswith("  /")]
        for name in names:
            seen.setdefault(name, set()).update(messages)
    return seen


def test_a_run_wide_error_filter_still_fails_the_test_that_warned(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile(
        """
        import asyncio
        import warnings
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        async def test_warns():
            record("warns", "start")
            await asyncio.sleep(0.1)
            record("warns", "end")
            warnings.warn("boom", UserWarning)

        async def test_quiet():
            record("quiet", "start")
            await asyncio.sleep(0.2)
            record("quiet", "end")

        @pytest.mark.filterwarnings("default::UserWarning")
        async def test_allowed():
            record("allowed", "start")
            await asyncio.sleep(0.05)
            warnings.warn("fine", UserWarning)
            await asyncio.sleep(0.1)
            record("allowed", "end")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    assert all_overlap(intervals(read_events(pytester)))
    result.stdout.fnmatch_lines(["*test_warns*", ">*warnings.warn(*boom*", "E*UserWarning: boom"])
    assert "warnings.py" not in result.stdout.str()


def test_filters_decide_as_the_warnings_module_does() -> None:
    filters = [
        compile_filter("ignore", "noisy", Warning, "", 0),
        compile_filter("error", "", DeprecationWarning, r"pkg\.old\Z", 0),
        compile_filter("once", "", UserWarning, "", 0),
    ]
    assert decide(filters, "Noisy thing", UserWarning, "m", 1) == "ignore"
    assert decide(filters, "x", DeprecationWarning, "pkg.old", 1) == "error"
    assert decide(filters, "x", DeprecationWarning, "pkg.older", 1) == "default"
    assert decide(filters, "x", UserWarning, "m", 1) == "once"
    memory = WarningFilters()
    assert memory.shows("default", "x", UserWarning, "f.py", "f", 3)
    assert not memory.shows("default", "x", UserWarning, "f.py", "f", 3)
    assert memory.shows("default", "x", UserWarning, "f.py", "f", 4)
    assert memory.shows("once", "y", UserWarning, "f.py", "f", 3)
    assert not memory.shows("once", "y", UserWarning, "g.py", "g", 9)
    assert memory.shows("always", "x", UserWarning, "f.py", "f", 3)
    assert not memory.shows("ignore", "z", UserWarning, "f.py", "f", 3)
    memory.forget_shown()
    assert memory.shows("default", "x", UserWarning, "f.py", "f", 3)
    # The same verdicts as the warnings module, for the first match.
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, message, category, module, lineno in reversed(filters):
            warnings.filterwarnings(
                action,  # type: ignore[arg-type]
                message.pattern if message else "",
                category,
                module.pattern if module else "",
                lineno,
            )
        with pytest.raises(DeprecationWarning):
            warnings.warn_explicit("x", DeprecationWarning, "pkg/old.py", 1, module="pkg.old")
