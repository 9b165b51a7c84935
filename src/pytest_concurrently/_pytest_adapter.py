"""Every use of pytest's private internals, and nothing else.

pytest keeps per-test state in objects that exist once per session: a
``FixtureDef`` holds one cached value and one finalizer list, ``SetupState`` is
one stack of nodes, the capture manager and the logging plugin each hold one
set of per-phase handlers. This module bends each of them just enough for
several tests to be in flight at once, so that a pytest upgrade that moves
these internals touches this file alone:

* :class:`FixtureInstances` gives every test its own copies of the
  function-scoped ``FixtureDef`` objects it uses, and every scope node (module,
  class, package, session) its own copy of each wider-scoped one, so each copy
  caches exactly one instance. Copies of wider-scoped fixtures are executed by
  one test at a time: the second test to ask waits for the first to finish the
  setup, then gets the cached value.
* :class:`ConcurrentSetupState` replaces the ``SetupState`` stack with a
  forest: several items may be set up at once, collectors are set up by the
  first item that needs them and torn down when their last item finishes.
* :func:`setup_async_fixture` runs ``async def`` fixtures through pytest's own
  fixture call path.
* :func:`route_phase_capture` makes the capture manager, the logging plugin,
  the warnings capture and the assertion rewriter's hooks serve concurrent
  tests by context (see :mod:`.routing`).
* :func:`run_protocol` is pytest's ``runtestprotocol`` for a concurrent
  item.

Sections follow that order; comments name the pytest versions where the
internals differ between 8.2 and 9.x.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import io
import logging
import os
import sys
import warnings
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, cast

import pytest
from _pytest.assertion import truncate as assertion_truncate
from _pytest.assertion import util as assertion_util
from _pytest.capture import CaptureManager
from _pytest.fixtures import (
    FixtureDef,
    FuncFixtureInfo,
    SubRequest,
    call_fixture_func,
    get_scope_node,
    get_scope_package,
    resolve_fixture_function,
)
from _pytest.logging import LogCaptureHandler, LoggingPlugin, caplog_handler_key, caplog_records_key
from _pytest.nodes import Node
from _pytest.outcomes import TEST_OUTCOME
from _pytest.runner import SetupState, call_and_report, show_test_item
from _pytest.scope import Scope
from _pytest.unittest import TestCaseFunction
from _pytest.warnings import catch_warnings_for_item

from . import bridge, routing
from .current import running_test

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "ConcurrentSetupState",
    "FixtureInstances",
    "fixture_functions",
    "is_async_fixture",
    "is_plain_test_function",
    "route_phase_capture",
    "run_protocol",
    "setup_async_fixture",
]

AnyFixtureDef = FixtureDef[Any]


# ---------------------------------------------------------------------------
# Fixture instances


class FixtureInstances:
    """Which ``FixtureDef`` copy serves which test.

    A ``FixtureDef`` caches one value; pytest gets away with that because one
    test runs at a time and wider-scoped values are torn down when the next
    test leaves their scope. Here each item gets fresh copies of the
    definitions it uses at function scope, and each (definition, scope node)
    pair one shared copy, so a module-scoped fixture from a conftest has one
    instance per module even when tests of two modules overlap.
    """

    def __init__(self) -> None:
        self._shared: dict[tuple[AnyFixtureDef, Node], AnyFixtureDef] = {}
        self._executing: dict[AnyFixtureDef, asyncio.Event] = {}

    def isolate(self, item: pytest.Item) -> None:
        """Point ``item`` at its own fixture definitions. Call once, before the
        item is set up. Test functions and doctests have pytest fixtures; other
        items are left alone."""
        info: FuncFixtureInfo | None = getattr(item, "_fixtureinfo", None)
        if info is None or not hasattr(item, "_initrequest"):
            return
        per_item = _ItemFixtureDefs(self, item)
        for name, definitions in info.name2fixturedefs.items():
            per_item[name] = per_item.copies_for(name, definitions)
        with_fixtures = cast(Any, item)
        with_fixtures._fixtureinfo = FuncFixtureInfo(
            argnames=info.argnames,
            initialnames=info.initialnames,
            names_closure=info.names_closure,
            name2fixturedefs=per_item,
        )
        with_fixtures._initrequest()

    def slots(self, item: pytest.Item) -> dict[object, object]:
        """The shared fixture instances ``item`` needs a particular value of.

        A wider-scoped fixture parametrized over several values holds one of
        them at a time (pytest orders tests so that it changes rarely); the
        scheduler must not let users of two values overlap.
        """
        callspec = getattr(item, "callspec", None)
        if callspec is None or not isinstance(item, pytest.Function):
            return {}
        definitions = item._fixtureinfo.name2fixturedefs
        slots: dict[object, object] = {}
        for name, scope in callspec._arg2scope.items():
            if scope is Scope.Function or name not in callspec.params:
                continue
            # The slot is the shared copy the value lives in: the closest
            # definition of the name on the node its scope caches it on.
            closest = definitions[name][-1] if definitions.get(name) else None
            node = _scope_node(item, scope, closest)
            # The value, not its index: indexes count positions in one
            # parametrize list, and two modules may list the values in
            # different orders.
            slots[(name, node.nodeid)] = _ParamValue(callspec.params[name])
        return slots

    def _copy(self, item: pytest.Item, name: str, definition: AnyFixtureDef) -> AnyFixtureDef:
        scope = _effective_scope(item, name, definition)
        if scope is Scope.Function:
            return _fresh_copy(definition)
        node = _scope_node(item, scope, definition)
        if node is item:
            # A class-scoped fixture used outside a class lives as long as the item.
            return _fresh_copy(definition)
        key = (definition, node)
        shared = self._shared.get(key)
        if shared is None:
            shared = _fresh_copy(definition)
            shared.__dict__["execute"] = self._one_at_a_time(shared)
            self._shared[key] = shared
        return shared

    def _one_at_a_time(self, definition: AnyFixtureDef) -> Callable[..., Any]:
        execute = FixtureDef.execute.__get__(definition)

        def execute_one_at_a_time(request: SubRequest) -> Any:
            if not bridge.in_bridged_code():
                return execute(request)
            while (busy := self._executing.get(definition)) is not None:
                bridge.wait_for(busy.wait())
            done = asyncio.Event()
            self._executing[definition] = done
            try:
                return execute(request)
            finally:
                del self._executing[definition]
                done.set()

        return execute_one_at_a_time


class _ParamValue:
    """A parameter value that compares by identity, then by ``==``; values
    whose ``==`` raises (numpy arrays, say) are different unless identical."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _ParamValue):
            return NotImplemented
        if self.value is other.value:
            return True
        try:
            return bool(self.value == other.value)
        except Exception:
            # Values that cannot be compared are different values.
            return False

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"_ParamValue({self.value!r})"


