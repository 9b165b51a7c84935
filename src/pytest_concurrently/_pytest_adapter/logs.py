"""Log capture for concurrent tests.

pytest's logging plugin (``logging-plugin``, a ``LoggingPlugin``) wraps each
phase of a test in its ``_runtest_for(item, when)``, which points one pair of
``LogCaptureHandler`` objects (the ``caplog`` handler and the report handler)
at the running test and publishes them to ``caplog`` through the item's stash
(``caplog_handler_key``, ``caplog_records_key``). :func:`routed_logging`
shadows ``_runtest_for`` so each concurrent test gets a pair of its own,
with the plugin's ``log_level`` and ``formatter``, and records reach it by
context (see :mod:`..routing`).

``caplog.set_level`` and ``caplog.at_level`` set a logger's level, which is
process-wide, and restore the level they found when the test (or the block)
ends. With tests in flight, the first to end would put back a level that
hides the records of the others, and the last to end might put back another
test's level. While concurrent tests run, :class:`LayeredLoggerLevels`
keeps the levels tests set as layers per logger: the level in effect is the
latest layer still present, and when the last layer goes, the level from
before the first comes back. It replaces ``LogCaptureFixture.set_level``,
``at_level`` and ``_finalize`` (which read ``_initial_handler_level``,
``_initial_disabled_logging_level`` and call ``_force_enable_logging``).

With ``--log-cli-level`` (live logs), the plugin's ``log_cli_handler``, a
``_LiveLoggingStreamHandler`` on the root logger for the whole test loop,
writes each record to the terminal under a section header (``live log
call``) for the phase its ``set_when`` was last given, which with tests in
flight is whichever test last moved on. While concurrent tests run, its
``emit`` is shadowed: a record emitted by a concurrent test is formatted by
the handler's formatter and written without a header, each of its lines
tagged with the test's id as ``-s`` output is (see :mod:`..live_output` and
:mod:`.terminal`); other records are written as pytest writes them.

pytest versions: pytest 9 made ``_runtest_for`` a context manager; 8.x
calls it with ``yield from``. The replacement takes the same form as the
method it replaces. ``LogCaptureFixture``, ``log_cli_handler`` and
``_LiveLoggingStreamHandler`` (a ``logging.StreamHandler`` whose stream is
the terminal reporter) are the same from 8.2 to 9.x.
"""

from __future__ import annotations

import inspect
import io
import logging
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, TextIO, cast

import pytest
from _pytest.logging import (
    LogCaptureFixture,
    LogCaptureHandler,
    LoggingPlugin,
    _LiveLoggingStreamHandler,
    caplog_handler_key,
    caplog_records_key,
)

from .. import routing
from ..current import running_test
from ..live_output import tagged
from .patching import patched
from .terminal import TerminalLines, terminal_lines

__all__ = ["routed_logging"]


@contextmanager
def routed_logging(config: pytest.Config) -> Iterator[None]:
    """While the block runs, a concurrent test's log records go to its own
    ``caplog`` and report handlers instead of the plugin's shared pair."""
    with ExitStack() as stack:
        logging_plugin = config.pluginmanager.get_plugin("logging-plugin")
        if isinstance(logging_plugin, LoggingPlugin):
            stack.enter_context(routing.routed_root_logger(logging_plugin.log_level))
            stack.enter_context(
                patched(logging_plugin, "_runtest_for", _routed_runtest_for(logging_plugin))
            )
            stack.enter_context(_layered_caplog_levels(LayeredLoggerLevels()))
            live = logging_plugin.log_cli_handler
            if isinstance(live, _LiveLoggingStreamHandler):
                emit = _tagged_live_emit(live, terminal_lines(config))
                stack.enter_context(patched(live, "emit", emit))
        yield


def _tagged_live_emit(
    handler: _LiveLoggingStreamHandler, lines: TerminalLines
) -> Callable[[logging.LogRecord], None]:
    original = type(handler).emit.__get__(handler)
    # The handler writes to the terminal reporter, which has write and flush.
    stream = cast(TextIO, handler.stream)

    def emit(record: logging.LogRecord) -> None:
        current = running_test.get()
        if current is None or not current.concurrent:
            original(record)
            return
        try:
            text = handler.format(record)
        except Exception:
            handler.handleError(record)
            return
        nodeid = current.item.nodeid
        for line in text.split("\n"):
            lines.write_line(tagged(nodeid, line), stream, is_stdout=True)

    return emit


