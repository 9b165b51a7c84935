"""The fixture contract: function scope per test, wider scopes shared."""

from __future__ import annotations

import pytest
from conftest import all_overlap, intervals, peak_overlap, read_events

pytestmark = pytest.mark.usefixtures("recorder")


def test_function_fixtures_belong_to_one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import itertools
        import pytest

        pytestmark = pytest.mark.concurrent
        counter = itertools.count()
        seen = {}

        @pytest.fixture
        def sync_value(request):
            return (next(counter), request.node.nodeid)

        @pytest.fixture
        async def async_value(request):
            await asyncio.sleep(0.05)
            return (next(counter), request.node.nodeid)

        @pytest.fixture
        async def async_generator(request):
            box = {"owner": request.node.nodeid}
            await asyncio.sleep(0.05)
            yield box
            assert box["owner"] == request.node.nodeid

        @pytest.mark.parametrize("n", range(6))
        async def test_it(n, request, sync_value, async_value, async_generator, tmp_path):
            assert sync_value[1] == async_value[1] == request.node.nodeid
            assert async_generator["owner"] == request.node.nodeid
            (tmp_path / "mine").write_text(request.node.nodeid)
            await asyncio.sleep(0.1)
            assert (tmp_path / "mine").read_text() == request.node.nodeid
            assert request.node.callspec.params["n"] == n
            seen[n] = (sync_value[0], async_value[0], id(async_generator), tmp_path)

        def test_instances_were_distinct():
            values = list(seen.values())
            assert len(values) == 6
            for position in range(4):
                assert len({v[position] for v in values}) == 6
        """
    )
    pytester.runpytest().assert_outcomes(passed=7)


def test_async_function_fixture_setup_and_teardown_overlap(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture
        async def slow(request):
            record(request.node.name, "setup-start")
            await asyncio.sleep(0.3)
            record(request.node.name, "setup-end")
            yield
            record(request.node.name, "teardown-start")
            await asyncio.sleep(0.3)
            record(request.node.name, "teardown-end")

        @pytest.mark.parametrize("n", range(5))
        async def test_it(n, slow):
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=5)
    events = read_events(pytester)
    assert all_overlap(intervals(events, "setup-start", "setup-end"))
    assert all_overlap(intervals(events, "teardown-start", "teardown-end"))


def test_wider_fixtures_are_created_once_and_torn_down_after_last_user(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture(scope="session")
        async def pool():
            record("pool", "setup")
            await asyncio.sleep(0.1)
            yield object()
            record("pool", "teardown")

        @pytest.fixture(scope="module")
        async def service(pool):
            record("service", "setup")
            await asyncio.sleep(0.2)
            yield {"pool": pool}
            await asyncio.sleep(0.05)
            record("service", "teardown")

        @pytest.mark.parametrize("n", range(8))
        async def test_it(n, service, pool):
            assert service["pool"] is pool
            record(f"t{n}", "start")
            await asyncio.sleep(0.05 * (n % 3))
            record(f"t{n}", "end")
        """
    )
    pytester.runpytest().assert_outcomes(passed=8)
    events = read_events(pytester)
    kinds = [(e.name, e.what) for e in events if e.name in ("pool", "service")]
    # Created once each, torn down in reverse order of creation.
    assert kinds == [
        ("pool", "setup"),
        ("service", "setup"),
        ("service", "teardown"),
        ("pool", "teardown"),
    ]
    last_test_end = max(e.t for e in events if e.what == "end")
    service_teardown = next(e.t for e in events if e.name == "service" and e.what == "teardown")
    assert service_teardown >= last_test_end
    assert all_overlap(intervals(events))


