"""Suites written for pytest-asyncio or anyio run concurrently in auto mode.

Each inner suite runs twice: with pytest-concurrently disabled (its own
plugin runs it) and with ``--concurrently-mode=auto``. The outcome of every
test must be the same, and the tests that can share the session loop must
overlap; tests that need a loop of their own run alone, and the run says why.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from conftest import all_overlap, installed_version, intervals, read_events

pytestmark = pytest.mark.usefixtures("recorder")


PYTEST_ASYNCIO = installed_version("pytest-asyncio")
#: From 1.1, pytest-asyncio wraps async fixtures when a test asks for them,
#: which lets this plugin set them up on the session loop instead.
takes_over_pytest_asyncio = pytest.mark.skipif(
    PYTEST_ASYNCIO < (1, 1), reason="pytest-asyncio before 1.1 keeps its tests"
)


def _asyncio_ini(pytester: pytest.Pytester, asyncio_mode: str) -> None:
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {asyncio_mode}\nasyncio_default_fixture_loop_scope = function\n"
    )


def _outcomes(pytester: pytest.Pytester, *args: str) -> dict[str, str]:
    """Run the inner suite; return test id -> outcome from its junitxml."""
    xml_path = pytester.path / "results.xml"
    pytester.runpytest(*args, f"--junitxml={xml_path}")
    outcomes = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[name] = "+".join(kinds) or "passed"
    (pytester.path / "events.jsonl").unlink(missing_ok=True)
    return outcomes


def _same_outcomes_both_ways(pytester: pytest.Pytester, plugin: str) -> pytest.RunResult:
    """Check that the suite's outcomes do not change when this plugin runs
    it in auto mode; return the auto-mode run."""
    alone = _outcomes(pytester, "-p", plugin, "-p", "no:concurrently")
    concurrent = _outcomes(pytester, "-p", plugin, "--concurrently-mode=auto")
    assert concurrent == alone
    assert alone, "the inner suite ran no test"
    return pytester.runpytest("-p", plugin, "--concurrently-mode=auto", "-v")


ASYNCIO_SUITE = """
import asyncio
import pytest
import pytest_asyncio
from recorder import record

@pytest_asyncio.fixture
async def value():
    await asyncio.sleep(0.01)
    return 42

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server():
    record("server", "setup")
    yield "server"
    await asyncio.sleep(0.01)
    record("server", "teardown")

MARK
@pytest.mark.parametrize("n", range(3))
async def test_waits(value, server, n):
    record(f"waits{n}", "start")
    await asyncio.sleep(0.2)
    record(f"waits{n}", "end")

def test_sync():
    pass

class TestGroup:
    @pytest.mark.asyncio(loop_scope="class")
    async def test_in_class(self, server):
        record("in_class", "start")
        await asyncio.sleep(0.2)
        record("in_class", "end")

MARK
async def test_fails(value):
    assert value == 41

MARK
async def test_skipped():
    pytest.skip("not today")
"""


@takes_over_pytest_asyncio
@pytest.mark.parametrize("asyncio_mode", ["strict", "auto"])
def test_pytest_asyncio_suite_runs_concurrently_with_its_outcomes(
    pytester: pytest.Pytester, asyncio_mode: str
) -> None:
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {asyncio_mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    mark = "@pytest.mark.asyncio" if asyncio_mode == "strict" else ""
    pytester.makepyfile(test_suite=ASYNCIO_SUITE.replace("MARK", mark))
    result = _same_outcomes_both_ways(pytester, "asyncio")
    result.assert_outcomes(passed=5, failed=1, skipped=1)
    events = read_events(pytester)
    spans = intervals(events)
    assert all_overlap({name: spans[name] for name in ("waits0", "waits1", "waits2", "in_class")})
    # The module fixture is set up once and torn down after its last user.
    assert [(e.name, e.what) for e in events if e.name == "server"] == [
        ("server", "setup"),
        ("server", "teardown"),
    ]
    assert next(e.t for e in events if e.what == "teardown") > max(e for _, e in spans.values())
    assert "ran alone" not in result.stdout.str()


ANYIO_SUITE = """
import anyio
import pytest
from recorder import record

pytestmark = pytest.mark.anyio

@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"

