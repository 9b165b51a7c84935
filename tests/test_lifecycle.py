"""The lives of shared fixtures: who sets them up, who tears them down, when,
and where their errors are reported — each as sequential pytest would.

Each test here reproduces one way the runner once differed from a sequential
run. Where the point is "the same as pytest", the inner suite runs twice,
with ``--concurrently-mode=off`` (sequential) and ``auto``, and the two runs'
outcomes and recorded fixture events are compared.
"""

from __future__ import annotations

import pytest
from conftest import all_overlap, intervals, read_events

pytestmark = pytest.mark.usefixtures("recorder")


def _fixture_events(pytester: pytest.Pytester) -> list[tuple[str, str]]:
    if not (pytester.path / "events.jsonl").exists():
        return []
    return [(e.name, e.what) for e in read_events(pytester) if e.what in ("setup", "teardown")]


def _run_both_ways(
    pytester: pytest.Pytester, *args: str
) -> tuple[pytest.RunResult, list[tuple[str, str]], pytest.RunResult, list[tuple[str, str]]]:
    """Run the inner suite sequentially, then concurrently; return each
    result with the fixture events it recorded."""
    sequential = pytester.runpytest("--concurrently-mode=off", *args)
    sequential_events = _fixture_events(pytester)
    (pytester.path / "events.jsonl").unlink(missing_ok=True)
    concurrent = pytester.runpytest("--concurrently-mode=auto", *args)
    return sequential, sequential_events, concurrent, _fixture_events(pytester)


def test_session_fixture_outlives_the_teardown_of_every_dependent(
    pytester: pytest.Pytester,
) -> None:
    # test_a's function fixture still awaits in its teardown when test_b,
    # the last test, finishes: the session is finalized only after both.
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent
        b_done = asyncio.Event()

        @pytest.fixture(scope="session")
        async def db():
            connection = {"open": True}
            yield connection
            connection["open"] = False
            record("db", "teardown")

        @pytest.fixture
        async def row(db):
            yield
            await asyncio.wait_for(b_done.wait(), 10)
            assert db["open"], "db was closed under a dependent's teardown"
            record("row", "teardown")

        async def test_a(row):
            pass

        async def test_b(db, request):
            request.addfinalizer(b_done.set)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    assert _fixture_events(pytester) == [("row", "teardown"), ("db", "teardown")]


def test_scope_teardown_error_is_reported_on_the_scope_s_last_collected_test(
    pytester: pytest.Pytester,
) -> None:
    # The last test of the module finishes first; the module fixture's
    # teardown error still lands on it, as pytest reports it, and the
    # xfail marker of the test that finishes last does not swallow it.
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent
        last_done = asyncio.Event()

        @pytest.fixture(scope="module")
        async def breaks():
            yield
            raise RuntimeError("module teardown broke")

        @pytest.mark.xfail(reason="expected", strict=False)
        async def test_first(breaks, request):
            if request.config.getoption("concurrently_mode") != "off":
                await asyncio.wait_for(last_done.wait(), 10)
            assert False

        async def test_last(breaks, request):
            request.addfinalizer(last_done.set)
        """
    )
    sequential, _, concurrent, _ = _run_both_ways(pytester)
    for result in (sequential, concurrent):
        result.assert_outcomes(passed=1, xfailed=1, errors=1)
        result.stdout.fnmatch_lines(["*ERROR at teardown of test_last*", "*module teardown broke*"])
    assert sequential.ret == concurrent.ret == pytest.ExitCode.TESTS_FAILED


SHARED_DB_WITH_INDIRECT_USER = """
    import asyncio
    import pytest
    from recorder import record

    pytestmark = pytest.mark.concurrent

    @pytest.fixture(scope="session")
    async def db(request):
        name = getattr(request, "param", "main")
        record(name, "setup")
        await asyncio.sleep(0.05)
        state = {"name": name, "open": True}
        yield state
        state["open"] = False
        record(name, "teardown")

    @pytest.mark.parametrize("n", range(3))
    async def test_plain(db, n):
        assert db["name"] == "main"
        await asyncio.sleep(0.05)
        assert db["open"], "torn down under a running test"

    @pytest.mark.parametrize("db", ["other"], indirect=True)
    async def test_indirect(db):
        assert db["name"] == "other"
        await asyncio.sleep(0.05)
        assert db["open"], "torn down under a running test"

    async def test_plain_again(db):
        assert db["name"] == "main" and db["open"]
