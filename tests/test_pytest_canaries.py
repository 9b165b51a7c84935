"""Canaries for the pytest internals the plugin relies on.

``pytest_concurrently._pytest_adapter`` bends pytest's private internals
(``FixtureDef``'s cache, ``SetupState``, the capture manager, the logging
plugin, the warnings and assertion hooks, the runner's functions). pytest may
move any of them in any release. Each test here checks one such behaviour,
and is named after it, so that after a pytest upgrade the first failure names
the internal that moved instead of surfacing as a puzzling failure of a
concurrency test. The tests check pytest alone: inner sessions run without
this plugin (``-p no:concurrently``), and nothing here imports the adapter.

Behaviours that need a session run in an inner session through ``pytester``
(the inner test asserts, the outer one checks it passed); signatures and
attributes are checked by introspection.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

import pytest
from _pytest.assertion import truncate as assertion_truncate
from _pytest.assertion import util as assertion_util
from _pytest.capture import CaptureManager
from _pytest.fixtures import (
    FixtureDef,
    FuncFixtureInfo,
    call_fixture_func,
    get_scope_node,
    get_scope_package,
    resolve_fixture_function,
)
from _pytest.logging import LogCaptureHandler, LoggingPlugin, caplog_handler_key, caplog_records_key
from _pytest.outcomes import TEST_OUTCOME
from _pytest.runner import SetupState, call_and_report, show_test_item
from _pytest.scope import Scope
from _pytest.terminal import TerminalReporter
from _pytest.unittest import TestCaseFunction as UnittestTestCaseFunction
from _pytest.warnings import catch_warnings_for_item

#: Inner sessions check pytest alone, without this plugin.
WITHOUT_PLUGIN = ("-p", "no:concurrently")


def _parameter_names(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def _only_function(pytester: pytest.Pytester, source: str) -> pytest.Function:
    item = pytester.getitem(source)
    assert isinstance(item, pytest.Function), f"expected a test function, got {item!r}"
    return item


# ---------------------------------------------------------------------------
# Fixture definitions: one FixtureDef copy per test and per scope node


def test_fixturedef_keeps_its_state_in_the_instance_dict(pytester: pytest.Pytester) -> None:
    # Copies are made by copying the instance __dict__ and resetting the cache
    # and the finalizer list in it.
    item = _only_function(
        pytester,
        """
        import pytest

        @pytest.fixture
        def value():
            return 1

        def test_func(value):
            pass
        """,
    )
    definition = item._fixtureinfo.name2fixturedefs["value"][-1]
    state = vars(definition)
    for name in ("cached_result", "_finalizers", "_scope", "func", "argnames", "argname"):
        assert name in state, f"FixtureDef no longer keeps {name!r} in its instance __dict__"
    assert definition._scope is Scope.Function


def test_fixturedef_caches_one_result_in_cached_result(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        def value():
            return "the value"

        def test_cached(value, request):
            definition = request.node._fixtureinfo.name2fixturedefs["value"][-1]
            assert definition.cached_result == ("the value", None, None)
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)


def test_subrequest_param_is_the_cache_key(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(params=["first", "second"])
        def value(request):
            return request.param

        def test_cached(value, request):
            definition = request.node._fixtureinfo.name2fixturedefs["value"][-1]
            result, cache_key, error = definition.cached_result
            assert result == value
            assert cache_key == value
            assert error is None
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=2)


def test_fixturedef_execute_calls_finish_when_cache_key_changes(
    pytester: pytest.Pytester,
) -> None:
    # A shared copy holds one parameter value at a time: asking it for
    # another value tears the old one down from inside execute().
    pytester.makepyfile(
        """
        import inspect
        import pytest

        events = []

        @pytest.fixture(scope="module", params=[1, 2])
        def value(request):
            events.append(("setup", request.param))
            yield request.param
            callers = [frame.function for frame in inspect.stack()]
            events.append(("teardown", request.param, "execute" in callers))

        def test_uses(value):
            if value == 2:
                assert events == [("setup", 1), ("teardown", 1, True), ("setup", 2)]
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=2)


def test_fixturedef_execute_registers_finish_on_request_node(pytester: pytest.Pytester) -> None:
    # The teardown of a module-scoped value is a finalizer of the module in
    # the SetupState stack, which the concurrent SetupState runs when the
    # module's last test ends.
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        def value():
            return 1

        def test_registered(value, request):
            definition = request.node._fixtureinfo.name2fixturedefs["value"][-1]
            module = request.node.getparent(pytest.Module)
            finalizers = request.session._setupstate.stack[module][0]
            finishes = [f for f in finalizers if getattr(f, "func", None) == definition.finish]
            assert len(finishes) == 1
            assert finishes[0].keywords["request"].node is module
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)


