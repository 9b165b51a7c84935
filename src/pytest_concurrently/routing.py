"""Attribute output, log records and warnings to the test that produced them.

pytest captures output with one process-wide capture that it resumes and
suspends around each test phase, catches log records with handlers it adds to
the root logger for the length of a phase, and catches warnings with a
``warnings.catch_warnings`` block around each test. With several tests in
flight, each of these would hand one test's output to another. While
concurrent tests run, ``sys.stdout``/``sys.stderr`` are replaced by
:class:`RoutedStream`, the root logger gets one :class:`RoutedLogHandler`, and
``warnings.showwarning`` is replaced by a :class:`WarningRouter`; each looks
the current test's sink up in a context variable that the test sets for
itself.

A sink is closed when its test (or phase) ends. A task that a test started
and that outlives it (a server started by a session-scoped fixture, say)
inherits the test's context, so it still finds the sink: once the sink is
closed its output goes where it would have gone without the plugin, and its
log records go to every test in flight, as they would reach whichever test
was running in a sequential run (a test that asks a shared server for
something and then checks the server's log with ``caplog`` passes). A log
record emitted in a test's own context is that test's alone.
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO, TypeVar

__all__ = [
    "SINK_VARIABLES",
    "LogSink",
    "PhaseOutput",
    "RoutedLogHandler",
    "RoutedStream",
    "WarningRouter",
    "WarningSink",
    "capturing_logs",
    "capturing_output",
    "capturing_warnings",
    "routed_process_streams",
    "routed_root_logger",
    "routed_warnings",
]


@dataclass(eq=False)
class PhaseOutput:
    """What one test wrote to stdout and stderr during one phase."""

    stdout: io.StringIO = field(default_factory=io.StringIO)
    stderr: io.StringIO = field(default_factory=io.StringIO)
    open: bool = True


@dataclass(eq=False)
class LogSink:
    """The handlers that receive one test's log records during one phase."""

    handlers: Sequence[logging.Handler]
    open: bool = True


@dataclass(eq=False)
class WarningSink:
    """The warnings one test issued."""

    records: list[warnings.WarningMessage] = field(default_factory=list)
    open: bool = True


_phase_output: ContextVar[PhaseOutput | None] = ContextVar(
    "pytest_concurrently_phase_output", default=None
)
_phase_logs: ContextVar[LogSink | None] = ContextVar("pytest_concurrently_phase_logs", default=None)
_test_warnings: ContextVar[WarningSink | None] = ContextVar(
    "pytest_concurrently_test_warnings", default=None
)

#: The context variables that say where the running code's output, log
#: records and warnings go; work done on a test's behalf in another task
#: carries them over.
SINK_VARIABLES: tuple[ContextVar[Any], ...] = (_phase_output, _phase_logs, _test_warnings)


class RoutedStream(io.TextIOBase):
    """A text stream that writes to the current test's buffer when there is
    an open one, and to ``fallback`` otherwise.

    :param name: ``"stdout"`` or ``"stderr"``.
    :param fallback: the stream that was in place before.
    :param tee: also write everything to ``fallback`` (``--capture=tee-sys``).
    """

    def __init__(self, name: str, fallback: TextIO, *, tee: bool = False) -> None:
        super().__init__()
        self._name = name
        self._fallback = fallback
        self._tee = tee

    def _buffer(self) -> io.StringIO | None:
        output = _phase_output.get()
        if output is None or not output.open:
            return None
        return output.stdout if self._name == "stdout" else output.stderr

    def write(self, text: str) -> int:
        """Write ``text`` to the current test's buffer, or to the fallback."""
        buffer = self._buffer()
        if buffer is None:
            return self._fallback.write(text)
        written = buffer.write(text)
        if self._tee:
            self._fallback.write(text)
        return written

    def writable(self) -> bool:
        """Always True."""
        return True

    def flush(self) -> None:
        """Flush the fallback stream; buffers need no flushing."""
        self._fallback.flush()

    def isatty(self) -> bool:
        """Whether the fallback is a terminal (only outside a test's phase)."""
        return self._buffer() is None and self._fallback.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The fallback stream's encoding."""
        return self._fallback.encoding

    def fileno(self) -> int:
        """The fallback stream's file descriptor."""
        return self._fallback.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


