"""Output capture for concurrent tests.

pytest's capture manager (the ``capturemanager`` plugin, a ``CaptureManager``)
holds one process-wide capture, which it suspends and resumes around
terminal output, and wraps each phase of a test in its ``item_capture``
context manager, which reads that one capture into the test's report. With
several tests in flight the output has to be told apart by context instead
(see :mod:`..routing`): :func:`routed_capture` shadows ``item_capture`` and
the suspend/resume methods, and reads the ``--capture`` method from the
manager's ``_method``.

The capture fixtures (``capsys``, ``capsysbinary``, ``capteesys``) hand
their ``CaptureFixture`` to the manager's ``set_fixture``, which keeps one
per process, and the manager starts and stops it around each phase in
``item_capture`` (``activate_fixture``, ``deactivate_fixture``). For a
concurrent test the shadowed ``set_fixture`` keeps the fixture in the test's
stash instead and swaps its ``captureclass`` (``SysCapture``,
``SysCaptureBinary``, or ``SysCapture`` with ``tee=True`` in
``CaptureFixture._config``) for one that takes the test's writes from its
routed streams (:class:`RoutedSysCapture`), and ``global_and_fixture_disabled``
(what ``capsys.disabled()`` uses) lets that test's writes through to the
terminal.

pytest versions: ``item_capture(when, item)``, ``suspend_global_capture``,
``resume_global_capture``, ``_method``, ``set_fixture``, ``unset_fixture``,
``global_and_fixture_disabled``, ``CaptureFixture.captureclass``,
``_start``/``close`` and the ``CaptureBase`` interface are the same from 8.2
to 9.x; ``CaptureFixture._config`` (which carries ``tee``) and ``capteesys``
are new in 8.4.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, cast

import pytest
from _pytest.capture import (
    CaptureBase,
    CaptureFixture,
    CaptureManager,
    SysCapture,
    SysCaptureBinary,
)

from .. import routing
from ..current import running_test
from ..live_output import TaggedStreams
from .patching import patched
from .terminal import tagged_live_output

__all__ = ["RoutedSysCapture", "RoutedSysCaptureBinary", "routed_capture"]

# The capture fixture (capsys and kin) of a concurrent test, kept per test
# since the capture manager keeps one for the whole process.
_fixture_key = pytest.StashKey[CaptureFixture[Any]]()


@contextmanager
def routed_capture(config: pytest.Config) -> Iterator[None]:
    """While the block runs, a concurrent test's output goes to its own
    report sections instead of through the process-wide capture."""
    with ExitStack() as stack:
        capman = config.pluginmanager.get_plugin("capturemanager")
        if isinstance(capman, CaptureManager):
            # pytest suspends and resumes the global capture around terminal
            # output (--setup-show, live logs); resuming it would replace the
            # routed streams. Terminal output goes to the terminal directly.
            stack.enter_context(patched(capman, "suspend_global_capture", _ignore))
            stack.enter_context(patched(capman, "resume_global_capture", _ignore))
            if capman._method != "no":
                stack.enter_context(routing.routed_process_streams(tee=capman._method == "tee-sys"))
                stack.enter_context(patched(capman, "item_capture", _routed_item_capture(capman)))
            else:
                # -s: output goes straight to the terminal, each line of a
                # concurrent test whole and tagged with the test's id.
                streams = stack.enter_context(tagged_live_output(config))
                stack.enter_context(patched(capman, "item_capture", _live_item_capture(streams)))
            stack.enter_context(_routed_capture_fixtures(capman))
        yield


def _ignore(*args: object, **kwargs: object) -> None:
    pass


def _routed_item_capture(
    capman: CaptureManager,
) -> Callable[[str, pytest.Item], AbstractContextManager[None]]:
    original = type(capman).item_capture.__get__(capman)

    def item_capture(when: str, item: pytest.Item) -> AbstractContextManager[None]:
        current = running_test.get()
        if current is None or not current.concurrent:
            return cast(AbstractContextManager[None], original(when, item))
        return _CapturedPhase(when, item)

    return item_capture


class _CapturedPhase:
    """One phase of a concurrent test under :class:`_CapturingPhase`, its
    output then going to the phase's report sections.

    A class rather than a generator: a test in flight keeps its call
    phase's capture on its stack for as long as it runs.
    """

    __slots__ = ("_capturing", "_item", "_output", "_when")

    def __init__(self, when: str, item: pytest.Item) -> None:
        self._when = when
        self._item = item
        self._output = routing.PhaseOutput()
        self._capturing = _CapturingPhase(item, self._output)

    def __enter__(self) -> None:
        try:
            self._capturing.__enter__()
        except BaseException:
            self._report()
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._capturing.__exit__()
        finally:
            self._report()

    def _report(self) -> None:
        output, item, when = self._output, self._item, self._when
        item.add_report_section(when, "stdout", output.text("stdout"))
        item.add_report_section(when, "stderr", output.text("stderr"))


def _live_item_capture(
    streams: TaggedStreams,
) -> Callable[[str, pytest.Item], AbstractContextManager[None]]:
    """``item_capture`` under ``-s``: no report sections, a concurrent
    test's capture fixture started and stopped with each phase, and the
    test's partial line ended with it."""

    @contextmanager
    def item_capture(when: str, item: pytest.Item) -> Iterator[None]:
        current = running_test.get()
        try:
            if current is None or not current.concurrent:
                yield
                return
            output = routing.PhaseOutput()
            try:
                with _CapturingPhase(item, output):
                    yield
            finally:
                # What its capture fixture took and the test did not read
                # goes where its output goes, as pytest hands it back.
                sys.stdout.write(output.text("stdout"))
                sys.stderr.write(output.text("stderr"))
        finally:
            streams.end_phase(item)

    return item_capture