"""


def test_plain_and_indirect_users_of_a_session_fixture_get_pytest_s_instances(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(SHARED_DB_WITH_INDIRECT_USER)
    sequential, sequential_events, concurrent, concurrent_events = _run_both_ways(pytester)
    sequential.assert_outcomes(passed=5)
    concurrent.assert_outcomes(passed=5)
    # main, other, main: never set up twice for one life, never torn down early.
    assert concurrent_events == sequential_events
    assert [name for name, what in concurrent_events if what == "setup"] == [
        "main",
        "other",
        "main",
    ]


def test_parametrized_package_override_of_a_session_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import asyncio
        import pytest
        from recorder import record

        @pytest.fixture(scope="session")
        async def backend():
            record("session", "setup")
            yield "session"
            record("session", "teardown")
        """
    )
    pytester.makepyfile(
        **{
            "pkg/__init__.py": "",
            "pkg/conftest.py": """
                import asyncio
                import pytest
                from recorder import record

                @pytest.fixture(scope="package", params=["a", "b"])
                async def backend(request, backend):
                    record(request.param, "setup")
                    await asyncio.sleep(0.02)
                    state = {"value": request.param, "open": True}
                    yield state
                    state["open"] = False
                    record(request.param, "teardown")
                """,
            "pkg/test_in_package.py": """
                import asyncio
                import pytest

                pytestmark = pytest.mark.concurrent

                @pytest.mark.parametrize("n", range(3))
                async def test_it(backend, n):
                    value = backend["value"]
                    await asyncio.sleep(0.03)
                    assert backend["open"] and backend["value"] == value
                """,
            "test_outside.py": """
                import pytest

                pytestmark = pytest.mark.concurrent

                async def test_outside(backend):
                    assert backend == "session"
                """,
        }
    )
    sequential, sequential_events, concurrent, concurrent_events = _run_both_ways(pytester)
    sequential.assert_outcomes(passed=7)
    concurrent.assert_outcomes(passed=7)
    assert concurrent_events == sequential_events


def test_parametrized_session_fixture_is_set_up_once_per_value_across_modules(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest
        from recorder import record

        @pytest.fixture(scope="session", params=["s0", "s1"])
        async def server(request):
            record(request.param, "setup")
            yield request.param
            record(request.param, "teardown")
        """
    )
    for module in ("test_one", "test_two"):
        pytester.makepyfile(
            **{
                module: """
                import asyncio
                import pytest

                pytestmark = pytest.mark.concurrent

                @pytest.mark.parametrize("n", range(3))
                async def test_it(server, n):
                    await asyncio.sleep(0.01 * n)
                """
            }
        )
    sequential, sequential_events, concurrent, concurrent_events = _run_both_ways(
        pytester, "--concurrency", "2"
    )
    sequential.assert_outcomes(passed=12)
    concurrent.assert_outcomes(passed=12)
    assert (
        concurrent_events
        == sequential_events
        == [
            ("s0", "setup"),
            ("s0", "teardown"),
            ("s1", "setup"),
            ("s1", "teardown"),
        ]
    )


def test_dynamic_request_for_another_value_waits_for_the_holders(
    pytester: pytest.Pytester,
) -> None:
    # test_dynamic asks for the plain value with getfixturevalue, which the
    # scheduler cannot see coming, while the indirect users hold "i1".
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture(scope="session")
        async def db(request):
            name = getattr(request, "param", "plain")
            record(name, "setup")
            state = {"name": name, "open": True}
            yield state
            state["open"] = False
            record(name, "teardown")

        @pytest.fixture
        def late_db(request):
            return request.getfixturevalue("db")

        @pytest.mark.parametrize("db", ["i1"], indirect=True)
        @pytest.mark.parametrize("n", range(2))
        async def test_indirect(db, n):
            await asyncio.sleep(0.05)
            assert db["open"] and db["name"] == "i1"

        async def test_dynamic(late_db):
            assert late_db["open"] and late_db["name"] == "plain"
        """
    )
    sequential, sequential_events, concurrent, concurrent_events = _run_both_ways(pytester)
    sequential.assert_outcomes(passed=3)
    concurrent.assert_outcomes(passed=3)
    assert concurrent_events == sequential_events