class _ItemFixtureDefs(dict[str, Sequence[AnyFixtureDef]]):
    """An item's name -> definitions map, which also copies the definitions
    of fixtures the item requests dynamically (``request.getfixturevalue``)."""

    def __init__(self, instances: FixtureInstances, item: pytest.Item) -> None:
        super().__init__()
        self._instances = instances
        self._item = item

    def copies_for(
        self, name: str, definitions: Sequence[AnyFixtureDef]
    ) -> tuple[AnyFixtureDef, ...]:
        return tuple(self._instances._copy(self._item, name, d) for d in definitions)

    def copy(self) -> _ItemFixtureDefs:
        # pytest 8's TopRequest copies the map it is given; the copy must
        # keep copying dynamically requested definitions.
        duplicate = _ItemFixtureDefs(self._instances, self._item)
        duplicate.update(self)
        return duplicate

    def get(self, name: str, default: Any = None) -> Any:
        found = super().get(name)
        if found is not None:
            return found
        definitions = self._item.session._fixturemanager.getfixturedefs(name, self._item)
        if definitions is None:
            return default
        copies = self.copies_for(name, definitions)
        self[name] = copies
        return copies


def _fresh_copy(definition: AnyFixtureDef) -> AnyFixtureDef:
    clone = object.__new__(type(definition))
    clone.__dict__.update(definition.__dict__)
    clone.__dict__.pop("execute", None)
    clone.cached_result = None
    clone.__dict__["_finalizers"] = []
    return clone