class _CapturingPhase:
    """Opens ``output`` for a concurrent test's phase, with its capture
    fixture (if it has one) taking its writes during the phase."""

    __slots__ = ("_item", "_opened")

    def __init__(self, item: pytest.Item, output: routing.PhaseOutput) -> None:
        self._item = item
        self._opened = routing.capturing_output(output)

    def __enter__(self) -> None:
        self._opened.__enter__()
        try:
            fixture = self._item.stash.get(_fixture_key, None)
            if fixture is not None:
                fixture._start()
        except BaseException:
            self._opened.__exit__(None, None, None)
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            fixture = self._item.stash.get(_fixture_key, None)
            if fixture is not None:
                # As pytest does between phases: what the test did not read
                # is handed back (to this phase's report section).
                fixture.close()
        finally:
            self._opened.__exit__(None, None, None)


@contextmanager
def _routed_capture_fixtures(capman: CaptureManager) -> Iterator[None]:
    """Keep a concurrent test's capture fixture with the test, capturing
    from its routed streams, and let ``disabled()`` pass its writes on."""
    cls = type(capman)
    original_set = cls.set_fixture.__get__(capman)
    original_unset = cls.unset_fixture.__get__(capman)
    original_disabled = cls.global_and_fixture_disabled.__get__(capman)

    def set_fixture(capture_fixture: CaptureFixture[Any]) -> None:
        item = _concurrent_item()
        routed_class = _routed_class(capture_fixture)
        if item is None or routed_class is None:
            # capfd and kin capture file descriptors; their tests run alone.
            original_set(capture_fixture)
            return
        held = item.stash.get(_fixture_key, None)
        if held is not None:
            capture_fixture.request.raiseerror(
                f"cannot use {capture_fixture.request.fixturename} and "
                f"{held.request.fixturename} at the same time"
            )
        capture_fixture.captureclass = routed_class
        item.stash[_fixture_key] = capture_fixture

    def unset_fixture() -> None:
        item = _concurrent_item()
        if item is None:
            original_unset()
        elif _fixture_key in item.stash:
            del item.stash[_fixture_key]

    @contextmanager
    def global_and_fixture_disabled() -> Iterator[None]:
        output = routing.current_output() if _concurrent_item() is not None else None
        if output is None or output.passthrough:
            with original_disabled():
                yield
            return
        output.passthrough = True
        try:
            yield
        finally:
            output.passthrough = False

    with ExitStack() as stack:
        stack.enter_context(patched(capman, "set_fixture", set_fixture))
        stack.enter_context(patched(capman, "unset_fixture", unset_fixture))
        stack.enter_context(
            patched(capman, "global_and_fixture_disabled", global_and_fixture_disabled)
        )
        yield