def test_conftest_module_fixture_has_one_instance_per_module(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import asyncio
        import pytest
        from recorder import record

        @pytest.fixture(scope="module")
        async def per_module(request):
            name = request.module.__name__
            record(name, "setup")
            await asyncio.sleep(0.1)
            yield name
            record(name, "teardown")
        """
    )
    for module in ("test_one", "test_two"):
        pytester.makepyfile(
            **{
                module: f"""
                import asyncio
                import pytest
                from recorder import record

                pytestmark = pytest.mark.concurrent

                @pytest.mark.parametrize("n", range(3))
                async def test_it(n, per_module):
                    assert per_module == "{module}"
                    record("{module}-%d" % n, "start")
                    await asyncio.sleep(0.2 + 0.1 * n)
                    record("{module}-%d" % n, "end")
                """
            }
        )
    pytester.runpytest().assert_outcomes(passed=6)
    events = read_events(pytester)
    for module in ("test_one", "test_two"):
        fixture_events = [e for e in events if e.name == module]
        assert [e.what for e in fixture_events] == ["setup", "teardown"]
        last_end = max(e.t for e in events if e.name.startswith(module + "-") and e.what == "end")
        assert fixture_events[1].t >= last_end
    # Both modules' tests were in flight together.
    assert all_overlap(intervals(events))


def test_failing_wider_fixture_errors_its_users_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent
        calls = []

        @pytest.fixture(scope="module")
        async def broken():
            calls.append(1)
            await asyncio.sleep(0.05)
            raise RuntimeError("cannot start")

        @pytest.mark.parametrize("n", range(3))
        async def test_user(n, broken):
            pass

        async def test_bystander():
            await asyncio.sleep(0.1)

        def test_setup_ran_once():
            assert calls == [1]
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=3)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_user*", "*RuntimeError: cannot start*"])


def test_fixture_features(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def overridden():
            return "conftest"

        @pytest.fixture
        def used_by_marker(request):
            request.node.stash_value = "marker"
        """
    )
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent
        finalized = []

        @pytest.fixture(autouse=True)
        async def auto(request):
            request.node.auto = True
            yield
            finalized.append(("auto", request.node.name))

        @pytest.fixture
        def overridden(overridden):
            return overridden + "+module"

        @pytest.fixture(params=["x", "y"])
        def letter(request):
            return request.param

        @pytest.fixture
        def doubled(request):
            return request.param * 2

        @pytest.fixture
        async def dynamic():
            await asyncio.sleep(0.01)
            return "dynamic"

        @pytest.fixture
        def with_finalizer(request):
            request.addfinalizer(lambda: finalized.append(("fin", request.node.name)))
            return "fin"

        @pytest.mark.usefixtures("used_by_marker")
        async def test_features(request, overridden, letter, with_finalizer):
            assert request.node.auto
            assert request.node.stash_value == "marker"
            assert overridden == "conftest+module"
            assert letter in "xy"
            assert with_finalizer == "fin"
            await asyncio.sleep(0.05)

        @pytest.mark.parametrize("doubled", [1, 2], indirect=True)
        async def test_indirect(doubled):
            assert doubled in (2, 4)

        def sync_dynamic(request):
            return request.getfixturevalue("dynamic")

        @pytest.fixture
        def uses_dynamic(request):
            return request.getfixturevalue("dynamic")

        async def test_getfixturevalue(uses_dynamic):
            assert uses_dynamic == "dynamic"

        class TestOverrideInClass:
            @pytest.fixture
            def overridden(self):
                return "class"

            async def test_class_override(self, overridden):
                assert overridden == "class"

        def test_finalizers_ran():
            names = {name for kind, name in finalized if kind == "fin"}
            assert names == {"test_features[x]", "test_features[y]"}
            assert len([1 for kind, _ in finalized if kind == "auto"]) == 6
        """
    )
    pytester.runpytest().assert_outcomes(passed=7)


def test_parametrized_module_fixture_values_never_overlap(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture(scope="module", params=["a", "b"])
        async def backend(request):
            record(request.param, "setup")
            yield request.param
            record(request.param, "teardown")

        @pytest.mark.parametrize("n", range(3))
        async def test_it(n, backend):
            record(f"{backend}{n}", "start", backend=backend)
            await asyncio.sleep(0.1)
            record(f"{backend}{n}", "end", backend=backend)
        """
    )
    pytester.runpytest().assert_outcomes(passed=6)
    events = read_events(pytester)
    spans = intervals(events)
    a_spans = {k: v for k, v in spans.items() if k.startswith("a")}
    b_spans = {k: v for k, v in spans.items() if k.startswith("b")}
    assert all_overlap(a_spans)
    assert all_overlap(b_spans)
    assert max(end for _, end in a_spans.values()) <= min(start for start, _ in b_spans.values())
    fixture_events = [(e.name, e.what) for e in events if e.what in ("setup", "teardown")]
    assert fixture_events == [("a", "setup"), ("a", "teardown"), ("b", "setup"), ("b", "teardown")]


