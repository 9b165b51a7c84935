"""The terminal lines of concurrent tests.

pytest's terminal reporter (the ``terminalreporter`` plugin, a
``TerminalReporter``) writes a test's line in two steps: at
``pytest_runtest_logstart`` the start of the line (with ``-v`` the test's
location, through ``write_ensure_prefix(line, "")``; otherwise the file's
path when the file changes, through ``write_fspath_result(nodeid, "")``), and
at ``pytest_runtest_logreport`` the rest (the outcome word, or a progress
letter). In ``currentfspath`` it remembers what the terminal's current line
holds: a test's location, a file's path (progress letters follow), ``-2``
once something followed the location, or None at the start of a line. It
ends a line only when the next one starts. With several tests in flight,
the starts of their lines pile up, and outcomes land after other tests'
ids, or letters under other tests' files.

While concurrent tests run, :class:`TerminalLines` (a plugin registered for
the session) keeps ``pytest_runtest_logstart`` from writing those starts.
With ``-v``, ``pytest_runtest_logreport`` then writes each line whole, in
pytest's own format, since ``write_ensure_prefix`` starts a new line when
``currentfspath`` is not the test's location. Without it, before a letter
:class:`TerminalLines` writes the reporting test's file path if the current
line is not that file's (``write_fspath_result``, which also writes the
progress column of the line it ends). Tests that run alone are left alone.

On a terminal, it shows a live status line below the terminal's current
line (:meth:`TerminalLines.show_status`), cleared before anything else is
written: it is written to the terminal writer's file behind the writer's
back, so the writer's idea of its current line (what ``ensure_newline`` and
the progress column go by) stays true, and cleared by moving the cursor back
to where the writer left it.

It also writes the live lines of concurrent tests (``-s`` output and live
log records, tagged with the test by :mod:`..live_output` and :mod:`.logs`),
each on a line of its own, by the reporter's convention: a live line is
ended by whatever starts the next line, and leaves ``currentfspath`` at
``-2``. The reporter writes to the stream it was given when it was
configured, which no capture of a concurrent test replaces (``capfd`` makes
a test run alone). :func:`tagged_live_output` installs the ``-s`` streams
(:mod:`.capture` ends a test's partial line when its phase ends).

pytest versions: from 8.2 to 9.x, ``TerminalReporter.pytest_runtest_logstart``
writes through ``write_ensure_prefix`` or ``write_fspath_result`` alone;
``currentfspath`` takes the values above; ``showlongtestinfo``,
``showfspath``, ``ensure_newline``, ``write`` and ``flush`` are the same;
``write_fspath_result`` compares ``currentfspath`` with ``config.rootpath /
<the node id up to its first "::">`` (9.x spells it
``NodeId.parse(nodeid).path``). pytest 8.2 counts a test in the progress
column at ``pytest_runtest_logfinish`` (9.x at its report), so without
``-v`` the column of a line ended by another file's letter may leave out
tests that reported but have not finished.
pytest 8.2 does not export ``pytest.TerminalReporter``. The status line
uses the reporter's ``isatty`` and ``_tw`` (its ``TerminalWriter``), and the
writer's ``_file``, ``fullwidth`` and ``width_of_current_line``, the same from
8.2 to 9.x.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import pytest
from _pytest.terminal import TerminalReporter

from .. import live_output
from .patching import patched

__all__ = [
    "TerminalLines",
    "register_terminal_lines",
    "status_line_writer",
    "tagged_live_output",
    "terminal_lines",
]

_PLUGIN_NAME = "concurrently-terminal-lines"
_STATUS_PLUGIN_NAME = "concurrently-status-line"

# The reporter's own value of currentfspath for a line that has more on it
# than its start: the next line starts with a newline.
_LINE_OPEN = -2


class TerminalLines:
    """Writes the terminal lines of concurrent tests: each outcome line
    whole when the test reports it, each progress letter under its test's
    file, and each live line on a line of its own.

    A plugin registered for the session by :func:`register_terminal_lines`;
    its hooks act only inside :meth:`concurrent_phase`.
    """

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        # The terminal reporter, while a concurrent phase runs.
        self._reporter: TerminalReporter | None = None
        # What the reporter writes per test (read once per phase: each read
        # asks the configuration): whole -v lines, or file names and letters.
        self._verbose = False
        self._file_names = False
        # Live lines come from threads a test started, too.
        self._lock = threading.RLock()
        self._paths: dict[str, Path] = {}
        # While a status line is shown: the column the writer's current
        # line ends at, where the cursor goes back to.
        self._status_column: int | None = None

    @contextmanager
    def concurrent_phase(self) -> Iterator[None]:
        """Mark a concurrent phase (every test that starts in it is
        concurrent): the hooks act, and live lines go amid the reporter's."""
        reporter = self._terminal_reporter()
        self._reporter = reporter
        if reporter is not None:
            self._verbose = reporter.showlongtestinfo
            self._file_names = reporter.showfspath
        try:
            yield
        finally:
            self.clear_status()
            self._reporter = None
            if reporter is not None and not self._verbose and reporter.currentfspath == _LINE_OPEN:
                # Without -v, the reporter takes any value but None for a
                # line of progress letters, which it ends with the progress
                # column; a live line has none.
                reporter.currentfspath = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logstart(self) -> Generator[None, None, None]:
        """Keep the reporter from writing the start of a concurrent test's
        line; the test's report writes the line."""
        reporter = self._reporter
        if self._status_column is not None:
            self.clear_status()
        if reporter is None or not (self._verbose or self._file_names):
            return (yield)
        with (
            patched(reporter, "write_ensure_prefix", _write_nothing),
            patched(reporter, "write_fspath_result", _write_nothing),
        ):
            return (yield)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Without ``-v``, before a concurrent test's progress letter, start
        a line with its file's path unless the line on the terminal is that
        file's."""
        if self._status_column is not None:
            self.clear_status()
        reporter = self._reporter
        if reporter is None or self._verbose or not self._file_names:
            return
        if reporter.currentfspath == self._path_of(report.nodeid):
            return
        if report.passed and report.when != "call":
            return  # a passed setup or teardown shows no letter
        status = self._config.hook.pytest_report_teststatus(report=report, config=self._config)
        if not status or not status[1]:
            return  # no letter (a passed setup or teardown)
        with self._lock:
            if reporter.currentfspath == _LINE_OPEN:
                reporter.currentfspath = None
            reporter.write_fspath_result(report.nodeid, "")

    def write_line(self, text: str, stream: TextIO, *, is_stdout: bool) -> None:
        """Write ``text`` (one line, without its newline) to ``stream`` on a
        line of its own.

        :param is_stdout: ``stream`` is the process's stdout, where the
            terminal reporter writes: the line goes through the reporter,
            which then knows how its current line ends. Otherwise (stderr)
            the reporter's output is flushed first.
        """
        reporter = self._reporter
        if reporter is None:
            # No terminal reporter, or after the phase (a thread the test
            # left running): the line goes to its stream, ended.
            with self._lock:
                stream.write(text + "\n")
                stream.flush()
            return
        with self._lock:
            self.clear_status()
            if is_stdout:
                reporter.ensure_newline()
                reporter.write(text, flush=True)
            else:
                reporter.flush()
                stream.write(("\n" if reporter.currentfspath else "") + text)
                stream.flush()
            reporter.currentfspath = _LINE_OPEN

    def end_open_line(self) -> None:
        """Output written outside any concurrent test follows: if the
        terminal's line is whole (a live line, or a ``-v`` outcome line),
        end it, so that the output does not run on from it."""
        self.clear_status()
        reporter = self._reporter
        if reporter is not None and reporter.currentfspath == _LINE_OPEN:
            with self._lock:
                reporter.ensure_newline()

    def show_status(self, text: str) -> None:
        """Show ``text`` as the live status line, in place of the last one:
        on the line below the terminal's current line (on it, if it is
        empty), until anything else is written."""
        reporter = self._reporter
        if reporter is None:
            return
        with self._lock:
            self.clear_status()
            writer = reporter._tw
            column = writer.width_of_current_line
            room = writer.fullwidth - 1
            if column >= writer.fullwidth:
                # The line fills the terminal's width, or has wrapped: the
                # cursor could not find its end again.
                return
            writer.flush()
            writer._file.write(("\n" if column else "\r") + text[:room])
            writer._file.flush()
            self._status_column = column

    def clear_status(self) -> None:
        """Take the status line away, and put the cursor back where the
        writer left it."""
        if self._status_column is None or self._reporter is None:
            return
        with self._lock:
            column, self._status_column = self._status_column, None
            file = self._reporter._tw._file
            # Erase the status line; then, if it was below the current line,
            # go up to that line's end.
            file.write("\r\x1b[K" + (f"\x1b[1A\x1b[{column + 1}G" if column else ""))
            file.flush()

    def _terminal_reporter(self) -> TerminalReporter | None:
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        return reporter if isinstance(reporter, TerminalReporter) else None

    def _path_of(self, nodeid: str) -> Path:
        """The path ``write_fspath_result`` keeps in ``currentfspath``."""
        file = nodeid.partition("::")[0]
        path = self._paths.get(file)
        if path is None:
            path = self._paths[file] = self._config.rootpath / file
        return path