def test_fixture_requests_call_execute_on_the_instance_with_a_request_keyword(
    pytester: pytest.Pytester,
) -> None:
    # Shared copies get an ``execute`` of their own in the instance __dict__.
    pytester.makeconftest(
        """
        calls = []

        def pytest_collection_modifyitems(items):
            for item in items:
                for definition in item._fixtureinfo.name2fixturedefs["value"]:
                    original = type(definition).execute.__get__(definition)

                    def execute(request, original=original):
                        calls.append(request.fixturename)
                        return original(request)

                    definition.__dict__["execute"] = execute
        """
    )
    pytester.makepyfile(
        """
        import pytest
        import conftest

        @pytest.fixture
        def value():
            return 1

        def test_routed(value):
            assert conftest.calls == ["value"]
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)


def test_fixture_value_is_read_from_cached_result_not_from_the_hook_result(
    pytester: pytest.Pytester,
) -> None:
    # ``pytest_fixture_setup`` is a first-result hook, so an async fixture
    # whose value is None returns a stand-in; the value must come from
    # ``cached_result``.
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_fixture_setup(fixturedef, request):
            if fixturedef.argname == "value":
                fixturedef.cached_result = (None, fixturedef.cache_key(request), None)
                return object()
            return None
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def value():
            return "not called"

        def test_value(value, request):
            assert value is None
            assert request.getfixturevalue("value") is None
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)


def test_fixturedef_caches_a_setup_error_in_the_form_of_its_version(
    pytester: pytest.Pytester,
) -> None:
    # The adapter caches the setup errors of the fixtures it sets up itself
    # in the form pytest's own setup uses: ``(exception, traceback)`` from
    # pytest 8.3, the exception alone in 8.2 (see cache_outcome).
    pytester.makeconftest(
        """
        import pytest

        FORMS = []

        @pytest.hookimpl(wrapper=True)
        def pytest_fixture_setup(fixturedef, request):
            try:
                return (yield)
            finally:
                error = fixturedef.cached_result[2] if fixturedef.cached_result else None
                if fixturedef.argname == "broken":
                    FORMS.append(type(error).__name__)

        def pytest_sessionfinish(session):
            print("forms:", FORMS)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        def broken():
            raise RuntimeError("the cached error")

        def test_first(broken):
            pass

        def test_second(broken):
            pass
        """
    )
    result = pytester.runpytest("-s", *WITHOUT_PLUGIN)
    result.assert_outcomes(errors=2)
    expected = "tuple" if pytest.version_tuple[:2] >= (8, 3) else "RuntimeError"
    assert f"forms: ['{expected}']" in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*_ ERROR at setup of test_second _*", "E*RuntimeError: the cached error"]
    )


def test_top_request_looks_fixtures_up_through_name2fixturedefs_get(
    pytester: pytest.Pytester,
) -> None:
    # A test's fixture definitions are swapped by replacing its _fixtureinfo
    # and calling _initrequest(); dynamically requested names are copied on
    # lookup through the map's get(). pytest 8 copies the map with copy().
    pytester.makeconftest(
        """
        from _pytest.fixtures import FuncFixtureInfo

        class RecordingMap(dict):
            looked_up = []

            def copy(self):
                return RecordingMap(self)

            def get(self, name, default=None):
                RecordingMap.looked_up.append(name)
                return super().get(name, default)

        def pytest_collection_modifyitems(items):
            for item in items:
                info = item._fixtureinfo
                item._fixtureinfo = FuncFixtureInfo(
                    argnames=info.argnames,
                    initialnames=info.initialnames,
                    names_closure=info.names_closure,
                    name2fixturedefs=RecordingMap(info.name2fixturedefs),
                )
                item._initrequest()
        """
    )
    pytester.makepyfile(
        """
        import pytest
        import conftest

        @pytest.fixture
        def static():
            return "static"

        @pytest.fixture
        def dynamic():
            return "dynamic"

        def test_lookups(static, request):
            assert request.getfixturevalue("dynamic") == "dynamic"
            assert "static" in conftest.RecordingMap.looked_up
            assert "dynamic" in conftest.RecordingMap.looked_up
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)