def _effective_scope(item: pytest.Item, name: str, definition: AnyFixtureDef) -> Scope:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and name in callspec.params:
        return callspec._arg2scope[name]  # type: ignore[no-any-return]
    return definition._scope


def _scope_node(item: pytest.Item, scope: Scope, definition: AnyFixtureDef | None) -> Node:
    """The node a value of ``scope`` is cached on, as ``SubRequest.node``
    computes it."""
    node: Node | None
    if scope is Scope.Package and definition is not None:
        node = get_scope_package(item, definition)
    else:
        node = get_scope_node(item, scope)
    return node if node is not None else item


# ---------------------------------------------------------------------------
# Setup and teardown of nodes


class ConcurrentSetupState(SetupState):
    """A ``SetupState`` that holds several items at once.

    ``stack`` keeps pytest's shape (node -> finalizers, setup error) but may
    hold several branches of the collection tree. A collector is set up by
    the first item that needs it and torn down, as part of the teardown of
    the item that finishes last among those that need it, so its fixtures
    outlive every test that uses them. Whatever is still set up when the
    session ends (after ``-x``, say) is torn down by ``teardown_exact(None)``
    outside any test.
    """

    def __init__(self, items: Sequence[pytest.Item]) -> None:
        super().__init__()
        self._items_left: Counter[Node] = Counter(
            node for item in items for node in item.listchain()[:-1]
        )
        self._released: set[pytest.Item] = set()

    def setup(self, item: pytest.Item) -> None:
        """Set up the collectors ``item`` needs that are not set up yet, then
        the item itself."""
        for node in item.listchain():
            entry = self.stack.get(node)
            if entry is not None:
                if entry[1] is not None:
                    raise entry[1][0].with_traceback(entry[1][1])
                continue
            self.stack[node] = ([node.teardown], None)
            try:
                node.setup()
            except TEST_OUTCOME as exc:
                self.stack[node] = (self.stack[node][0], (exc, exc.__traceback__))
                raise

    def teardown_exact(self, nextitem: pytest.Item | None) -> None:
        """Tear down the running item, and the collectors it was the last
        user of; outside any item, tear down everything still set up."""
        del nextitem  # the order of later items does not decide teardown here
        current = running_test.get()
        if current is None:
            nodes = list(reversed(self.stack))
        else:
            nodes = [current.item, *self._release(current.item)]
        exceptions: list[BaseException] = []
        try:
            for node in nodes:
                exceptions.extend(self._finalize(node))
        finally:
            if current is not None:
                # pytest sets PYTEST_CURRENT_TEST before this call and deletes it
                # after; a test that finished meanwhile has deleted it already.
                os.environ.setdefault("PYTEST_CURRENT_TEST", f"{current.item.nodeid} (teardown)")
        if len(exceptions) == 1:
            raise exceptions[0]
        if exceptions:
            raise BaseExceptionGroup("errors during test teardown", exceptions[::-1])

    def _release(self, item: pytest.Item) -> list[Node]:
        # An item torn down twice (a plugin that reruns the protocol does
        # that) still counts once.
        if item in self._released:
            return [node for node in reversed(item.listchain()[:-1]) if self._is_unused(node)]
        self._released.add(item)
        released = []
        for node in reversed(item.listchain()[:-1]):
            self._items_left[node] -= 1
            if self._is_unused(node):
                released.append(node)
        return released

    def _is_unused(self, node: Node) -> bool:
        return self._items_left[node] <= 0 and node in self.stack

    def _finalize(self, node: Node) -> list[BaseException]:
        entry = self.stack.pop(node, None)
        if entry is None:
            return []
        finalizers = entry[0]
        exceptions: list[BaseException] = []
        while finalizers:
            finalizer = finalizers.pop()
            try:
                finalizer()
            except TEST_OUTCOME as exc:
                exceptions.append(exc)
        if len(exceptions) > 1:
            return [BaseExceptionGroup(f"errors while tearing down {node!r}", exceptions[::-1])]
        return exceptions