def test_shared_fixture_holds_a_task_bound_resource_across_its_yield(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("anyio")
    pytester.makepyfile(
        """
        import contextvars
        import anyio
        import pytest

        pytestmark = pytest.mark.concurrent
        current = contextvars.ContextVar("current")

        @pytest.fixture(scope="module")
        async def scoped():
            token = current.set("module")
            with anyio.CancelScope():
                yield
            current.reset(token)

        @pytest.fixture(scope="session")
        async def group():
            async with anyio.create_task_group() as tasks:
                ticks = []
                async def tick():
                    while True:
                        ticks.append(1)
                        await anyio.sleep(0.005)
                tasks.start_soon(tick)
                yield ticks
                tasks.cancel_scope.cancel()

        @pytest.mark.parametrize("n", range(3))
        async def test_it(scoped, group, n):
            before = len(group)
            await anyio.sleep(0.05)
            assert len(group) > before
        """
    )
    for mode in ("off", "auto"):
        result = pytester.runpytest(f"--concurrently-mode={mode}")
        result.assert_outcomes(passed=3)


def test_cancelled_test_stops_waiting_and_the_owner_finishes_the_setup(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent
        tasks = {}

        @pytest.fixture(scope="module")
        async def slow():
            record("slow", "setup")
            await asyncio.sleep(0.3)
            yield "ready"
            record("slow", "teardown")

        @pytest.fixture
        async def my_task(request):
            tasks[request.node.name] = asyncio.current_task()

        @pytest.fixture
        def late_slow(my_task, request):
            return request.getfixturevalue("slow")

        async def test_cancelled(late_slow):
            pass

        async def test_waits(slow):
            assert slow == "ready"

        async def test_canceller():
            while "test_cancelled" not in tasks:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            tasks["test_cancelled"].cancel()
        """
    )
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_cancelled*", "*CancelledError*"])
    result.stdout.fnmatch_lines(["PASSED *::test_waits"])
    assert _fixture_events(pytester) == [("slow", "setup"), ("slow", "teardown")]


def test_context_variable_of_a_sync_fixture_reaches_a_test_that_runs_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import contextvars
        import pytest

        current = contextvars.ContextVar("current")

        @pytest.fixture
        def user():
            token = current.set("alice")
            yield
            current.reset(token)

        @pytest.fixture
        async def session_user(user):
            return current.get()

        @pytest.mark.isolated
        async def test_alone(user, session_user):
            assert current.get() == "alice" == session_user

        @pytest.mark.concurrent
        async def test_concurrent(user, session_user):
            assert current.get() == "alice" == session_user
        """
    )
    for mode in ("off", "marked", "auto"):
        pytester.runpytest(f"--concurrently-mode={mode}").assert_outcomes(passed=2)


def test_scope_of_another_plugin_s_fixture_ending_at_a_concurrent_test(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("pytest_asyncio")
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        import pytest_asyncio
        from recorder import record

        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def theirs():
            yield "theirs"
            await asyncio.sleep(0)
            record("theirs", "teardown")

        @pytest.mark.asyncio(loop_scope="module")
        async def test_theirs(theirs):
            assert theirs == "theirs"

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(2))
        async def test_ours_last(n):
            await asyncio.sleep(0.01)
        """
    )
    result = pytester.runpytest("-p", "asyncio")
    result.assert_outcomes(passed=3)
    assert _fixture_events(pytester) == [("theirs", "teardown")]


def test_scope_of_an_anyio_fixture_ending_at_a_concurrent_test(pytester: pytest.Pytester) -> None:
    pytest.importorskip("anyio")
    pytester.makepyfile(
        """
        import anyio
        import pytest
        from recorder import record

        @pytest.fixture(scope="module")
        def anyio_backend():
            return "asyncio"

        @pytest.fixture(scope="module")
        async def theirs(anyio_backend):
            async with anyio.create_task_group() as tasks:
                yield "theirs"
                tasks.cancel_scope.cancel()
            record("theirs", "teardown")

        @pytest.mark.anyio
        async def test_theirs(theirs):
            assert theirs == "theirs"

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(2))
        async def test_ours_last(n):
            await anyio.sleep(0.01)
        """
    )
    result = pytester.runpytest("-p", "anyio")
    result.assert_outcomes(passed=3)
    assert _fixture_events(pytester) == [("theirs", "teardown")]


def test_test_that_stops_the_loop_fails_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent

        async def test_stops():
            asyncio.get_running_loop().stop()

        @pytest.mark.parametrize("n", range(3))
        async def test_neighbour(n):
            await asyncio.sleep(0.05)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*may not stop the session's event loop*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_error_in_the_runner_s_bookkeeping_ends_the_session_instead_of_hanging(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        from pytest_concurrently import scheduling

        original = scheduling.AdmissionPolicy.finish

        def broken_finish(self, ticket):
            original(self, ticket)
            raise RuntimeError("the policy broke")

        scheduling.AdmissionPolicy.finish = broken_finish
        """
    )
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent

        @pytest.mark.parametrize("n", range(4))
        async def test_it(n):
            await asyncio.sleep(0.01)
        """
    )
    # In a process of its own: the conftest breaks the policy class.
    result = pytester.runpytest_subprocess("--concurrency", "2", timeout=60)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["INTERNALERROR*the policy broke*"])


def test_interrupted_test_that_raises_its_own_cancelled_error_is_not_a_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent
        started = asyncio.Event()

        async def test_rethrows():
            started.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                raise asyncio.CancelledError()

        async def test_exits():
            await asyncio.wait_for(started.wait(), 10)
            pytest.exit("stop here")
        """
    )
    result = pytester.runpytest("-rA")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "FAILED" not in result.stdout.str()