class RoutedLogHandler(logging.Handler):
    """Hands each record to the handlers of the phase it was emitted in."""

    def emit(self, record: logging.LogRecord) -> None:
        """Pass ``record`` to the current phase's handlers, honouring each
        handler's own level (``caplog.set_level`` sets it); a record from
        outside any open phase goes to the handlers of every open phase."""
        sink = _phase_logs.get()
        if sink is not None and sink.open:
            _handle(sink, record)
            return
        for open_sink in list(_open_log_sinks):
            _handle(open_sink, record)


def _handle(sink: LogSink, record: logging.LogRecord) -> None:
    for handler in sink.handlers:
        if record.levelno >= handler.level:
            handler.handle(record)


# The log sinks of the phases in flight, in the order they opened.
_open_log_sinks: dict[LogSink, None] = {}


class WarningRouter:
    """A ``warnings.showwarning`` replacement that records each warning for
    the test that issued it, or in :attr:`unattributed` outside any test."""

    def __init__(self) -> None:
        self.unattributed: list[warnings.WarningMessage] = []

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        """Record one warning (the signature of ``warnings.showwarning``)."""
        record = warnings.WarningMessage(message, category, filename, lineno, file, line)
        sink = _test_warnings.get()
        if sink is None or not sink.open:
            self.unattributed.append(record)
        else:
            sink.records.append(record)


@contextmanager
def routed_process_streams(*, tee: bool) -> Iterator[None]:
    """Replace ``sys.stdout`` and ``sys.stderr`` with routed streams."""
    saved = sys.stdout, sys.stderr
    sys.stdout = RoutedStream("stdout", saved[0], tee=tee)
    sys.stderr = RoutedStream("stderr", saved[1], tee=tee)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


@contextmanager
def routed_root_logger(level: int | None) -> Iterator[None]:
    """Add one :class:`RoutedLogHandler` to the root logger.

    :param level: the level pytest's logging plugin would set on its own
        handlers (``log_level``); the root logger is lowered to it if needed.
    """
    root = logging.getLogger()
    handler = RoutedLogHandler()
    saved_level = root.level
    if level is not None:
        handler.setLevel(level)
        root.setLevel(min(saved_level, level))
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


@contextmanager
def routed_warnings(router: WarningRouter) -> Iterator[None]:
    """Let ``router`` show every warning while the block runs (inside a
    ``warnings.catch_warnings`` block, which restores the original)."""
    saved: Callable[..., None] = warnings.showwarning
    warnings.showwarning = router
    try:
        yield
    finally:
        warnings.showwarning = saved


class _Sink(Protocol):
    open: bool


_SinkT = TypeVar("_SinkT", bound=_Sink)


@contextmanager
def _open_in_this_context(variable: ContextVar[_SinkT | None], sink: _SinkT) -> Iterator[_SinkT]:
    token = variable.set(sink)
    try:
        yield sink
    finally:
        sink.open = False
        variable.reset(token)


def capturing_output() -> AbstractContextManager[PhaseOutput]:
    """Route this context's writes to ``sys.stdout``/``sys.stderr`` to a new
    :class:`PhaseOutput` until the block ends."""
    return _open_in_this_context(_phase_output, PhaseOutput())


@contextmanager
def capturing_logs(*handlers: logging.Handler) -> Iterator[LogSink]:
    """Route this context's log records to ``handlers`` until the block
    ends, and records from outside any open phase too."""
    with _open_in_this_context(_phase_logs, LogSink(handlers)) as sink:
        _open_log_sinks[sink] = None
        try:
            yield sink
        finally:
            del _open_log_sinks[sink]


def capturing_warnings() -> AbstractContextManager[WarningSink]:
    """Record the warnings this context issues until the block ends (through
    a :class:`WarningRouter` installed around it)."""
    return _open_in_this_context(_test_warnings, WarningSink())