def install_setup_state(session: pytest.Session, items: Sequence[pytest.Item]) -> None:
    """Replace the session's ``SetupState`` with a :class:`ConcurrentSetupState`."""
    session._setupstate = ConcurrentSetupState(items)


# ---------------------------------------------------------------------------
# Async fixtures


def is_async_fixture(definition: AnyFixtureDef) -> bool:
    """Whether the fixture function is ``async def`` (coroutine or generator)."""
    func = definition.func
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


#: Returned by :func:`setup_async_fixture` for a fixture whose value is None,
#: because ``pytest_fixture_setup`` is a first-result hook and None would mean
#: "not handled". pytest reads the value from ``cached_result``, not from the
#: hook's return value.
HANDLED = object()


def setup_async_fixture(definition: AnyFixtureDef, request: SubRequest) -> object:
    """Set up an ``async def`` fixture the way pytest sets up a plain one.

    The coroutine (or async generator) runs through :func:`bridge.wait_for`:
    in the test's own task when the test is concurrent, on the idle loop
    otherwise.
    """
    kwargs = {name: request.getfixturevalue(name) for name in definition.argnames}
    func = resolve_fixture_function(definition, request)
    cache_key = definition.cache_key(request)
    try:
        result = call_fixture_func(_synchronous(func), request, kwargs)
    except TEST_OUTCOME as exc:
        if isinstance(exc, pytest.skip.Exception):
            # Report the skip at the test, not inside the fixture.
            exc._use_item_location = True
        definition.cached_result = (None, cache_key, (exc, exc.__traceback__))
        raise
    definition.cached_result = (result, cache_key, None)
    return HANDLED if result is None else result