def test_sync_test_shares_session_fixture_with_concurrent_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent
        created = []

        @pytest.fixture(scope="session")
        async def resource():
            created.append(1)
            await asyncio.sleep(0.01)
            return {"id": len(created)}

        async def test_async_one(resource):
            assert resource["id"] == 1

        def test_sync(resource):
            assert resource["id"] == 1

        async def test_async_two(resource):
            assert resource["id"] == 1
            assert created == [1]
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_contextvars_set_in_fixture_are_seen_by_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import contextvars
        import pytest

        pytestmark = pytest.mark.concurrent
        current = contextvars.ContextVar("current")

        @pytest.fixture
        async def owner(request):
            current.set(request.node.name)
            await asyncio.sleep(0.05)
            yield
            assert current.get() == request.node.name

        @pytest.mark.parametrize("n", range(4))
        async def test_it(n, owner, request):
            await asyncio.sleep(0.05)
            assert current.get() == request.node.name
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)


def test_background_task_of_session_fixture_keeps_running(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.concurrent

        @pytest.fixture(scope="session")
        async def ticker():
            ticks = []
            async def tick():
                while True:
                    ticks.append(1)
                    await asyncio.sleep(0.01)
            task = asyncio.create_task(tick())
            yield ticks
            task.cancel()

        @pytest.mark.parametrize("n", range(3))
        async def test_sees_ticks(n, ticker):
            before = len(ticker)
            await asyncio.sleep(0.1)
            assert len(ticker) > before
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_wider_fixture_teardown_error_is_reported_on_the_scope_s_last_collected_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent
        started, all_started = [], asyncio.Event()
        ended, others_ended = [], asyncio.Event()

        @pytest.fixture(scope="module")
        async def breaks_on_teardown():
            yield
            raise RuntimeError("module teardown broke")

        @pytest.mark.parametrize("n", range(3))
        async def test_it(n, request, breaks_on_teardown):
            record(request.node.name, "start")
            started.append(n)
            if len(started) == 3:
                all_started.set()
            if n == 0:
                # Collected first, ends last: once the other two have ended.
                await asyncio.wait_for(others_ended.wait(), 10)
            else:
                await asyncio.wait_for(all_started.wait(), 10)
                ended.append(n)
                if len(ended) == 2:
                    others_ended.set()
            record(request.node.name, "end")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, errors=1)
    spans = intervals(read_events(pytester))
    # All three were in flight together, and test_it[0] ended last.
    assert all_overlap(spans)
    assert max(spans, key=lambda name: spans[name][1]) == "test_it[0]"
    # As in pytest, the module's last test in collection order (not the one
    # that happened to finish last) tears the module down and carries the error.
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_it[[]2[]]*", "*module teardown broke*"]
    )


def test_two_hundred_slow_fixtures_set_up_a_hundred_at_a_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture
        async def slow(request):
            record(request.node.name, "setup-start")
            await asyncio.sleep(0.3)
            record(request.node.name, "setup-end")
            yield
            await asyncio.sleep(0.3)

        @pytest.mark.parametrize("n", range(200))
        async def test_it(n, slow):
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=200)
    setups = intervals(read_events(pytester), "setup-start", "setup-end")
    assert len(setups) == 200
    # The default limit of 100 tests in flight, reached by the setups alone.
    assert peak_overlap(setups) == 100