def test_pooled_greenlets_keep_nothing_of_a_finished_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import contextvars
        import gc
        import weakref
        import pytest

        slot = contextvars.ContextVar("slot")
        refs = []

        class Payload:
            pass

        @pytest.fixture
        def payload():
            value = Payload()
            refs.append(weakref.ref(value))
            slot.set(value)
            return value

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(3))
        async def test_holds(payload, n):
            await asyncio.sleep(0.01)

        @pytest.mark.isolated
        async def test_all_freed():
            gc.collect()
            assert len(refs) == 3
            assert [ref() for ref in refs] == [None, None, None]
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)


def test_auto_mode_says_when_nothing_ran_concurrently(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_sync():
            pass

        @pytest.mark.isolated
        async def test_alone():
            pass
        """
    )
    result = pytester.runpytest("--concurrently-mode=auto")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["concurrently: auto mode ran no test concurrently: 1 async test is marked isolated"]
    )
    pytester.makepyfile(test_only_sync="def test_sync(): pass")
    result = pytester.runpytest("--concurrently-mode=auto", "test_only_sync.py")
    result.stdout.fnmatch_lines(
        ["concurrently: auto mode ran no test concurrently: no async test was selected"]
    )


def test_wider_fixtures_overlap_only_with_their_own_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHARED_DB_WITH_INDIRECT_USER.replace("record(name,", "record(name,"))
    pytester.makepyfile(
        conftest="""
        import pytest
        from recorder import record

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(item):
            record(item.name, "start")
            try:
                return (yield)
            finally:
                record(item.name, "end")
        """
    )
    pytester.runpytest("--concurrently-mode=auto").assert_outcomes(passed=5)
    spans = intervals(read_events(pytester))
    plain = {name: span for name, span in spans.items() if name.startswith("test_plain[")}
    assert all_overlap(plain)
    for span in plain.values():
        other = spans["test_indirect[other]"]
        assert span[1] <= other[0] or other[1] <= span[0]


def test_exit_in_a_fixture_setup_beside_pytest_rerunfailures(pytester: pytest.Pytester) -> None:
    # The test whose setup exits has no setup report, so it gets no teardown
    # report either (a plugin that pairs them failed with INTERNALERROR).
    pytest.importorskip("pytest_rerunfailures")
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture
        async def exits():
            await asyncio.sleep(0.02)
            pytest.exit("leaving")

        @pytest.fixture
        async def torn_down(request):
            yield
            record(request.node.name, "teardown")

        async def test_exits(torn_down, exits):
            pass

        @pytest.mark.parametrize("n", range(2))
        async def test_neighbour(torn_down, n):
            await asyncio.sleep(0.2)
        """
    )
    result = pytester.runpytest("-p", "rerunfailures")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "INTERNALERROR" not in result.stdout.str()
    # Every fixture was still torn down.
    assert sorted(_fixture_events(pytester)) == [
        ("test_exits", "teardown"),
        ("test_neighbour[0]", "teardown"),
        ("test_neighbour[1]", "teardown"),
    ]


