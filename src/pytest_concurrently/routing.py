"""Attribute output and log records to the test whose code produced them.

pytest captures output with one process-wide capture that it resumes and
suspends around each test phase, and catches log records with handlers it adds
to the root logger for the length of a phase. With several tests in flight,
both would hand one test's output to another. While concurrent tests run,
``sys.stdout``/``sys.stderr`` are replaced by :class:`RoutedStream` and the root
logger gets one :class:`RoutedLogHandler`; both look up the current phase's
sinks in a context variable that each test sets for itself.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = [
    "PhaseOutput",
    "RoutedLogHandler",
    "RoutedStream",
    "capturing_logs",
    "capturing_output",
    "routed_process_streams",
    "routed_root_logger",
]


@dataclass
class PhaseOutput:
    """What one test wrote to stdout and stderr during one phase."""

    stdout: io.StringIO = field(default_factory=io.StringIO)
    stderr: io.StringIO = field(default_factory=io.StringIO)


_phase_output: ContextVar[PhaseOutput | None] = ContextVar(
    "pytest_concurrently_phase_output", default=None
)
_phase_log_handlers: ContextVar[Sequence[logging.Handler]] = ContextVar(
    "pytest_concurrently_phase_log_handlers", default=()
)


class RoutedStream(io.TextIOBase):
    """A text stream that writes to the current test's buffer when there is
    one, and to ``fallback`` otherwise.

    :param name: ``"stdout"`` or ``"stderr"``.
    :param fallback: the stream that was in place before.
    :param tee: also write everything to ``fallback`` (``--capture=tee-sys``).
    """

    def __init__(self, name: str, fallback: TextIO, *, tee: bool = False) -> None:
        super().__init__()
        self._name = name
        self._fallback = fallback
        self._tee = tee

    def write(self, text: str) -> int:
        """Write ``text`` to the current test's buffer, or to the fallback."""
        output = _phase_output.get()
        if output is None:
            return self._fallback.write(text)
        written = getattr(output, self._name).write(text)
        if self._tee:
            self._fallback.write(text)
        return written  # type: ignore[no-any-return]

    def writable(self) -> bool:
        """Always True."""
        return True

    def flush(self) -> None:
        """Flush the fallback stream; buffers need no flushing."""
        self._fallback.flush()

    def isatty(self) -> bool:
        """Whether the fallback is a terminal (only outside a test's phase)."""
        return _phase_output.get() is None and self._fallback.isatty()

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
        handler's own level (``caplog.set_level`` sets it)."""
        for handler in _phase_log_handlers.get():
            if record.levelno >= handler.level:
                handler.handle(record)


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
def capturing_output() -> Iterator[PhaseOutput]:
    """Route this context's writes to ``sys.stdout``/``sys.stderr`` to a new
    :class:`PhaseOutput` until the block ends."""
    output = PhaseOutput()
    token = _phase_output.set(output)
    try:
        yield output
    finally:
        _phase_output.reset(token)


@contextmanager
def capturing_logs(*handlers: logging.Handler) -> Iterator[None]:
    """Route this context's log records to ``handlers`` until the block ends."""
    token = _phase_log_handlers.set(handlers)
    try:
        yield
    finally:
        _phase_log_handlers.reset(token)