def _synchronous(func: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function (or generator function, for an async generator) that
    drives ``func`` through the bridge, so pytest can call it like a sync
    fixture: values, ``yield`` teardown and errors behave the same."""
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        def drive_generator(**kwargs: Any) -> Generator[Any, None, None]:
            agen: AsyncGenerator[Any, None] = func(**kwargs)
            try:
                value = bridge.wait_for(agen.__anext__())
            except StopAsyncIteration:
                raise ValueError(f"{func.__name__} did not yield a value") from None
            yield value
            try:
                bridge.wait_for(agen.__anext__())
            except StopAsyncIteration:
                return
            # pytest's own teardown reports a generator that goes on.
            yield None

        return drive_generator

    @functools.wraps(func)
    def drive_coroutine(**kwargs: Any) -> Any:
        coroutine: Coroutine[Any, Any, Any] = func(**kwargs)
        return bridge.wait_for(coroutine)

    return drive_coroutine


def fixture_functions(item: pytest.Item) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The names and functions of the fixtures ``item`` requests statically."""
    info: FuncFixtureInfo | None = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    for name, definitions in info.name2fixturedefs.items():
        for definition in definitions:
            yield name, definition.func


def is_plain_test_function(item: pytest.Item) -> bool:
    """Whether ``item`` is a test function whose body pytest calls through
    ``pytest_pyfunc_call`` (not a ``unittest`` test case)."""
    return isinstance(item, pytest.Function) and not isinstance(item, TestCaseFunction)


def requesting_item(request: pytest.FixtureRequest) -> pytest.Item:
    """The test a fixture request was made for."""
    return request._pyfuncitem


def call_async_test(item: pytest.Function) -> None:
    """Run an ``async def`` test function's body through the bridge."""
    __tracebackhide__ = True
    funcargs = item.funcargs
    arguments = {name: funcargs[name] for name in item._fixtureinfo.argnames}
    result = item.obj(**arguments)
    if inspect.isawaitable(result):
        bridge.wait_for(result)


# ---------------------------------------------------------------------------
# Capture, logging, warnings and assertion explanations


@contextmanager
def route_phase_capture(config: pytest.Config) -> Iterator[None]:
    """While the block runs, tests marked as concurrent in ``running_test``
    get their output, log records, warnings and assertion explanations
    routed to them by context instead of through pytest's process-wide
    capture, handlers and hooks."""
    with ExitStack() as stack:
        capman = config.pluginmanager.get_plugin("capturemanager")
        if isinstance(capman, CaptureManager):
            # pytest suspends and resumes the global capture around terminal
            # output (--setup-show, live logs); resuming it would replace the
            # routed streams. Terminal output goes to the terminal directly.
            stack.enter_context(_patched(capman, "suspend_global_capture", _ignore))
            stack.enter_context(_patched(capman, "resume_global_capture", _ignore))
            if capman._method != "no":
                stack.enter_context(routing.routed_process_streams(tee=capman._method == "tee-sys"))
                stack.enter_context(_patched(capman, "item_capture", _routed_item_capture(capman)))
        logging_plugin = config.pluginmanager.get_plugin("logging-plugin")
        if isinstance(logging_plugin, LoggingPlugin):
            stack.enter_context(routing.routed_root_logger(logging_plugin.log_level))
            stack.enter_context(
                _patched(logging_plugin, "_runtest_for", _routed_runtest_for(logging_plugin))
            )
        if config.pluginmanager.has_plugin("warnings"):
            stack.enter_context(_routed_warnings(config))
        stack.enter_context(_routed_assertion_hooks(config))
        yield


def _ignore(*args: object, **kwargs: object) -> None:
    pass


@contextmanager
def _routed_warnings(config: pytest.Config) -> Iterator[None]:
    # pytest wraps each test's protocol in a catch_warnings block of its own;
    # overlapping blocks would restore each other's state. One block with the
    # configured filters spans the phase, and each warning is recorded for
    # the test that issued it (see report_warnings).
    router = routing.WarningRouter()
    with (
        catch_warnings_for_item(config, config.hook, "runtest", None),
        routing.routed_warnings(router),
    ):
        yield
    for message in router.unattributed:
        config.hook.pytest_warning_recorded.call_historic(
            kwargs={"warning_message": message, "nodeid": "", "when": "runtest", "location": None}
        )


def report_warnings(item: pytest.Item, sink: routing.WarningSink) -> None:
    """Hand the warnings a concurrent test issued to pytest's warning hook,
    as pytest's own per-test warnings capture does."""
    for message in sink.records:
        item.ihook.pytest_warning_recorded.call_historic(
            kwargs={
                "warning_message": message,
                "nodeid": item.nodeid,
                "when": "runtest",
                "location": None,
            }
        )


@contextmanager
def _routed_assertion_hooks(config: pytest.Config) -> Iterator[None]:
    # Rewritten asserts call module-level hooks that pytest points at the
    # running test for the length of its protocol. One dispatcher for the
    # phase asks the hooks of whichever test is running.
    saved = assertion_util._reprcompare, assertion_util._assertion_pass, assertion_util._config

    def current_item() -> pytest.Item | None:
        current = running_test.get()
        return None if current is None else current.item

    def explain_comparison(op: str, left: object, right: object) -> str | None:
        item = current_item()
        ihook = config.hook if item is None else item.ihook
        for explanation in ihook.pytest_assertrepr_compare(
            config=config, op=op, left=left, right=right
        ):
            if explanation:
                lines = _truncated(explanation, item, config)
                if lines:
                    text = "\n~".join(line.replace("\n", "\\n") for line in lines)
                    if config.getvalue("assertmode") == "rewrite":
                        text = text.replace("%", "%%")
                    return text
        return None

    def report_passed_assertion(lineno: int, orig: str, expl: str) -> None:
        item = current_item()
        if item is not None:
            item.ihook.pytest_assertion_pass(item=item, lineno=lineno, orig=orig, expl=expl)

    assertion_util._reprcompare = explain_comparison
    assertion_util._config = config
    if config.hook.pytest_assertion_pass.get_hookimpls():
        assertion_util._assertion_pass = report_passed_assertion
    try:
        yield
    finally:
        (
            assertion_util._reprcompare,
            assertion_util._assertion_pass,
            assertion_util._config,
        ) = saved


def _truncated(lines: list[str], item: pytest.Item | None, config: pytest.Config) -> list[str]:
    # pytest 9 truncates by the config; pytest 8 by the item.
    materialize = getattr(assertion_truncate, "materialize_with_truncation", None)
    if materialize is not None:
        return list(materialize(lines, config))
    truncate_for_item = getattr(assertion_truncate, "truncate_if_required", None)
    if item is None or truncate_for_item is None:
        return lines
    return list(truncate_for_item(lines, item))


@contextmanager
def _patched(target: object, name: str, replacement: object) -> Iterator[None]:
    target.__dict__[name] = replacement
    try:
        yield
    finally:
        del target.__dict__[name]


def _routed_item_capture(
    capman: CaptureManager,
) -> Callable[[str, pytest.Item], AbstractContextManager[None]]:
    original = type(capman).item_capture.__get__(capman)

    @contextmanager
    def item_capture(when: str, item: pytest.Item) -> Iterator[None]:
        current = running_test.get()
        if current is None or not current.concurrent:
            with original(when, item):
                yield
            return
        with routing.capturing_output() as output:
            try:
                yield
            finally:
                item.add_report_section(when, "stdout", output.stdout.getvalue())
                item.add_report_section(when, "stderr", output.stderr.getvalue())

    return item_capture


def _routed_runtest_for(plugin: LoggingPlugin) -> Callable[[pytest.Item, str], Any]:
    original_function = type(plugin)._runtest_for
    original = original_function.__get__(plugin)
    handlers = _LogHandlerPool(plugin)

    def runtest_for(item: pytest.Item, when: str) -> Generator[None, None, None]:
        current = running_test.get()
        if current is None or not current.concurrent:
            if _is_context_manager_function(original_function):
                with original(item, when):
                    yield
            else:
                yield from original(item, when)
            return
        caplog_handler, report_handler = handlers.for_phase(item)
        item.stash[caplog_records_key][when] = caplog_handler.records
        item.stash[caplog_handler_key] = caplog_handler
        with routing.capturing_logs(caplog_handler, report_handler):
            try:
                yield
            finally:
                log = report_handler.stream.getvalue().strip()
                item.add_report_section(when, "log", log)
                if when == "teardown":
                    handlers.release(item)

    # pytest 9 made _runtest_for a context manager; pytest 8 calls it with
    # ``yield from``. Offer the replacement in the same form.
    if _is_context_manager_function(original_function):
        return contextmanager(runtest_for)
    return runtest_for


_HandlerPair = tuple[LogCaptureHandler, LogCaptureHandler]
_log_handlers_key = pytest.StashKey[_HandlerPair]()


class _LogHandlerPool:
    """Per-test ``caplog`` and report handlers, reused phase after phase and
    then by later tests, as pytest reuses its one pair.

    Creating a ``logging.Handler`` registers it module-wide and creates a
    lock, which costs more than the rest of a trivial test's log routing.
    """

    def __init__(self, plugin: LoggingPlugin) -> None:
        self._plugin = plugin
        self._idle: list[_HandlerPair] = []

    def for_phase(self, item: pytest.Item) -> _HandlerPair:
        """The item's handler pair, emptied for a new phase."""
        pair = item.stash.get(_log_handlers_key, None)
        if pair is None:
            pair = self._idle.pop() if self._idle else self._new_pair()
            item.stash[_log_handlers_key] = pair
            # As pytest's own handlers: the configured level, or whatever a
            # test sets with caplog.set_level, which lasts across its phases.
            level = self._plugin.log_level
            for handler in pair:
                handler.setLevel(level if level is not None else logging.NOTSET)
        for handler in pair:
            handler.reset()
        return pair

    def release(self, item: pytest.Item) -> None:
        """Take the item's pair back for later tests."""
        pair = item.stash.get(_log_handlers_key, None)
        if pair is not None:
            del item.stash[_log_handlers_key]
            self._idle.append(pair)

    def _new_pair(self) -> _HandlerPair:
        caplog_handler = _UnlistedLogCaptureHandler()
        caplog_handler.setFormatter(self._plugin.formatter)
        report_handler = _UnlistedLogCaptureHandler()
        report_handler.setFormatter(self._plugin.formatter)
        return caplog_handler, report_handler


class _UnlistedLogCaptureHandler(LogCaptureHandler):
    """pytest's ``LogCaptureHandler``, left out of ``logging``'s module-wide
    list of handlers to flush at exit.

    With thousands of tests in flight there are thousands of these; when they
    are garbage-collected, each is removed from that list by a linear search,
    which adds up to quadratic time. They write to memory and need no
    flushing at exit.
    """

    def __init__(self) -> None:
        # What logging.Handler.__init__ and StreamHandler.__init__ set, minus
        # the registration (stable from Python 3.10 to 3.13).
        logging.Filterer.__init__(self)
        self._name = None
        self.level = logging.NOTSET
        self.formatter = None
        self._closed = False
        self.createLock()
        self.stream = io.StringIO()
        self.records = []


def _is_context_manager_function(function: Callable[..., Any]) -> bool:
    # contextlib.contextmanager keeps the generator function as __wrapped__.
    return inspect.isgeneratorfunction(getattr(function, "__wrapped__", None))


# ---------------------------------------------------------------------------
# The per-test protocol


def _show_test_item(item: pytest.Item, *, setup_only: bool) -> None:
    # pytest 8.4 added the add_space argument.
    show: Callable[..., None] = show_test_item
    if "add_space" in inspect.signature(show).parameters:
        show(item, add_space=not setup_only)
    else:
        show(item)


def run_protocol(item: pytest.Item, entering_teardown: Callable[[], object]) -> None:
    """pytest's ``runtestprotocol`` for one concurrent item, with its
    ``pytest_runtest_logstart`` and ``pytest_runtest_logfinish``.

    :param entering_teardown: called between the call and the teardown phase;
        the runner stops counting the test as cancellable there, so an
        interrupted session still tears every fixture down.
    """
    ihook = item.ihook
    # pytest opens a catch_warnings block per test, which forgets which
    # locations already warned ("default" shows a warning once per location);
    # one block spans the concurrent phase here, so forget them per test.
    warnings._filters_mutated()  # type: ignore[attr-defined]
    with routing.capturing_warnings() as warnings_issued:
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        try:
            _setup_and_call(item)
        finally:
            entering_teardown()
            try:
                call_and_report(item, "teardown", log=True, nextitem=None)
            finally:
                # As runtestprotocol: let the fixture values go.
                if hasattr(item, "_request"):
                    with_request = cast(Any, item)
                    with_request._request = False
                    with_request.funcargs = None
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    report_warnings(item, warnings_issued)


def _setup_and_call(item: pytest.Item) -> None:
    if hasattr(item, "_request") and not item._request:
        # Only when an item runs twice (pytest-rerunfailures does that).
        cast(Any, item)._initrequest()
    report = call_and_report(item, "setup", log=True)
    if not report.passed:
        return
    setup_only = item.config.getoption("setuponly", False)
    if item.config.getoption("setupshow", False):
        _show_test_item(item, setup_only=setup_only)
    if not setup_only:
        call_and_report(item, "call", log=True)
