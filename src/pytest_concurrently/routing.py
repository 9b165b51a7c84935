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

import contextvars
import io
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.thread import _worker as _pool_worker
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TextIO, TypeVar

from .warning_filters import ALWAYS, Filter, WarningFilters, decide

__all__ = [
    "SINK_VARIABLES",
    "FallbackStream",
    "LogSink",
    "PhaseOutput",
    "RoutedLogHandler",
    "RoutedStream",
    "WarningRecording",
    "WarningRouter",
    "WarningSink",
    "capturing_logs",
    "capturing_output",
    "capturing_warnings",
    "current_output",
    "current_warnings",
    "routed_process_streams",
    "routed_root_logger",
    "routed_warnings",
    "taken_by_fixture",
    "threads_inherit_context",
]


class PhaseOutput:
    """What one test wrote to stdout and stderr during one phase.

    Its buffers are made on the first write: most phases write nothing, and
    a test in flight keeps its open phase's output for as long as it runs.

    :ivar taken: per stream name, where a capture fixture of the test
        (``capsys`` and kin) takes the writes instead, and whether they are
        also passed on (``capteesys``); absent while no fixture captures.
    :ivar passthrough: writes go where they would without the plugin
        (``capsys.disabled()``).
    """

    __slots__ = ("_buffers", "open", "passthrough", "taken")

    def __init__(self) -> None:
        self._buffers: dict[str, io.StringIO] | None = None
        self.open = True
        self.taken: dict[str, tuple[io.StringIO, bool]] = {}
        self.passthrough = False

    def buffer(self, name: str) -> io.StringIO:
        """The phase's own buffer for ``"stdout"`` or ``"stderr"``."""
        if self._buffers is None:
            self._buffers = {}
        found = self._buffers.get(name)
        if found is None:
            found = self._buffers[name] = io.StringIO()
        return found

    def text(self, name: str) -> str:
        """What the phase wrote to ``"stdout"`` or ``"stderr"``."""
        found = self._buffers.get(name) if self._buffers is not None else None
        return found.getvalue() if found is not None else ""


@dataclass(eq=False)
class LogSink:
    """The handlers that receive one test's log records during one phase."""

    handlers: Sequence[logging.Handler]
    open: bool = True


@dataclass(eq=False)
class WarningRecording:
    """An open ``pytest.warns``, ``recwarn`` or ``deprecated_call`` of one
    test: the warnings it records and the filters it puts in front."""

    records: list[warnings.WarningMessage]
    filters: list[Filter] = field(default_factory=lambda: [ALWAYS])
    #: The process's filters when it opened: what code in its block adds
    #: there is taken out when it closes.
    process_filters: list[Any] = field(default_factory=list)


@dataclass(eq=False)
class WarningSink:
    """The warnings one test issued, and what decides which it gets.

    :param filters: the test's own filters and memory of what it was shown.
    :param recordings: its open recorders, oldest first; the newest takes
        the warnings it shows instead of :attr:`records`.
    """

    records: list[warnings.WarningMessage] = field(default_factory=list)
    open: bool = True
    filters: WarningFilters = field(default_factory=WarningFilters)
    recordings: list[WarningRecording] = field(default_factory=list)

    def chain(self, run_filters: list[Filter]) -> Iterator[Filter]:
        """The filters that apply to the test's warnings, first match first."""
        for recording in reversed(self.recordings):
            yield from recording.filters
        yield from self.filters.own
        yield from run_filters


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


class FallbackStream(io.TextIOBase):
    """A text stream that stands in for ``fallback`` (the stream that was in
    place before) and passes on what it does not handle itself; subclasses
    decide where writes go."""

    def __init__(self, fallback: TextIO) -> None:
        super().__init__()
        self._fallback = fallback

    def writable(self) -> bool:
        """Always True."""
        return True

    def flush(self) -> None:
        """Flush the fallback stream unless it is closed."""
        # The stream may be collected after the fallback was closed (by an
        # inner session's capture, say); closing it flushes.
        if not getattr(self._fallback, "closed", False):
            self._fallback.flush()

    def isatty(self) -> bool:
        """Whether the fallback is a terminal."""
        return self._fallback.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The fallback stream's encoding."""
        return self._fallback.encoding

    def fileno(self) -> int:
        """The fallback stream's file descriptor."""
        return self._fallback.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