def test_function_fixtures_are_torn_down_before_the_wider_ones_they_use(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture(scope="module")
        async def connection():
            yield {"open": True}
            record("connection", "teardown")

        @pytest.fixture
        async def session(request, connection):
            yield
            await asyncio.sleep(0.05)
            assert connection["open"]
            record(request.node.name, "teardown")

        @pytest.mark.parametrize("n", range(3))
        async def test_it(n, session):
            await asyncio.sleep(0.01 * n)
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)
    order = [e.name for e in read_events(pytester) if e.what == "teardown"]
    assert order[-1] == "connection"
    assert sorted(order[:-1]) == ["test_it[0]", "test_it[1]", "test_it[2]"]


def test_parametrized_package_fixture_values_never_overlap_across_subpackages(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        **{
            "pkg/__init__.py": "",
            "pkg/conftest.py": """
                import pytest
                from recorder import record

                @pytest.fixture(scope="package", params=["a", "b"])
                async def backend(request):
                    record(request.param, "setup")
                    yield request.param
                    record(request.param, "teardown")
                """,
            "pkg/sub1/__init__.py": "",
            "pkg/sub2/__init__.py": "",
        }
    )
    for sub in ("sub1", "sub2"):
        pytester.makepyfile(
            **{
                f"pkg/{sub}/test_{sub}.py": f"""
                import asyncio
                import pytest
                from recorder import record

                pytestmark = pytest.mark.concurrent

                @pytest.mark.parametrize("n", range(2))
                async def test_it(n, backend):
                    record(f"{sub}-{{backend}}{{n}}", "start", backend=backend)
                    await asyncio.sleep(0.1 + 0.05 * n)
                    record(f"{sub}-{{backend}}{{n}}", "end", backend=backend)
                """
            }
        )
    pytester.runpytest().assert_outcomes(passed=8)
    events = read_events(pytester)
    spans = intervals(events)
    by_value = {
        value: [span for name, span in spans.items() if name.split("-")[1].startswith(value)]
        for value in "ab"
    }
    for a_span in by_value["a"]:
        for b_span in by_value["b"]:
            assert a_span[1] <= b_span[0] or b_span[1] <= a_span[0]
    # pytest orders the items sub1[a], sub1[b], sub2[a], sub2[b] and switches
    # the value four times; so does the concurrent run.
    fixture_events = [(e.name, e.what) for e in events if e.what in ("setup", "teardown")]
    assert fixture_events == [(value, what) for value in "abab" for what in ("setup", "teardown")]


def test_class_fixture_has_one_instance_per_class_while_classes_overlap(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from recorder import record

        pytestmark = pytest.mark.concurrent

        @pytest.fixture(scope="class")
        async def per_class(request):
            name = request.cls.__name__
            record(name, "setup")
            yield name
            record(name, "teardown")

        class TestOne:
            @pytest.mark.parametrize("n", range(2))
            async def test_it(self, n, per_class):
                assert per_class == "TestOne"
                record(f"TestOne{n}", "start")
                await asyncio.sleep(0.1)
                record(f"TestOne{n}", "end")

        class TestTwo:
            @pytest.mark.parametrize("n", range(2))
            async def test_it(self, n, per_class):
                assert per_class == "TestTwo"
                record(f"TestTwo{n}", "start")
                await asyncio.sleep(0.1)
                record(f"TestTwo{n}", "end")
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)
    events = read_events(pytester)
    assert all_overlap(intervals(events))
    for name in ("TestOne", "TestTwo"):
        assert [e.what for e in events if e.name == name] == ["setup", "teardown"]