class _StatusClearing:
    """Clears the status line where the reporter writes outside the hooks
    :class:`TerminalLines` has anyway: registered only with a status line,
    so that runs without one pay nothing for it."""

    def __init__(self, lines: TerminalLines) -> None:
        self._lines = lines

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logfinish(self) -> None:
        """The reporter may write the progress column here (pytest 8)."""
        self._lines.clear_status()


def status_line_writer(config: pytest.Config) -> Callable[[str], None] | None:
    """What shows a live status line, when one suits the run: the terminal
    reporter writes to a terminal, not under ``-q``, and not on a CI server
    (whose logs keep every byte); else None."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not isinstance(reporter, TerminalReporter) or not reporter.isatty:
        return None
    if config.get_verbosity() < 0 or os.environ.get("CI") or os.environ.get("BUILD_NUMBER"):
        return None
    lines = terminal_lines(config)
    if not config.pluginmanager.has_plugin(_STATUS_PLUGIN_NAME):
        config.pluginmanager.register(_StatusClearing(lines), _STATUS_PLUGIN_NAME)
    return lines.show_status


def _write_nothing(*args: object, **kwargs: object) -> None:
    pass


def register_terminal_lines(config: pytest.Config) -> None:
    """Register the session's :class:`TerminalLines`."""
    config.pluginmanager.register(TerminalLines(config), _PLUGIN_NAME)


def terminal_lines(config: pytest.Config) -> TerminalLines:
    """The session's :class:`TerminalLines` (an idle one if none is
    registered: live lines then go straight to their streams)."""
    plugin = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    return plugin if isinstance(plugin, TerminalLines) else TerminalLines(config)


@contextmanager
def tagged_live_output(config: pytest.Config) -> Iterator[live_output.TaggedStreams]:
    """With ``-s``, while the block runs, each line a concurrent test writes
    to ``sys.stdout`` or ``sys.stderr`` goes to the terminal whole, tagged
    with the test's id; the caller ends a test's partial line with its
    phase (:meth:`~..live_output.TaggedStreams.end_phase`)."""
    with live_output.tagging_process_streams(terminal_lines(config)) as streams:
        yield streams