def test_fixture_manager_getfixturedefs_finds_definitions_for_an_item(
    pytester: pytest.Pytester,
) -> None:
    item = _only_function(
        pytester,
        """
        import pytest

        @pytest.fixture
        def value():
            return 1

        def test_func():
            pass
        """,
    )
    manager = item.session._fixturemanager
    assert _parameter_names(manager.getfixturedefs) == ["argname", "node"]
    definitions = manager.getfixturedefs("value", item)
    assert definitions is not None
    assert [d.argname for d in definitions] == ["value"]
    assert manager.getfixturedefs("no_such_fixture", item) is None


def test_get_scope_node_finds_the_module_and_no_class_outside_a_class(
    pytester: pytest.Pytester,
) -> None:
    item = _only_function(pytester, "def test_func(): pass")
    assert get_scope_node(item, Scope.Function) is item
    assert get_scope_node(item, Scope.Module) is item.getparent(pytest.Module)
    assert get_scope_node(item, Scope.Class) is None
    assert get_scope_node(item, Scope.Session) is item.session


def test_get_scope_package_falls_back_to_the_session(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="package")
        def value():
            return 1
        """
    )
    item = _only_function(pytester, "def test_func(value): pass")
    definition: FixtureDef[Any] = item._fixtureinfo.name2fixturedefs["value"][-1]
    assert definition._scope is Scope.Package
    assert _parameter_names(get_scope_package) == ["node", "fixturedef"]
    assert get_scope_package(item, definition) is item.session


def test_callspec_arg2scope(pytester: pytest.Pytester) -> None:
    items = pytester.getitems(
        """
        import pytest

        @pytest.fixture(scope="module", params=["m"])
        def module_value(request):
            return request.param

        @pytest.mark.parametrize("direct", [1])
        @pytest.mark.parametrize("wide", [2], scope="session")
        def test_func(direct, wide, module_value):
            pass
        """
    )
    [item] = items
    assert isinstance(item, pytest.Function)
    callspec = item.callspec
    assert callspec.params == {"direct": 1, "wide": 2, "module_value": "m"}
    assert dict(callspec._arg2scope) == {
        "direct": Scope.Function,
        "wide": Scope.Session,
        "module_value": Scope.Module,
    }


def test_fixture_request_pyfuncitem_is_the_requesting_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        requested_by = []

        @pytest.fixture(scope="module")
        def value(request):
            requested_by.append(request._pyfuncitem.name)

        def test_first(value, request):
            assert request._pyfuncitem is request.node
            assert requested_by == ["test_first"]
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)


def test_fixture_function_resolution_and_call_signatures() -> None:
    assert _parameter_names(resolve_fixture_function) == ["fixturedef", "request"]
    assert _parameter_names(call_fixture_func) == ["fixturefunc", "request", "kwargs"]
    assert _parameter_names(FixtureDef.cache_key) == ["self", "request"]
    assert _parameter_names(FixtureDef.execute) == ["self", "request"]


def test_skip_exception_can_be_reported_at_the_item() -> None:
    # A skip raised in an async fixture is reported at the test, as pytest
    # does for plain fixtures.
    exc = pytest.skip.Exception("skipped")
    assert exc._use_item_location is False


def test_test_outcome_covers_outcomes_and_exceptions() -> None:
    assert isinstance(pytest.skip.Exception("skipped"), TEST_OUTCOME)
    assert isinstance(pytest.fail.Exception("failed"), TEST_OUTCOME)
    assert isinstance(ValueError(), TEST_OUTCOME)
    assert not isinstance(KeyboardInterrupt(), TEST_OUTCOME)


# ---------------------------------------------------------------------------
# SetupState


def test_setupstate_stack_maps_node_to_finalizers_and_exception(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_stack(request):
            stack = request.session._setupstate.stack
            assert list(stack) == request.node.listchain()
            for node, (finalizers, error) in stack.items():
                assert error is None
                assert finalizers[0] == node.teardown
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)


def test_setupstate_method_signatures() -> None:
    assert _parameter_names(SetupState.setup) == ["self", "item"]
    assert _parameter_names(SetupState.teardown_exact) == ["self", "nextitem"]
    assert _parameter_names(SetupState.addfinalizer) == ["self", "finalizer", "node"]
    assert SetupState().stack == {}


def test_runner_uses_the_sessions_setupstate_for_every_phase(pytester: pytest.Pytester) -> None:
    # The concurrent SetupState is installed by replacing session._setupstate
    # once the session has started.
    pytester.makeconftest(
        """
        import pytest
        from _pytest.runner import SetupState

        class RecordingSetupState(SetupState):
            calls = []

            def setup(self, item):
                self.calls.append(("setup", item.name))
                super().setup(item)

            def teardown_exact(self, nextitem):
                self.calls.append(("teardown_exact", nextitem and nextitem.name))
                super().teardown_exact(nextitem)

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtestloop(session):
            session._setupstate = RecordingSetupState()
        """
    )
    pytester.makepyfile(
        """
        def test_first():
            pass

        def test_second(request):
            assert request.session._setupstate.calls == [
                ("setup", "test_first"),
                ("teardown_exact", "test_second"),
                ("setup", "test_second"),
            ]
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=2)