class LayeredLoggerLevels:
    """The levels set on loggers by the tests in flight, as layers per logger."""

    def __init__(self) -> None:
        self._layers: dict[str | None, list[tuple[object, int | str]]] = {}
        self._original: dict[str | None, int] = {}

    def push(self, owner: object, name: str | None, level: int | str) -> None:
        """Set ``name``'s level to ``level`` for ``owner``, above every other
        layer (a second push by one owner replaces its first)."""
        logger = logging.getLogger(name)
        layers = self._layers.get(name)
        if layers is None:
            self._original[name] = logger.level
            layers = self._layers[name] = []
        layers[:] = [layer for layer in layers if layer[0] is not owner]
        layers.append((owner, level))
        logger.setLevel(level)

    def pop(self, owner: object, name: str | None) -> None:
        """Remove ``owner``'s layer from ``name``; the latest layer left, or
        the level from before the first, takes effect."""
        layers = self._layers.get(name)
        if layers is None:
            return
        layers[:] = [layer for layer in layers if layer[0] is not owner]
        logger = logging.getLogger(name)
        if layers:
            logger.setLevel(layers[-1][1])
        else:
            del self._layers[name]
            logger.setLevel(self._original.pop(name))


_layered_names_key = "_pytest_concurrently_layered_loggers"


@contextmanager
def _layered_caplog_levels(levels: LayeredLoggerLevels) -> Iterator[None]:
    original_finalize = LogCaptureFixture._finalize

    def set_level(self: LogCaptureFixture, level: int | str, logger: str | None = None) -> None:
        logger_obj = logging.getLogger(logger)
        levels.push(self, logger, level)
        self.__dict__.setdefault(_layered_names_key, set()).add(logger)
        if self._initial_handler_level is None:
            self._initial_handler_level = self.handler.level
        self.handler.setLevel(level)
        disabled = self._force_enable_logging(level, logger_obj)
        if self._initial_disabled_logging_level is None:
            self._initial_disabled_logging_level = disabled

    @contextmanager
    def at_level(
        self: LogCaptureFixture, level: int | str, logger: str | None = None
    ) -> Iterator[None]:
        logger_obj = logging.getLogger(logger)
        block = object()
        levels.push(block, logger, level)
        handler_level = self.handler.level
        self.handler.setLevel(level)
        disabled = self._force_enable_logging(level, logger_obj)
        try:
            yield
        finally:
            levels.pop(block, logger)
            self.handler.setLevel(handler_level)
            logging.disable(disabled)

    def finalize(self: LogCaptureFixture) -> None:
        original_finalize(self)
        for name in self.__dict__.pop(_layered_names_key, ()):
            levels.pop(self, name)

    replacements = {"set_level": set_level, "at_level": at_level, "_finalize": finalize}
    originals = {name: LogCaptureFixture.__dict__[name] for name in replacements}
    for name, replacement in replacements.items():
        setattr(LogCaptureFixture, name, replacement)
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(LogCaptureFixture, name, original)


def _routed_runtest_for(plugin: LoggingPlugin) -> Callable[[pytest.Item, str], Any]:
    original_function = type(plugin)._runtest_for
    original = original_function.__get__(plugin)
    handlers = _LogHandlerPool(plugin)

    # pytest 9 made _runtest_for a context manager; pytest 8 calls it with
    # ``yield from``. Offer the replacement in the same form.
    if _is_context_manager_function(original_function):

        def runtest_for(item: pytest.Item, when: str) -> AbstractContextManager[None]:
            current = running_test.get()
            if current is None or not current.concurrent:
                return cast(AbstractContextManager[None], original(item, when))
            return _LoggedPhase(handlers, item, when)

        return runtest_for

    def runtest_for_generator(item: pytest.Item, when: str) -> Generator[None, None, None]:
        current = running_test.get()
        if current is None or not current.concurrent:
            yield from original(item, when)
            return
        with _LoggedPhase(handlers, item, when):
            yield

    return runtest_for_generator


class _LoggedPhase:
    """One phase of a concurrent test: its log records go to its own
    ``caplog`` and report handlers, and then to the phase's report section.

    A class rather than a generator: a test in flight keeps its call
    phase's on its stack for as long as it runs.
    """

    __slots__ = ("_handlers", "_item", "_opened", "_report_handler", "_when")

    def __init__(self, handlers: _LogHandlerPool, item: pytest.Item, when: str) -> None:
        self._handlers = handlers
        self._item = item
        self._when = when
        caplog_handler, self._report_handler = handlers.for_phase(item)
        item.stash[caplog_records_key][when] = caplog_handler.records
        item.stash[caplog_handler_key] = caplog_handler
        self._opened = routing.capturing_logs(caplog_handler, self._report_handler)

    def __enter__(self) -> None:
        self._opened.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        self._opened.__exit__(None, None, None)
        log = self._report_handler.stream.getvalue().strip()
        self._item.add_report_section(self._when, "log", log)
        if self._when == "teardown":
            self._handlers.release(self._item)


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