class RoutedStream(FallbackStream):
    """A text stream that writes to the current test's buffer when there is
    an open one, and to ``fallback`` otherwise; buffers need no flushing.

    :param name: ``"stdout"`` or ``"stderr"``.
    :param fallback: the stream that was in place before.
    :param tee: also write everything to ``fallback`` (``--capture=tee-sys``).
    """

    def __init__(self, name: str, fallback: TextIO, *, tee: bool = False) -> None:
        super().__init__(fallback)
        self._name = name
        self._tee = tee

    def _output(self) -> PhaseOutput | None:
        output = _phase_output.get()
        if output is None or not output.open or output.passthrough:
            return None
        return output

    def write(self, text: str) -> int:
        """Write ``text`` to the current test's capture fixture or buffer,
        or to the fallback."""
        output = self._output()
        if output is None:
            return self._fallback.write(text)
        if taken_by_fixture(output, self._name, text):
            return len(text)
        written = output.buffer(self._name).write(text)
        if self._tee:
            self._fallback.write(text)
        return written

    def isatty(self) -> bool:
        """Whether the fallback is a terminal (only outside a test's phase)."""
        return self._output() is None and self._fallback.isatty()


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
    the test that issued it, or in :attr:`unattributed` outside any test.

    The process's filters let every warning through to it (see
    :func:`routed_warnings`); it applies the filters in effect for the test
    that issued the warning (:mod:`.warning_filters`): ``"error"`` raises
    the warning where it was issued, ``"ignore"`` drops it, and the others
    record it, once or always. Its run filters (configuration, command
    line, first match first) are those in place when it is installed.
    """

    def __init__(self) -> None:
        self.unattributed: list[warnings.WarningMessage] = []
        self.run_filters: list[Filter] = []
        self._outside = WarningFilters()

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
        __tracebackhide__ = True
        text = str(message)
        module = _module_of(filename, lineno)
        sink = _test_warnings.get()
        if sink is None or not sink.open:
            memory, destination = self._outside, self.unattributed
            action = decide(self.run_filters, text, category, module, lineno)
        else:
            memory = sink.filters
            destination = sink.recordings[-1].records if sink.recordings else sink.records
            action = decide(sink.chain(self.run_filters), text, category, module, lineno)
        if action == "error":
            raise message if isinstance(message, Warning) else category(message)
        if memory.shows(action, text, category, filename, module, lineno):
            destination.append(
                warnings.WarningMessage(message, category, filename, lineno, file, line)
            )


def _module_of(filename: str, lineno: int) -> str:
    """The module a warning was issued in, which module filters match: that
    of the frame at the warning's place when it is on the stack (as for
    ``warnings.warn``), otherwise derived from the file name as
    ``warnings.warn_explicit`` derives it."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_lineno == lineno and frame.f_code.co_filename == filename:
            return str(frame.f_globals.get("__name__", filename))
        frame = frame.f_back  # type: ignore[assignment]
    module = filename or "<unknown>"
    return module[:-3] if module[-3:].lower() == ".py" else module