def test_indirect_values_in_different_orders_never_share_an_instance(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        live = {"db": None}

        @pytest.fixture(scope="session")
        async def db(request):
            assert live["db"] is None, f"{request.param} set up while {live['db']} is live"
            live["db"] = request.param
            yield request.param
            live["db"] = None
        """
    )
    for module, values in (("test_a", ["postgres", "sqlite"]), ("test_b", ["sqlite", "postgres"])):
        pytester.makepyfile(
            **{
                module: f"""
                import asyncio
                import pytest
                from conftest import live

                pytestmark = pytest.mark.concurrent

                @pytest.mark.parametrize("db", {values!r}, indirect=True)
                async def test_it(db):
                    await asyncio.sleep(0.1)
                    assert live["db"] == db
                """
            }
        )
    pytester.runpytest().assert_outcomes(passed=4)


def test_dynamically_requested_function_fixtures_belong_to_one_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import itertools
        import pytest

        counter = itertools.count()

        @pytest.fixture
        def dynamic(request):
            return (next(counter), request.node.name)

        @pytest.fixture
        def via_sync(request):
            return request.getfixturevalue("dynamic")

        @pytest.mark.concurrent
        @pytest.mark.parametrize("n", range(3))
        async def test_it(n, via_sync, request):
            await asyncio.sleep(0.1)
            assert via_sync[1] == request.node.name
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_doctests_share_session_fixtures_with_concurrent_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        SETUPS = []

        @pytest.fixture(scope="session", autouse=True)
        def session_resource():
            SETUPS.append(1)
            yield
        """
    )
    pytester.makepyfile(
        '''
        import pytest

        @pytest.mark.concurrent
        async def test_concurrent():
            pass

        def helper():
            """
            >>> 1 + 1
            2
            """

        def test_set_up_once():
            import conftest
            assert conftest.SETUPS == [1]
        '''
    )
    pytester.runpytest("--doctest-modules").assert_outcomes(passed=3)


def test_a_rerun_protocol_does_not_tear_scopes_down_early(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from _pytest.runner import runtestprotocol

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_protocol(item, nextitem):
            # Rerun a failed test once, as pytest-rerunfailures does.
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            if any(report.failed for report in reports):
                reports = runtestprotocol(item, nextitem=nextitem, log=False)
            for report in reports:
                item.ihook.pytest_runtest_logreport(report=report)
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
            return True
        """
    )
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        SETUPS = []
        attempts = []

        @pytest.fixture(scope="module")
        def module_resource():
            SETUPS.append(1)
            yield

        def test_flaky(module_resource):
            attempts.append(1)
            assert len(attempts) > 1

        @pytest.mark.concurrent
        async def test_concurrent(module_resource):
            await asyncio.sleep(0.01)

        def test_set_up_once(module_resource):
            assert SETUPS == [1]
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


@pytest.mark.parametrize("mode", ["marked", "off"])
def test_tests_that_run_alone_have_a_context_of_their_own(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import contextvars
        import pytest

        var = contextvars.ContextVar("var", default="unset")

        @pytest.fixture
        async def sets_var(request):
            var.set(request.node.name + "!")
            yield

        async def test_first(sets_var):
            assert var.get() == "test_first!"

        async def test_second():
            assert var.get() == "unset"

        @pytest.mark.concurrent
        async def test_concurrent():
            assert var.get() == "unset"
        """
    )
    pytester.runpytest(f"--concurrently-mode={mode}").assert_outcomes(passed=3)


def test_parameters_not_equal_to_themselves_still_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrent
        @pytest.mark.parametrize("x", [float("nan")], scope="module")
        async def test_nan(x):
            pass

        def test_sync_after():
            pass

        async def test_async_after():
            pass
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_sync_fixtures_requested_from_an_async_body(pytester: pytest.Pytester) -> None:
    # request.getfixturevalue from inside an async def test, for sync
    # fixtures of any scope that no test has set up yet, as suites that pick
    # a fixture by parameter do.
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.fixture(scope="module")
        def catalogue():
            return {"a": 1}

        @pytest.fixture
        def text_file(tmp_path, catalogue):
            path = tmp_path / "a.txt"
            path.write_text(str(catalogue["a"]))
            return path

        @pytest.mark.concurrent
        @pytest.mark.parametrize("name", ["text_file", "catalogue"])
        async def test_by_name(request, name):
            await asyncio.sleep(0.01)
            value = request.getfixturevalue(name)
            assert value
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