def _concurrent_item() -> pytest.Item | None:
    current = running_test.get()
    return current.item if current is not None and current.concurrent else None


def _routed_class(capture_fixture: CaptureFixture[Any]) -> type[CaptureBase[Any]] | None:
    """The routed stand-in for a fixture's capture class, or None for one
    that captures file descriptors."""
    captureclass = capture_fixture.captureclass
    if issubclass(captureclass, SysCaptureBinary):
        return RoutedSysCaptureBinary
    if not issubclass(captureclass, SysCapture):
        return None
    if getattr(capture_fixture, "_config", {}).get("tee"):
        return _RoutedTeeSysCapture
    return RoutedSysCapture


class RoutedSysCapture(CaptureBase[str]):
    """Captures what the running test writes to ``sys.stdout`` (fd 1) or
    ``sys.stderr`` (fd 2) through the routed streams, for its ``capsys``.

    It takes the writes of the phase that is open when it starts, in every
    task of the test, and no one else's.
    """

    EMPTY_BUFFER = ""
    _passes_on = False

    def __init__(self, fd: int, **config: object) -> None:
        self._name = "stdout" if fd == 1 else "stderr"
        self._buffer = io.StringIO()
        self._output: routing.PhaseOutput | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name}>"

    def start(self) -> None:
        """Take the current phase's writes from now on."""
        self._output = routing.current_output()
        self.resume()

    def done(self) -> None:
        """Stop taking writes."""
        self.suspend()
        self._output = None

    def suspend(self) -> None:
        """Let writes go to the phase's report section for a while."""
        if self._output is not None:
            self._output.taken.pop(self._name, None)

    def resume(self) -> None:
        """Take writes again."""
        if self._output is not None:
            self._output.taken[self._name] = (self._buffer, self._passes_on)

    def writeorg(self, data: str) -> None:
        """Write ``data`` where the test's writes go without a capture
        fixture: the phase's report section."""
        if self._output is not None and not self._passes_on:
            self._output.buffer(self._name).write(data)

    def snap(self) -> str:
        """What was taken since the last snap."""
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


class _RoutedTeeSysCapture(RoutedSysCapture):
    """:class:`RoutedSysCapture` for ``capteesys``: the writes also go on
    to the phase's report section (and, with ``--capture=tee-sys``, to the
    terminal) as they happen."""

    _passes_on = True


class RoutedSysCaptureBinary(CaptureBase[bytes]):
    """:class:`RoutedSysCapture` for ``capsysbinary``: what is taken is
    read as UTF-8 bytes, as pytest's binary capture encodes it."""

    EMPTY_BUFFER = b""

    def __init__(self, fd: int, **config: object) -> None:
        self._text = RoutedSysCapture(fd)

    def start(self) -> None:
        """As :meth:`RoutedSysCapture.start`."""
        self._text.start()

    def done(self) -> None:
        """As :meth:`RoutedSysCapture.done`."""
        self._text.done()

    def suspend(self) -> None:
        """As :meth:`RoutedSysCapture.suspend`."""
        self._text.suspend()

    def resume(self) -> None:
        """As :meth:`RoutedSysCapture.resume`."""
        self._text.resume()

    def writeorg(self, data: bytes) -> None:
        """As :meth:`RoutedSysCapture.writeorg`, decoding ``data``."""
        self._text.writeorg(data.decode("utf-8", "replace"))

    def snap(self) -> bytes:
        """As :meth:`RoutedSysCapture.snap`, encoded."""
        return self._text.snap().encode("utf-8")