@contextmanager
def threads_inherit_context() -> Iterator[None]:
    """While the block runs, a thread started by a test's code runs in a
    copy of the test's context, so its output, log records and warnings are
    the test's, as a task's are.

    Worker threads of a ``concurrent.futures`` pool are left alone: a pool
    outlives the test that happened to start its thread, and
    ``asyncio.to_thread`` hands each call its caller's context anyway.
    """
    cls = threading.Thread
    original_start = cls.start

    def start(self: threading.Thread) -> None:
        in_a_test = _phase_output.get() is not None or _test_warnings.get() is not None
        if in_a_test and getattr(self, "_target", None) is not _pool_worker:
            context = contextvars.copy_context()
            run = self.run
            self.run = lambda: context.run(run)  # type: ignore[method-assign]
        original_start(self)

    cls.start = start  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls.start = original_start  # type: ignore[method-assign]


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
    """Let ``router`` decide on and show every warning while the block runs
    (inside a ``warnings.catch_warnings`` block, which restores the
    originals): the filters in effect are its run filters, and the
    process's let every warning through to it."""
    saved: Callable[..., None] = warnings.showwarning
    router.run_filters = list(warnings.filters)
    warnings.simplefilter("always")
    warnings.showwarning = router
    try:
        yield
    finally:
        warnings.showwarning = saved


class _Sink(Protocol):
    open: bool


_SinkT = TypeVar("_SinkT", bound=_Sink)


class _OpenInThisContext(Generic[_SinkT]):
    """Makes ``sink`` the context's sink for the block, and closes it after.

    A class rather than a generator: every phase of every test opens two or
    three of these, and a suspended test keeps them on its stack.
    """

    __slots__ = ("_sink", "_token", "_variable")

    def __init__(self, variable: ContextVar[_SinkT | None], sink: _SinkT) -> None:
        self._variable = variable
        self._sink = sink

    def __enter__(self) -> _SinkT:
        self._token = self._variable.set(self._sink)
        return self._sink

    def __exit__(self, *exc_info: object) -> None:
        self._sink.open = False
        self._variable.reset(self._token)


class _CapturingLogs(_OpenInThisContext[LogSink]):
    """:class:`_OpenInThisContext` for a log sink, which is also listed
    among the open ones while the block runs."""

    __slots__ = ()

    def __enter__(self) -> LogSink:
        sink = super().__enter__()
        _open_log_sinks[sink] = None
        return sink

    def __exit__(self, *exc_info: object) -> None:
        del _open_log_sinks[self._sink]
        super().__exit__(*exc_info)


def taken_by_fixture(output: PhaseOutput | None, name: str, text: str) -> bool:
    """Hand ``text``, written to stream ``name`` in a phase with ``output``,
    to the test's capture fixture if one takes that stream; True when it
    goes no further (the fixture does not pass it on)."""
    if output is None or output.passthrough:
        return False
    taken = output.taken.get(name)
    if taken is None:
        return False
    fixture_buffer, passed_on = taken
    fixture_buffer.write(text)
    return not passed_on


def current_output() -> PhaseOutput | None:
    """The open phase output of the test whose code is running, if any."""
    output = _phase_output.get()
    return output if output is not None and output.open else None


def capturing_output(output: PhaseOutput | None = None) -> AbstractContextManager[PhaseOutput]:
    """Route this context's writes to ``sys.stdout``/``sys.stderr`` to
    ``output`` (a new :class:`PhaseOutput` by default) until the block ends."""
    return _OpenInThisContext(_phase_output, output or PhaseOutput())


def capturing_logs(*handlers: logging.Handler) -> AbstractContextManager[LogSink]:
    """Route this context's log records to ``handlers`` until the block
    ends, and records from outside any open phase too."""
    return _CapturingLogs(_phase_logs, LogSink(handlers))


def capturing_warnings(filters: list[Filter] | None = None) -> AbstractContextManager[WarningSink]:
    """Record the warnings this context issues until the block ends (through
    a :class:`WarningRouter` installed around it).

    :param filters: the test's own filters, in front of the run's.
    """
    return _OpenInThisContext(_test_warnings, WarningSink(filters=WarningFilters(filters)))


def current_warnings() -> WarningSink | None:
    """The open warning sink of the test whose code is running, if any."""
    sink = _test_warnings.get()
    return sink if sink is not None and sink.open else None