def test_failed_setup_of_a_shared_fixture_is_given_to_every_user(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        @pytest.fixture(scope="module")
        async def broken():
            record("broken", "setup")
            await asyncio.sleep(0.02)
            raise RuntimeError("the setup broke")

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(3))
        async def test_concurrent(broken, n):
            pass

        @pytest.mark.isolated
        async def test_alone(broken):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=4)
    # One traceback per test; the short summary may or may not repeat the
    # message depending on the terminal's width, so count traceback lines.
    raised = [
        line
        for line in result.stdout.lines
        if line.startswith("E ") and "RuntimeError: the setup broke" in line
    ]
    assert len(raised) == 4
    result.stdout.no_fnmatch_line("*TypeError*")
    assert _fixture_events(pytester) == [("broken", "setup")]


def test_a_value_is_made_in_the_setup_of_its_first_user(pytester: pytest.Pytester) -> None:
    # test_one and test_two need the same first value of p; test_one comes
    # first but sets up the slow q before p, so test_two reaches p first. As
    # in pytest, p is still set up in test_one's setup (its output shows
    # there), and later replaced by test_three.
    pytester.makeconftest(
        """
        import asyncio
        import pytest

        @pytest.fixture(scope="session")
        def p(request):
            print(f"p set up with {request.param}")
            return request.param

        @pytest.fixture(scope="session")
        async def q():
            await asyncio.sleep(0.05)
        """
    )
    pytester.makepyfile(
        test_a="""
        import asyncio
        import pytest

        @pytest.mark.parametrize("p", ["b"], indirect=True)
        async def test_one(q, p):
            pass

        @pytest.mark.parametrize("p", ["b"], indirect=True)
        async def test_two(p):
            await asyncio.sleep(0.01)
        """,
        test_b="""
        import pytest

        @pytest.mark.parametrize("p", ["a"], indirect=True)
        async def test_three(p):
            pass
        """,
    )
    for mode in ("off", "auto"):
        result = pytester.runpytest(f"--concurrently-mode={mode}", "-rP")
        result.assert_outcomes(passed=3)
        sections = _passes_sections(result.stdout.lines)
        assert "p set up with b" in sections["test_one[b]"], mode
        assert "p set up with" not in sections.get("test_two[b]", ""), mode
        assert "p set up with a" in sections["test_three[a]"], mode


def test_a_single_value_is_made_by_its_first_user_still_setting_up(
    pytester: pytest.Pytester,
) -> None:
    # test_first sets up the slow module fixture before shared; test_second
    # asks for shared while test_first is still awaiting. As in pytest,
    # shared is made in test_first's setup, after slow, and what making it
    # prints is in test_first's report.
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        @pytest.fixture(scope="module")
        async def slow():
            record("slow", "setup")
            await asyncio.sleep(0.1)
            record("slow", "made")

        @pytest.fixture(scope="module")
        def shared():
            print("making shared")
            record("shared", "setup")

        async def test_first(slow, shared):
            pass

        async def test_second(shared):
            pass
        """
    )
    for mode in ("off", "auto"):
        (pytester.path / "events.jsonl").unlink(missing_ok=True)
        result = pytester.runpytest(f"--concurrently-mode={mode}", "-rP", "-p", "no:randomly")
        result.assert_outcomes(passed=2)
        sections = _passes_sections(result.stdout.lines)
        assert "making shared" in sections["test_first"], mode
        assert "making shared" not in sections.get("test_second", ""), mode
        order = [(e.name, e.what) for e in read_events(pytester)]
        assert order == [("slow", "setup"), ("slow", "made"), ("shared", "setup")], mode


def test_a_value_is_made_by_its_first_user_while_that_waits_for_an_owner(
    pytester: pytest.Pytester,
) -> None:
    # test_first waits for the owner of slow, which test_maker started, when
    # test_second asks for shared. test_second holds nothing anyone could
    # wait for, so it waits for test_first, which makes shared as in pytest.
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.fixture(scope="session")
        async def slow():
            await asyncio.sleep(0.1)

        @pytest.fixture(scope="module")
        def shared():
            print("making shared")

        async def test_maker(slow):
            pass

        async def test_first(slow, shared):
            pass

        async def test_second(shared):
            pass
        """
    )
    for mode in ("off", "auto"):
        result = pytester.runpytest(f"--concurrently-mode={mode}", "-rP", "-p", "no:randomly")
        result.assert_outcomes(passed=3)
        sections = _passes_sections(result.stdout.lines)
        assert "making shared" in sections["test_first"], mode
        assert "making shared" not in sections.get("test_second", ""), mode