@pytest.fixture(scope="module")
async def server(anyio_backend):
    record("server", "setup")
    # A task group that spans the yield: setup and teardown share one task.
    async with anyio.create_task_group() as group:
        group.start_soon(anyio.sleep_forever)
        yield "server"
        group.cancel_scope.cancel()
    record("server", "teardown")

@pytest.fixture
async def client(server):
    await anyio.sleep(0.01)
    yield f"client of {server}"

@pytest.mark.parametrize("n", range(3))
async def test_waits(client, n):
    record(f"waits{n}", "start")
    await anyio.sleep(0.2)
    record(f"waits{n}", "end")

def test_sync():
    pass

class TestGroup:
    async def test_in_class(self, client):
        record("in_class", "start")
        await anyio.sleep(0.2)
        record("in_class", "end")

async def test_fails(client):
    assert client == "client of nobody"
"""


def test_anyio_suite_runs_concurrently_with_its_outcomes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=ANYIO_SUITE)
    result = _same_outcomes_both_ways(pytester, "anyio")
    result.assert_outcomes(passed=5, failed=1)
    events = read_events(pytester)
    spans = intervals(events)
    assert all_overlap({name: spans[name] for name in ("waits0", "waits1", "waits2", "in_class")})
    assert [(e.name, e.what) for e in events if e.name == "server"] == [
        ("server", "setup"),
        ("server", "teardown"),
    ]


def test_trio_tests_stay_with_anyio_and_run_alone(pytester: pytest.Pytester) -> None:
    pytest.importorskip("trio")
    pytester.makepyfile(
        test_both="""
        import anyio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.anyio

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param

        @pytest.mark.parametrize("n", range(2))
        async def test_waits(anyio_backend, n):
            record(f"{anyio_backend}{n}", "start")
            await anyio.sleep(0.1)
            record(f"{anyio_backend}{n}", "end")
        """
    )
    result = _same_outcomes_both_ways(pytester, "anyio")
    result.assert_outcomes(passed=4)
    spans = intervals(read_events(pytester))
    assert all_overlap({"asyncio0": spans["asyncio0"], "asyncio1": spans["asyncio1"]})
    assert not all_overlap({"trio0": spans["trio0"], "trio1": spans["trio1"]})
    result.stdout.fnmatch_lines(
        [
            "*test_waits?trio-0? PASSED (alone under anyio: it runs on anyio's trio backend*",
            "concurrently: 4 tests in *; 2 ran alone under anyio (it runs on anyio's trio "
            "backend, not on asyncio)",
        ]
    )


def test_anyio_backend_options_keep_a_test_with_anyio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_debug="""
        import asyncio
        import pytest

        pytestmark = pytest.mark.anyio

        @pytest.fixture
        def anyio_backend():
            return ("asyncio", {"debug": True})

        async def test_debug_loop():
            assert asyncio.get_running_loop().get_debug()
        """
    )
    result = _same_outcomes_both_ways(pytester, "anyio")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "concurrently: auto mode ran no test concurrently: 1 async test runs alone under anyio "
            "(its anyio backend options {'debug': True} need a loop of their own)"
        ]
    )


@takes_over_pytest_asyncio
def test_event_loop_policy_override_keeps_tests_with_pytest_asyncio(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_policy="""
        import asyncio
        import pytest
        from recorder import record

        class CountingLoop(asyncio.SelectorEventLoop):
            pass

        class Policy(asyncio.DefaultEventLoopPolicy):
            def new_event_loop(self):
                return CountingLoop()

        @pytest.fixture(scope="session")
        def event_loop_policy():
            return Policy()

        async def test_on_its_loop():
            assert isinstance(asyncio.get_running_loop(), CountingLoop)
        """
    )
    result = _same_outcomes_both_ways(pytester, "asyncio")
    result.assert_outcomes(passed=1, warnings=None)
    result.stdout.fnmatch_lines(
        [
            "*test_on_its_loop PASSED (alone under pytest-asyncio: it overrides the "
            "event_loop_policy fixture)*"
        ]
    )


@pytest.mark.skipif(
    not hasattr(pytest.importorskip("pytest_asyncio.plugin"), "PytestAsyncioSpecs"),
    reason="this pytest-asyncio has no loop factories",
)
def test_loop_factory_keeps_tests_with_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makeconftest(
        """
        import asyncio

        class StepCountingLoop(asyncio.SelectorEventLoop):
            steps = 0
            def _run_once(self):
                StepCountingLoop.steps += 1
                super()._run_once()

        def pytest_asyncio_loop_factories(config, item):
            if "counted" in item.nodeid:
                return {"counting": StepCountingLoop}
            return None
        """
    )
    pytester.makepyfile(
        test_counted="""
        import asyncio
        from conftest import StepCountingLoop

        async def test_counts_steps():
            before = StepCountingLoop.steps
            await asyncio.sleep(0)
            assert StepCountingLoop.steps > before
        """,
    )
    result = _same_outcomes_both_ways(pytester, "asyncio")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*alone under pytest-asyncio: it runs on a pytest-asyncio loop factory*"]
    )


@takes_over_pytest_asyncio
def test_concurrent_marker_on_a_pytest_asyncio_test_in_marked_mode(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        import pytest_asyncio
        from recorder import record

        @pytest_asyncio.fixture
        async def theirs():
            return 1

        @pytest.mark.asyncio
        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(3))
        async def test_both(theirs, n):
            record(f"both{n}", "start")
            await asyncio.sleep(0.1)
            record(f"both{n}", "end")

        @pytest.mark.concurrent
        async def test_ours_with_their_fixture(theirs):
            assert theirs == 1
        """
    )
    result = pytester.runpytest("-p", "asyncio")
    result.assert_outcomes(passed=4)
    assert all_overlap(intervals(read_events(pytester)))


