"""Log capture for concurrent tests.

pytest's logging plugin (``logging-plugin``, a ``LoggingPlugin``) wraps each
phase of a test in its ``_runtest_for(item, when)``, which points one pair of
``LogCaptureHandler`` objects (the ``caplog`` handler and the report handler)
at the running test and publishes them to ``caplog`` through the item's stash
(``caplog_handler_key``, ``caplog_records_key``). :func:`routed_logging`
shadows ``_runtest_for`` so each concurrent test gets a pair of its own,
with the plugin's ``log_level`` and ``formatter``, and records reach it by
context (see :mod:`..routing`).

pytest versions: pytest 9 made ``_runtest_for`` a context manager; 8.x
calls it with ``yield from``. The replacement takes the same form as the
method it replaces.
"""

from __future__ import annotations

import inspect
import io
import logging
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from _pytest.logging import LogCaptureHandler, LoggingPlugin, caplog_handler_key, caplog_records_key

from .. import routing
from ..current import running_test
from .patching import patched

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
        yield


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
