"""Live output of concurrent tests, line by line, each line tagged with its test.

With ``-s`` (``--capture=no``) what a test writes goes straight to the
terminal. With several tests in flight their lines interleave, and a partial
line of one test can be finished by another. While concurrent tests run,
:class:`TaggedLineStream` replaces ``sys.stdout`` and ``sys.stderr``: what a
concurrent test writes is cut into lines, and each line is handed on whole
with the test's node id in front (``[test_a.py::test_s[1]] hello``, see
:func:`tagged`). A partial line waits for its newline, or for the end of the
test's phase (:meth:`TaggedStreams.end_phase`). What is written outside any
concurrent test passes through untouched, starting on a line of its own if
the terminal's last line is whole (a tagged line, or a ``-v`` outcome line).

The test is the one :data:`~.current.running_test` names, so the output of
tasks a test started, and of threads that run in its context, is tagged
with it too.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TextIO

import pytest

from . import routing
from .current import running_test

__all__ = ["LineSink", "TaggedLineStream", "TaggedStreams", "tagged", "tagging_process_streams"]


class LineSink(Protocol):
    """Where tagged lines go: the terminal, amid the reporter's lines."""

    def write_line(self, text: str, stream: TextIO, *, is_stdout: bool) -> None:
        """Write ``text`` (one line, without its newline) to ``stream``
        (the process's stdout when ``is_stdout``), on a line of its own."""

    def end_open_line(self) -> None:
        """Untagged text follows: end the terminal's line if it is whole."""


def tagged(nodeid: str, line: str) -> str:
    """``line`` with the node id of the test that wrote it in front."""
    return f"[{nodeid}] {line}" if line else f"[{nodeid}]"


class TaggedLineStream(routing.FallbackStream):
    """A text stream that hands each line a concurrent test writes to
    ``sink``, tagged with the test's id, and passes everything else to
    ``fallback``. Flushing leaves a test's partial line waiting for its
    newline: writing it then would cut the line in two.

    :param fallback: the stream that was in place before.
    :param sink: where the tagged lines go.
    :param is_stdout: whether this stream stands for stdout.
    """

    def __init__(self, fallback: TextIO, sink: LineSink, *, is_stdout: bool) -> None:
        super().__init__(fallback)
        self._sink = sink
        self._is_stdout = is_stdout
        self._name = "stdout" if is_stdout else "stderr"
        # The start of a line each test has written, until its newline.
        self._partial: dict[pytest.Item, str] = {}
        # Threads a test started write here too.
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Hand on the complete lines of ``text``, keeping the rest until
        its newline; outside a concurrent test, write it to the fallback."""
        current = running_test.get()
        if current is None or not current.concurrent:
            self._sink.end_open_line()
            return self._fallback.write(text)
        if routing.taken_by_fixture(routing.current_output(), self._name, text):
            return len(text)
        item = current.item
        with self._lock:
            lines = (self._partial.pop(item, "") + text).split("\n")
            if lines[-1]:
                self._partial[item] = lines[-1]
            for line in lines[:-1]:
                self._write(tagged(item.nodeid, line))
        return len(text)

    def _write(self, line: str) -> None:
        self._sink.write_line(line, self._fallback, is_stdout=self._is_stdout)

    def end_phase(self, item: pytest.Item) -> None:
        """Hand on what ``item`` wrote after its last newline, as a line."""
        with self._lock:
            rest = self._partial.pop(item, None)
            if rest is not None:
                self._write(tagged(item.nodeid, rest))

    def end_all(self) -> None:
        """Hand on every test's partial line (the stream is being removed)."""
        with self._lock:
            partial, self._partial = self._partial, {}
            for item, rest in partial.items():
                self._write(tagged(item.nodeid, rest))


@dataclass(frozen=True)
class TaggedStreams:
    """The two streams :func:`tagging_process_streams` installs."""

    stdout: TaggedLineStream
    stderr: TaggedLineStream

    def end_phase(self, item: pytest.Item) -> None:
        """``item``'s phase is over: hand on its partial lines."""
        self.stdout.end_phase(item)
        self.stderr.end_phase(item)


@contextmanager
def tagging_process_streams(sink: LineSink) -> Iterator[TaggedStreams]:
    """Replace ``sys.stdout`` and ``sys.stderr`` with tagging streams that
    write their lines to ``sink`` while the block runs; at its end, partial
    lines still waiting are written."""
    saved = sys.stdout, sys.stderr
    streams = TaggedStreams(
        TaggedLineStream(saved[0], sink, is_stdout=True),
        TaggedLineStream(saved[1], sink, is_stdout=False),
    )
    sys.stdout, sys.stderr = streams.stdout, streams.stderr
    try:
        yield streams
    finally:
        sys.stdout, sys.stderr = saved
        streams.stdout.end_all()
        streams.stderr.end_all()