@takes_over_pytest_asyncio
def test_concurrent_marker_on_a_test_that_needs_its_own_loop_is_an_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.fixture(scope="session")
        def event_loop_policy():
            return asyncio.DefaultEventLoopPolicy()

        @pytest.mark.asyncio
        @pytest.mark.concurrent
        async def test_marked():
            pass
        """
    )
    result = pytester.runpytest("-p", "asyncio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "This test is marked concurrent, but it overrides the event_loop_policy fixture.",
            "Fix: remove the concurrent marker, and pytest-asyncio runs it alone.",
            "    *::test_marked",
        ]
    )


def test_off_mode_leaves_every_test_to_its_plugin(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        @pytest.mark.parametrize("n", range(2))
        async def test_waits(n):
            record(f"waits{n}", "start")
            await asyncio.sleep(0.05)
            record(f"waits{n}", "end")
        """
    )
    result = pytester.runpytest("-p", "asyncio", "--concurrently-mode=off")
    result.assert_outcomes(passed=2)
    assert not all_overlap(intervals(read_events(pytester)))
    assert "concurrently:" not in result.stdout.str()


@pytest.mark.skipif(PYTEST_ASYNCIO >= (1, 1), reason="pytest-asyncio 1.1 and later are taken over")
def test_old_pytest_asyncio_keeps_its_tests_and_says_why(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        """
        async def test_one():
            pass
        """
    )
    result = pytester.runpytest("-p", "asyncio", "--concurrently-mode=auto")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 async test runs alone under pytest-asyncio (pytest-asyncio 0.* sets async "
            "fixtures up on its own loops*"
        ]
    )