_HOLDER_SUITE = """
    import asyncio
    import pytest
    import pytest_concurrently

    @pytest.fixture(scope="session")
    async def slow():
        await asyncio.sleep(0.1)
        async with pytest_concurrently.lock("r"):
            pass

    @pytest.fixture(scope="module")
    def shared():
        print("making shared")

    @pytest.fixture
    async def locked():
        async with pytest_concurrently.lock("r"):
            yield

    async def test_maker(slow):
        pass

    async def test_first(slow, shared):
        pass

    {second}

    async def test_third():
        pass
    """


@pytest.mark.parametrize(
    "second",
    [
        # Function fixtures come after module ones: shared is reached by
        # name from one that runs after the lock is taken.
        "@pytest.fixture\n    def uses(locked, request):\n"
        "        request.getfixturevalue('shared')\n\n"
        "    async def test_second(uses):\n        pass",
        "@pytest.mark.resource('r')\n    async def test_second(shared):\n        pass",
    ],
    ids=["run-time-lock", "declared-resource"],
)
def test_a_test_holding_a_resource_does_not_wait_for_an_earlier_user_that_waits(
    pytester: pytest.Pytester, second: str
) -> None:
    # slow's setup needs r, which test_second holds. Had test_second waited
    # for test_first (waiting for slow), none of them could go on until
    # test_second's time limit. It makes shared itself instead, the
    # documented exception. (test_third ends the module, so that
    # test_second's teardown does not wait for the others.)
    pytester.makepyfile(_HOLDER_SUITE.format(second=second))
    result = pytester.runpytest(
        "--concurrently-mode=auto", "--concurrently-timeout=10", "-rP", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=4)
    sections = _passes_sections(result.stdout.lines)
    assert "making shared" in sections["test_second"]