# ---------------------------------------------------------------------------
# Capture


def test_capture_manager_has_item_capture_context_manager() -> None:
    item_capture = CaptureManager.item_capture
    wrapped = getattr(item_capture, "__wrapped__", None)
    assert inspect.isgeneratorfunction(wrapped), "item_capture is no longer a @contextmanager"
    assert _parameter_names(item_capture) == ["self", "when", "item"]
    assert callable(CaptureManager.suspend_global_capture)
    assert callable(CaptureManager.resume_global_capture)


def test_capture_manager_keeps_the_capture_method_in_method() -> None:
    for method in ("no", "sys", "fd", "tee-sys"):
        assert CaptureManager(method)._method == method


def test_capture_and_logging_plugins_are_registered_by_name(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfigure("-s")
    plugins = config.pluginmanager
    assert isinstance(plugins.get_plugin("capturemanager"), CaptureManager)
    assert isinstance(plugins.get_plugin("logging-plugin"), LoggingPlugin)
    assert plugins.has_plugin("warnings")


def test_capture_manager_runs_each_phase_through_its_item_capture(
    pytester: pytest.Pytester,
) -> None:
    # The routed item_capture is installed in the manager's instance __dict__.
    pytester.makeconftest(
        """
        calls = []

        def pytest_configure(config):
            capman = config.pluginmanager.get_plugin("capturemanager")
            original = capman.item_capture

            def item_capture(when, item):
                calls.append((when, item.name))
                return original(when, item)

            capman.__dict__["item_capture"] = item_capture
        """
    )
    pytester.makepyfile(
        """
        import conftest

        def test_first():
            pass

        def test_second():
            assert conftest.calls == [
                ("setup", "test_first"),
                ("call", "test_first"),
                ("teardown", "test_first"),
                ("setup", "test_second"),
                ("call", "test_second"),
            ]
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=2)


# ---------------------------------------------------------------------------
# Logging


def test_logging_plugin_runtest_for_signature() -> None:
    runtest_for = LoggingPlugin._runtest_for
    # pytest 9: a @contextmanager; pytest 8: a generator function.
    generator_function = getattr(runtest_for, "__wrapped__", runtest_for)
    assert inspect.isgeneratorfunction(generator_function)
    assert _parameter_names(runtest_for) == ["self", "item", "when"]


def test_logging_plugin_runs_each_phase_through_its_runtest_for(
    pytester: pytest.Pytester,
) -> None:
    # The routed _runtest_for is installed in the plugin's instance __dict__.
    pytester.makeconftest(
        """
        import pytest

        calls = []

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            plugin = config.pluginmanager.get_plugin("logging-plugin")
            original = plugin._runtest_for

            def runtest_for(item, when):
                calls.append((when, item.name))
                return original(item, when)

            plugin.__dict__["_runtest_for"] = runtest_for
        """
    )
    pytester.makepyfile(
        """
        import conftest

        def test_first():
            pass

        def test_second():
            assert conftest.calls == [
                ("setup", "test_first"),
                ("call", "test_first"),
                ("teardown", "test_first"),
                ("setup", "test_second"),
                ("call", "test_second"),
            ]
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=2)


def test_logging_plugin_has_log_level_and_formatter(pytester: pytest.Pytester) -> None:
    plugin = pytester.parseconfigure("-s").pluginmanager.get_plugin("logging-plugin")
    assert isinstance(plugin, LoggingPlugin)
    assert plugin.log_level is None
    assert isinstance(plugin.formatter, logging.Formatter)
    configured = pytester.parseconfigure("-s", "--log-level=INFO")
    plugin = configured.pluginmanager.get_plugin("logging-plugin")
    assert isinstance(plugin, LoggingPlugin)
    assert plugin.log_level == logging.INFO


def test_caplog_reads_its_handler_and_records_from_the_item_stash(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from _pytest.logging import LogCaptureHandler, caplog_handler_key, caplog_records_key

        def test_stash(caplog, request):
            handler = LogCaptureHandler()
            request.node.stash[caplog_handler_key] = handler
            assert caplog.handler is handler
            records = []
            request.node.stash[caplog_records_key]["call"] = records
            assert caplog.get_records("call") is records
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)
    assert isinstance(caplog_handler_key, pytest.StashKey)
    assert isinstance(caplog_records_key, pytest.StashKey)


def test_log_capture_handler_state_is_handler_state_plus_stream_and_records() -> None:
    # The plugin builds these handlers without registering them with the
    # logging module, so it sets exactly these attributes itself.
    handler = LogCaptureHandler()
    assert set(vars(handler)) == {
        "filters",
        "_name",
        "level",
        "formatter",
        "_closed",
        "lock",
        "stream",
        "records",
    }
    handler.records.append(logging.makeLogRecord({"msg": "gone after reset"}))
    handler.stream.write("gone after reset")
    handler.reset()
    assert handler.records == []
    assert handler.stream.getvalue() == ""


# ---------------------------------------------------------------------------
# Warnings


def test_catch_warnings_for_item_signature() -> None:
    parameters = list(inspect.signature(catch_warnings_for_item).parameters.values())
    assert [p.name for p in parameters[:4]] == ["config", "ihook", "when", "item"]
    for parameter in parameters[:4]:
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for parameter in parameters[4:]:
        assert parameter.default is not inspect.Parameter.empty, parameter


def test_warnings_filters_mutated_lets_a_location_warn_again() -> None:
    # A Python internal, not a pytest one: one catch_warnings block spans a
    # concurrent phase, so each test forgets the locations that warned.
    def warn() -> None:
        warnings.warn("canary", UserWarning, stacklevel=1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warn()
        warn()
        assert len(caught) == 1
        warnings._filters_mutated()  # type: ignore[attr-defined]
        warn()
        assert len(caught) == 2


# ---------------------------------------------------------------------------
# Assertion rewriting


def test_assertion_util_hooks_exist() -> None:
    for name in ("_reprcompare", "_assertion_pass", "_config"):
        assert hasattr(assertion_util, name), f"_pytest.assertion.util.{name} is gone"


def test_rewritten_asserts_explain_through_assertion_util_reprcompare(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from _pytest.assertion import util

        def test_explained(monkeypatch):
            monkeypatch.setattr(util, "_reprcompare", lambda op, left, right: "canary says no")
            with pytest.raises(AssertionError, match="canary says no"):
                assert 1 == 2
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)


def test_rewritten_asserts_report_passes_through_assertion_util_assertion_pass(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        """
        [pytest]
        enable_assertion_pass_hook = true
        """
    )
    pytester.makepyfile(
        """
        from _pytest.assertion import util

        def test_reported(monkeypatch):
            passed = []
            monkeypatch.setattr(
                util, "_assertion_pass", lambda lineno, orig, expl: passed.append(orig)
            )
            assert 1 == 1
            monkeypatch.undo()
            assert passed == ["1 == 1"]
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=1)


def test_assertion_truncation_takes_config_or_item() -> None:
    # pytest 9 truncates by the config, pytest 8 by the item.
    by_config = getattr(assertion_truncate, "materialize_with_truncation", None)
    by_item = getattr(assertion_truncate, "truncate_if_required", None)
    if by_config is not None:
        assert _parameter_names(by_config)[:2] == ["lines", "config"]
    else:
        assert by_item is not None, "no assertion truncation function left in pytest"
        assert _parameter_names(by_item)[:2] == ["explanation", "item"]


def test_assertmode_option_is_rewrite_by_default(pytester: pytest.Pytester) -> None:
    assert pytester.parseconfigure("-s").getvalue("assertmode") == "rewrite"


# ---------------------------------------------------------------------------
# The per-test protocol


def test_call_and_report_signature() -> None:
    parameters = inspect.signature(call_and_report).parameters
    assert list(parameters)[:3] == ["item", "when", "log"]
    # nextitem reaches pytest_runtest_teardown through **kwds.
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def test_show_test_item_signature() -> None:
    parameters = inspect.signature(show_test_item).parameters
    first, *extra = parameters
    assert first == "item"
    # pytest 8.4 added the keyword-only add_space.
    assert extra in ([], ["add_space"])
    if extra:
        assert parameters["add_space"].kind is inspect.Parameter.KEYWORD_ONLY


def test_runtestprotocol_drops_request_and_funcargs_after_teardown(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def value():
            return 1

        def test_first(value):
            pass

        def test_second(request):
            first = request.session.items[0]
            assert first._request is False
            assert first.funcargs is None
        """
    )
    pytester.runpytest(*WITHOUT_PLUGIN).assert_outcomes(passed=2)


def test_initrequest_gives_a_function_a_fresh_request(pytester: pytest.Pytester) -> None:
    item = _only_function(pytester, "def test_func(): pass")
    item._request = False  # type: ignore[assignment]
    item.funcargs = None  # type: ignore[assignment]
    item._initrequest()
    assert isinstance(item._request, pytest.FixtureRequest)
    assert item.funcargs == {}


def test_fixtureinfo_argnames_are_the_test_function_arguments(
    pytester: pytest.Pytester,
) -> None:
    item = _only_function(
        pytester,
        """
        import pytest

        @pytest.fixture(autouse=True)
        def automatic():
            pass

        @pytest.fixture
        def value():
            return 1

        def test_func(value, request):
            pass
        """,
    )
    info = item._fixtureinfo
    assert isinstance(info, FuncFixtureInfo)
    assert info.argnames == ("value", "request")
    assert "automatic" in info.names_closure
    assert set(info.name2fixturedefs) >= {"value", "automatic"}


def test_unittest_test_cases_are_test_case_functions(pytester: pytest.Pytester) -> None:
    [item] = pytester.getitems(
        """
        import unittest

        class TestCase(unittest.TestCase):
            def test_method(self):
                pass
        """
    )
    assert type(item) is UnittestTestCaseFunction
    assert issubclass(UnittestTestCaseFunction, pytest.Function)


def test_terminal_reporter_logstart_writes_only_through_two_methods(
    pytester: pytest.Pytester,
) -> None:
    # The terminal lines of concurrent tests silence logstart by shadowing
    # these two methods, and read currentfspath to place progress letters.
    for option in ("-v", "-q"):
        reporter = pytester.parseconfigure(option).pluginmanager.get_plugin("terminalreporter")
        # pytest 8.2 does not export pytest.TerminalReporter.
        assert isinstance(reporter, TerminalReporter)
        written: list[str] = []

        def write(text: str, written: list[str] = written, **markup: bool) -> None:
            written.append(text)

        reporter._tw.write = write  # type: ignore[method-assign,assignment]
        reporter.__dict__["write_ensure_prefix"] = lambda *args, **kwargs: None
        reporter.__dict__["write_fspath_result"] = lambda *args, **kwargs: None
        reporter.pytest_runtest_logstart(nodeid="test_a.py::test_x", location=("test_a.py", 0, "x"))
        assert written == []
        assert hasattr(reporter, "currentfspath")
        assert isinstance(reporter.showlongtestinfo, bool)
        assert isinstance(reporter.showfspath, bool)


def test_live_log_handler_writes_to_the_terminal_reporter(pytester: pytest.Pytester) -> None:
    # With --log-cli-level, concurrent tests' live records are tagged by
    # replacing this handler's emit.
    from _pytest.logging import _LiveLoggingStreamHandler

    config = pytester.parseconfigure("--log-cli-level=INFO")
    plugin = config.pluginmanager.get_plugin("logging-plugin")
    assert isinstance(plugin, LoggingPlugin)
    assert isinstance(plugin.log_cli_handler, _LiveLoggingStreamHandler)
    assert plugin.log_cli_handler.stream is config.pluginmanager.get_plugin("terminalreporter")


def test_capture_fixtures_go_through_these_capture_manager_methods(
    pytester: pytest.Pytester,
) -> None:
    # For a concurrent test, the runner shadows set_fixture, unset_fixture
    # and global_and_fixture_disabled, and swaps the fixture's captureclass.
    from _pytest.capture import CaptureFixture, SysCapture, SysCaptureBinary

    for name in ("set_fixture", "unset_fixture", "global_and_fixture_disabled"):
        assert callable(getattr(CaptureManager, name))
    assert {"_start", "close", "readouterr", "disabled"} <= set(vars(CaptureFixture))
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def seen(request):
            capman = request.config.pluginmanager.getplugin("capturemanager")
            return capman
        """
    )
    pytester.makepyfile(
        """
        from _pytest.capture import SysCapture, SysCaptureBinary

        def test_sys(capsys, seen):
            assert seen._capture_fixture is capsys
            assert capsys.captureclass is SysCapture

        def test_binary(capsysbinary, seen):
            assert capsysbinary.captureclass is SysCaptureBinary
        """
    )
    pytester.runpytest("-p", "no:concurrently").assert_outcomes(passed=2)
    assert not issubclass(SysCaptureBinary, SysCapture)


def test_warnings_recorder_is_a_catch_warnings_block_with_these_attributes(
    pytester: pytest.Pytester,
) -> None:
    # For a concurrent test, the runner replaces WarningsRecorder's
    # __enter__ and __exit__, setting _entered and _list as pytest's do; the
    # recwarn fixture adds the "default" filter inside its block.
    from _pytest.config import parse_warning_filter
    from _pytest.recwarn import WarningsRecorder

    assert issubclass(WarningsRecorder, warnings.catch_warnings)
    assert {"__enter__", "__exit__"} <= set(vars(WarningsRecorder))
    recorder = WarningsRecorder(_ispytest=True)
    with recorder:
        assert recorder._entered
        assert recorder._list is recorder.list
        warnings.warn("x", UserWarning, stacklevel=1)
    assert [str(w.message) for w in recorder._list] == ["x"]
    assert parse_warning_filter("error::UserWarning", escape=False) == (
        "error",
        "",
        UserWarning,
        "",
        0,
    )
    pytester.makepyfile(
        """
        import warnings

        def test_recwarn_shows_once_per_place(recwarn):
            for _ in range(2):
                warnings.warn("once", UserWarning)
            assert len(recwarn) == 1
        """
    )
    pytester.runpytest("-p", "no:concurrently").assert_outcomes(passed=1)


def test_caplog_fixture_keeps_its_levels_in_these_attributes(pytester: pytest.Pytester) -> None:
    # The runner replaces LogCaptureFixture.set_level, at_level and _finalize
    # while tests run concurrently, reading and writing these attributes.
    from _pytest.logging import LogCaptureFixture

    for name in ("set_level", "at_level", "_finalize", "_force_enable_logging"):
        assert name in LogCaptureFixture.__dict__, name
    pytester.makepyfile(
        """
        import logging

        def test_attributes(caplog):
            assert caplog._initial_handler_level is None
            assert caplog._initial_disabled_logging_level is None
            caplog.set_level(logging.INFO, logger="canary")
            assert caplog._initial_logger_levels == {"canary": logging.NOTSET}
            assert caplog._initial_handler_level is not None
            disabled = caplog._force_enable_logging(logging.INFO, logging.getLogger("canary"))
            assert isinstance(disabled, int)
        """
    )
    pytester.runpytest("-p", "no:concurrently").assert_outcomes(passed=1)


def test_rewriting_hook_keeps_marked_names_in_a_set_with_a_cache(
    pytester: pytest.Pytester,
) -> None:
    # ``_pytest_adapter.unrewritten`` takes the plugin off ``_must_rewrite``
    # and out of ``_marked_for_rewrite_cache``.
    pytester.makepyfile(
        """
        import importlib.util
        import sys
        from _pytest.assertion.rewrite import AssertionRewritingHook

        def test_hook():
            # Where the package's modules are, without importing it.
            package = importlib.util.find_spec("pytest_concurrently")
            path = package.submodule_search_locations
            hooks = [f for f in sys.meta_path if isinstance(f, AssertionRewritingHook)]
            assert hooks
            hook = hooks[0]
            assert isinstance(hook._must_rewrite, set)
            assert isinstance(hook._marked_for_rewrite_cache, dict)
            # Plugins' distributions are marked by their top-level names.
            assert "pytest_concurrently" in hook._must_rewrite
            assert hook.find_spec("pytest_concurrently.stats", path) is not None
            hook._must_rewrite.discard("pytest_concurrently")
            del hook._marked_for_rewrite_cache["pytest_concurrently.stats"]
            assert hook.find_spec("pytest_concurrently.stats", path) is None
        """
    )
    pytester.runpytest_subprocess(*WITHOUT_PLUGIN).assert_outcomes(passed=1)