HYPOTHESIS_SUITE = """
import asyncio
import pytest
from hypothesis import given, settings, strategies as st
from recorder import record

MARK
async def test_plain():
    record("plain", "start")
    await asyncio.sleep(0.3)
    record("plain", "end")

MARK
@settings(max_examples=5, deadline=None)
@given(st.integers())
async def test_property_one(x):
    record(f"one{x}", "start")
    await asyncio.sleep(0.01)
    record(f"one{x}", "end")

MARK
@settings(max_examples=5, deadline=None)
@given(st.integers())
async def test_property_two(x):
    record(f"two{x}", "start")
    await asyncio.sleep(0.01)
    record(f"two{x}", "end")

MARK
@settings(max_examples=20, deadline=None, database=None)
@given(st.integers())
async def test_property_fails(x):
    await asyncio.sleep(0)
    assert x < 10

"""


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param(None, id="ours"),
        pytest.param("asyncio", id="pytest-asyncio", marks=takes_over_pytest_asyncio),
        pytest.param("anyio", id="anyio"),
    ],
)
def test_hypothesis_tests_run_beside_others_but_never_beside_each_other(
    pytester: pytest.Pytester, owner: str | None
) -> None:
    pytest.importorskip("hypothesis")
    mark = {None: "", "asyncio": "@pytest.mark.asyncio", "anyio": "@pytest.mark.anyio"}[owner]
    if owner == "asyncio":
        _asyncio_ini(pytester, "strict")
    pytester.makepyfile(test_props=HYPOTHESIS_SUITE.replace("MARK", mark))
    if owner == "anyio":
        pytester.makeconftest(
            "import pytest\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
        )
    plugin_options = ("-p", owner) if owner else ()
    if owner is not None:
        assert _outcomes(pytester, *plugin_options, "-p", "no:concurrently") == _outcomes(
            pytester, *plugin_options, "--concurrently-mode=auto"
        )
    result = pytester.runpytest(*plugin_options, "--concurrently-mode=auto", "-p", "hypothesis")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["E *test_property_fails(", "E *x=10,"])
    # No traceback entry in the plugin's bridge. (Hypothesis's explain
    # phase, where it runs, lists lines only failing examples ran, the
    # bridge's way of raising included, indented under "E".)
    assert not [line for line in result.outlines if re.match(r"\S*bridge\.py:\d+", line)]
    spans = intervals(read_events(pytester))
    ones = [span for name, span in spans.items() if name.startswith("one")]
    twos = [span for name, span in spans.items() if name.startswith("two")]
    assert ones
    assert twos
    # Each example overlaps the plain test; the two properties never overlap.
    plain = spans["plain"]
    assert any(start < plain[1] and plain[0] < end for start, end in ones)
    assert max(end for _, end in ones) <= min(start for start, _ in twos)


def test_pytest_timeout_fails_just_the_concurrent_test_that_overruns(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture
        async def resource(request):
            yield
            record(request.node.name, "teardown")

        @pytest.mark.timeout(0.2)
        async def test_hangs(resource):
            record("hangs", "start")
            await asyncio.sleep(30)

        @pytest.mark.timeout(0.2, func_only=True)
        async def test_hangs_in_its_body(resource):
            await asyncio.sleep(30)

        async def test_neighbour(resource):
            record("neighbour", "start")
            await asyncio.sleep(0.5)
            record("neighbour", "end")

        @pytest.fixture
        async def stuck_setup():
            await asyncio.sleep(30)

        async def test_stuck_in_setup(stuck_setup):
            pass
        """
    )
    result = pytester.runpytest("-p", "timeout", "--timeout=1")
    result.assert_outcomes(passed=1, failed=2, errors=1)
    # Each failure shows the await it was stuck on.
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_stuck_in_setup*",
            ">*await asyncio.sleep(30)",
            "E*Failed: Timeout (>1.0s) from pytest-timeout.",
            "*_ test_hangs _*",
            ">*await asyncio.sleep(30)",
            "E*Failed: Timeout (>0.2s) from pytest-timeout.",
        ]
    )
    events = read_events(pytester)
    # The timed-out tests were torn down; the neighbour ran to its end.
    assert {e.name for e in events if e.what == "teardown"} >= {
        "test_hangs",
        "test_hangs_in_its_body",
        "test_neighbour",
    }
    assert "neighbour" in intervals(events)


@takes_over_pytest_asyncio
def test_pytest_asyncio_version_is_read_once_for_the_run_not_per_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading an installed distribution's metadata takes about half a
    # millisecond: once per test, it was half the collection of a drop-in suite.
    from importlib import metadata

    from pytest_concurrently._plugin_adapters import asyncio_plugin

    reads: list[str] = []
    real_version = metadata.version

    def counting_version(distribution: str) -> str:
        reads.append(distribution)
        return real_version(distribution)

    monkeypatch.setattr(metadata, "version", counting_version)
    # Whatever the adapter remembers from earlier sessions of this process
    # is forgotten, so this run reads the version at least once.
    getattr(asyncio_plugin._version, "cache_clear", lambda: None)()
    _asyncio_ini(pytester, "auto")
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.parametrize("n", range(30))
        async def test_waits(n):
            await asyncio.sleep(0)
        """
    )
    result = pytester.runpytest("-p", "asyncio", "--concurrently-mode=auto")
    result.assert_outcomes(passed=30)
    result.stdout.re_match_lines([r"concurrently: 30 tests .*"])
    assert reads.count("pytest-asyncio") <= 1
