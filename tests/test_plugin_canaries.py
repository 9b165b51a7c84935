"""Canaries for what ``pytest_concurrently._plugin_adapters`` relies on in
pytest-asyncio, anyio's pytest plugin and hypothesis.

Each test checks one behaviour of the other plugin alone (inner sessions run
with ``-p no:concurrently``), so that after an upgrade of that plugin the
first failure names what moved.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import installed_version

ASYNCIO_AUTO_INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


pytest_asyncio_1_1 = pytest.mark.skipif(
    installed_version("pytest-asyncio") < (1, 1), reason="pytest-asyncio before 1.1 keeps its tests"
)


@pytest_asyncio_1_1
def test_pytest_asyncio_items_subclass_function_with_an_async_generator_kind() -> None:
    from pytest_asyncio import plugin

    assert issubclass(plugin.PytestAsyncioFunction, pytest.Function)
    assert issubclass(plugin.AsyncGenerator, plugin.PytestAsyncioFunction)
    # A claimed item gets pytest's own setup and runtest back.
    assert plugin.PytestAsyncioFunction.setup is not pytest.Function.setup
    assert plugin.PytestAsyncioFunction.runtest is not pytest.Function.runtest


@pytest_asyncio_1_1
def test_pytest_asyncio_event_loop_policy_fixture_lives_in_its_plugin_module(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(ASYNCIO_AUTO_INI)
    pytester.makepyfile(
        """
        def test_home(request):
            definition = request._fixturemanager.getfixturedefs("event_loop_policy", request.node)
            assert definition[-1].func.__module__ == "pytest_asyncio.plugin"
        """
    )
    pytester.runpytest("-p", "asyncio", "-p", "no:concurrently").assert_outcomes(passed=1)


@pytest_asyncio_1_1
@pytest.mark.parametrize("plugin", ["asyncio", "anyio"])
def test_fixture_wrappers_leave_plain_callables_alone(
    pytester: pytest.Pytester, plugin: str
) -> None:
    # The runner hides an async fixture function behind a plain callable
    # while the plugins' pytest_fixture_setup wrappers look at it.
    pytester.makeini(ASYNCIO_AUTO_INI)
    pytester.makeconftest(
        """
        import pytest

        class Plain:
            def __call__(self):
                return "plain"

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.fixture
        async def value():
            return "async"

        @pytest.hookimpl(wrapper=True, tryfirst=True)
        def pytest_fixture_setup(fixturedef, request):
            if fixturedef.argname == "value":
                fixturedef.func = Plain()
            return (yield)
        """
    )
    mark = "@pytest.mark.anyio" if plugin == "anyio" else ""
    pytester.makepyfile(
        f"""
        import pytest

        {mark}
        async def test_value(value):
            assert value == "plain"
        """
    )
    pytester.runpytest("-p", plugin, "-p", "no:concurrently").assert_outcomes(passed=1)


def test_anyio_default_backend_fixture_lives_in_its_plugin_module(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.anyio
        async def test_home(request, anyio_backend):
            definition = request._fixturemanager.getfixturedefs("anyio_backend", request.node)
            assert definition[-1].func.__module__ == "anyio.pytest_plugin"
            # Unparametrized, the default is asyncio (anyio 4.0 to 4.11); from
            # 4.12 it is parametrized over the backends that can be imported.
            assert anyio_backend in ("asyncio", "trio")
        """
    )
    result = pytester.runpytest("-p", "anyio", "-p", "no:concurrently")
    assert result.parseoutcomes()["passed"] >= 1
    result.assert_outcomes(passed=result.parseoutcomes()["passed"])


def test_hypothesis_inner_test_is_replaceable() -> None:
    hypothesis: Any = pytest.importorskip("hypothesis")
    strategies: Any = pytest.importorskip("hypothesis.strategies")
    seen = []

    def numbers(number: int) -> None:
        raise AssertionError("the original inner test ran")

    given = hypothesis.given(strategies.integers())
    test_numbers: Any = hypothesis.settings(max_examples=3, database=None)(given(numbers))

    def replacement(number: int) -> None:
        seen.append(number)

    test_numbers.hypothesis.inner_test = replacement
    test_numbers()
    assert seen


def test_pytest_timeout_settings_and_timer_hooks(pytester: pytest.Pytester) -> None:
    # The runner reads an item's settings with _get_item_settings and answers
    # pytest-timeout's timer hooks for concurrent tests.
    pytest_timeout: Any = pytest.importorskip("pytest_timeout")
    assert hasattr(pytest_timeout.TimeoutHooks, "pytest_timeout_set_timer")
    assert hasattr(pytest_timeout.TimeoutHooks, "pytest_timeout_cancel_timer")
    pytester.makepyfile(
        """
        import pytest
        import pytest_timeout

        @pytest.mark.timeout(2.5, func_only=True)
        def test_settings(request):
            settings = pytest_timeout._get_item_settings(request.node)
            assert settings.timeout == 2.5
            assert settings.func_only is True
        """
    )
    pytester.runpytest("-p", "timeout", "-p", "no:concurrently").assert_outcomes(passed=1)


def test_xdist_worker_controller_hands_its_callback_to_the_channel_after_configure_node() -> None:
    """``listen_to_worker`` replaces a node's ``process_from_remote`` in
    ``pytest_configure_node``; the node must read the attribute after that
    hook, when it sets its channel's callback."""
    pytest.importorskip("xdist")
    import inspect

    from xdist.workermanage import WorkerController

    source = inspect.getsource(WorkerController.setup)
    configure = source.index("pytest_configure_node")
    callback = source.index("setcallback(self.process_from_remote")
    assert configure < callback
    for name in ("send_runtest_some", "shutting_down", "process_from_remote", "workerinput"):
        assert name in inspect.getsource(WorkerController), name


def test_xdist_worker_interactor_has_what_the_worker_link_uses() -> None:
    """The worker's plugin: its queue, its channel, the report index it tags
    reports with, and the commands its controller sends."""
    pytest.importorskip("xdist")
    import inspect

    from xdist import remote

    source = inspect.getsource(remote.WorkerInteractor)
    for name in ("self.torun", "self.channel", "self.item_index", "self.workerid", "def sendevent"):
        assert name in source, name
    for command in ('"runtests"', '"runtests_all"', '"shutdown"', '"steal"'):
        assert command in source, command
    assert '"runtest_protocol_complete"' in source
    assert 'data["item_index"] = self.item_index' in source


def test_xdist_scheduler_protocol_is_what_share_scheduling_implements() -> None:
    pytest.importorskip("xdist")
    from xdist.scheduler.protocol import Scheduling

    from pytest_concurrently._plugin_adapters.xdist_controller import ShareScheduling

    wanted = {name for name in vars(Scheduling) if not name.startswith("_")}
    assert wanted <= set(vars(ShareScheduling)), wanted - set(vars(ShareScheduling))