def test_a_test_executing_a_shared_fixture_does_not_wait_for_an_earlier_user_that_waits(
    pytester: pytest.Pytester,
) -> None:
    # test_second is executing outer (its turn) when outer's setup asks for
    # shared, while test_first, an earlier user of shared, waits for outer's
    # turn (it asks for outer by a computed name, which no plan sees). Had
    # test_second waited for test_first, neither could go on until a time
    # limit; it makes shared itself instead.
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.fixture(scope="module")
        async def delay():
            await asyncio.sleep(0.1)

        @pytest.fixture(scope="module")
        def shared():
            print("making shared")

        @pytest.fixture(scope="module")
        def outer(request, delay):
            request.getfixturevalue("shared")

        @pytest.fixture
        async def pause():
            await asyncio.sleep(0.05)

        @pytest.fixture
        def late_outer(request, pause):
            request.getfixturevalue("out" + "er")

        @pytest.fixture
        def needs_shared(request, late_outer):
            request.getfixturevalue("shared")

        async def test_first(needs_shared):
            pass

        async def test_second(outer):
            pass
        """
    )
    result = pytester.runpytest(
        "--concurrently-mode=auto", "--concurrently-timeout=10", "-rP", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2)
    sections = _passes_sections(result.stdout.lines)
    assert "making shared" in sections["test_second"]


def test_a_test_a_closing_scope_waits_for_does_not_wait_for_an_earlier_user_that_waits(
    pytester: pytest.Pytester,
) -> None:
    # test_A and test_B use L, test_A first. test_T ends test_B's module
    # and, in its teardown, waits for test_B. test_A asks for s by a
    # computed name and waits for test_T, which holds another value of s,
    # to finish. Had test_B gone on waiting for test_A once test_T waits
    # for it, none of the three could end.
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def s(request):
            return getattr(request, "param", "plain")

        @pytest.fixture(scope="session")
        def L():
            print("making L")
        """
    )
    pytester.makepyfile(
        test_m1="""
        import asyncio
        import pytest

        NAME = "s" + ""

        @pytest.fixture
        async def pause():
            await asyncio.sleep(0.1)

        @pytest.fixture
        def dynamic(request, pause):
            return request.getfixturevalue(NAME)

        @pytest.fixture
        def late_L(request, dynamic):
            request.getfixturevalue("L")

        async def test_A(late_L):
            pass
        """,
        test_m2="""
        import pytest

        async def test_B(L):
            pass

        @pytest.mark.parametrize("s", ["x"], indirect=True)
        async def test_T(s):
            pass
        """,
        test_m3="""
        async def test_Z():
            pass
        """,
    )
    result = pytester.runpytest_subprocess(
        "--concurrently-mode=auto", "-p", "no:randomly", "-rP", timeout=120
    )
    result.assert_outcomes(passed=4)


def _passes_sections(lines: list[str]) -> dict[str, str]:
    """The text under each test's header in the PASSES summary."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        header = line.strip("_ ")
        if line.startswith("____") and header:
            current = sections.setdefault(header, [])
        elif line.startswith("===="):
            current = None
        elif current is not None:
            current.append(line)
    return {name: "\n".join(text) for name, text in sections.items()}


def test_context_variables_set_by_shared_fixtures_reach_their_tests(
    pytester: pytest.Pytester,
) -> None:
    # A session fixture sets a context variable and resets it in its
    # teardown; tests after its setup see the value, as in pytest's one
    # context, and the reset works in the fixture's own context.
    pytester.makepyfile(
        """
        import asyncio
        import contextvars
        import pytest

        user = contextvars.ContextVar("user", default="anonymous")
        region = contextvars.ContextVar("region", default="none")

        @pytest.fixture(scope="session", autouse=True)
        def ci_identity():
            token = user.set("ci-bot")
            yield
            user.reset(token)

        @pytest.fixture(scope="module")
        async def in_region():
            await asyncio.sleep(0.01)
            region.set("eu")

        @pytest.mark.parametrize("n", range(3))
        async def test_async(n):
            await asyncio.sleep(0.05)
            assert user.get() == "ci-bot"

        def test_sync():
            assert user.get() == "ci-bot"

        async def test_module_fixture(in_region):
            await asyncio.sleep(0.01)
            assert region.get() == "eu"
        """
    )
    for mode in ("off", "auto"):
        pytester.runpytest(f"--concurrently-mode={mode}").assert_outcomes(passed=5)


def test_context_variable_of_a_module_fixture_is_reset_after_its_module(
    pytester: pytest.Pytester,
) -> None:
    # As in pytest's one context: set for the module's tests, sync or async,
    # and back to the default once the module fixture is torn down.
    pytester.makepyfile(
        test_a="""
        import asyncio
        import contextvars
        import pytest

        tenant = contextvars.ContextVar("tenant", default="none")

        @pytest.fixture(scope="module", autouse=True)
        def acme():
            token = tenant.set("acme")
            yield
            tenant.reset(token)

        async def test_async():
            await asyncio.sleep(0.01)
            assert tenant.get() == "acme"

        @pytest.mark.isolated
        def test_sync_alone():
            assert tenant.get() == "acme"
        """,
        test_b="""
        import asyncio
        from test_a import tenant

        async def test_after_async():
            await asyncio.sleep(0.01)
            assert tenant.get() == "none"

        def test_after_sync():
            assert tenant.get() == "none"
        """,
    )
    for mode in ("off", "marked", "auto"):
        pytester.runpytest(f"--concurrently-mode={mode}").assert_outcomes(passed=4)
