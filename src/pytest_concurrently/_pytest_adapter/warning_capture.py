"""Warning capture for concurrent tests.

pytest's ``warnings`` plugin wraps each test's protocol in
``catch_warnings_for_item(config, ihook, when, item)``, a ``catch_warnings``
block with the configured filters and the test's ``filterwarnings`` markers
that hands what it records to ``pytest_warning_recorded``. Blocks of
overlapping tests would restore each other's state, so :func:`routed_warnings`
opens one block for the whole concurrent phase and the warnings are
attributed by context and filtered per test (see :mod:`..routing` and
:mod:`..warning_filters`): :func:`test_filters` reads a test's markers the
way pytest applies them, and :func:`report_warnings` reports each test's
warnings as the per-test block would.

``pytest.warns``, ``pytest.deprecated_call`` and ``recwarn`` are
``WarningsRecorder`` objects, ``catch_warnings`` blocks of their own that
set the ``"always"`` filter. While the phase runs, a recorder entered by a
concurrent test records that test's warnings alone, with its filters in
front of the test's, and changes nothing process-wide: its ``__enter__``
and ``__exit__`` are replaced for the phase (reading and writing
``_entered`` and ``_list`` as pytest's do), and the ``recwarn`` fixture
this plugin provides puts its ``"default"`` filter on its recorder.

pytest versions: ``catch_warnings_for_item`` takes the same four positional
arguments from 8.2 to 9.x (9.x adds a keyword-only ``record``);
``parse_warning_filter(arg, escape=False)``, ``WarningsRecorder(_ispytest=
True)``, its ``_entered`` and ``_list`` and the ``recwarn`` fixture's
``"default"`` filter are the same from 8.2 to 9.x.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from _pytest.config import parse_warning_filter
from _pytest.recwarn import WarningsRecorder
from _pytest.warnings import catch_warnings_for_item

from .. import routing
from ..warning_filters import Filter, compile_filter

__all__ = [
    "recording_warnings",
    "report_warnings",
    "routed_warnings",
    "test_filters",
    "trim_warning_frames",
]


@contextmanager
def routed_warnings(config: pytest.Config) -> Iterator[None]:
    """While the block runs, each warning is recorded for the test that
    issued it; warnings issued outside any test are reported without a node
    id when the block ends."""
    if not config.pluginmanager.has_plugin("warnings"):
        yield
        return
    # pytest wraps each test's protocol in a catch_warnings block of its own;
    # overlapping blocks would restore each other's state. One block with the
    # configured filters spans the phase, and each warning is recorded for
    # the test that issued it (see report_warnings).
    router = routing.WarningRouter()
    with (
        catch_warnings_for_item(config, config.hook, "runtest", None),
        routing.routed_warnings(router),
        _recorders_per_test(),
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


def test_filters(item: pytest.Item) -> list[Filter]:
    """The filters of ``item``'s ``filterwarnings`` markers, first match
    first, as pytest's per-test block applies them over the run's."""
    filters: list[Filter] = []
    for mark in item.iter_markers(name="filterwarnings"):
        for argument in mark.args:
            new = compile_filter(*parse_warning_filter(argument, escape=False))
            # As warnings.filterwarnings: a filter added again moves to the front.
            if new in filters:
                filters.remove(new)
            filters.insert(0, new)
    return filters


# The attribute that holds, on a recorder a concurrent test entered, the
# test's sink and the recording, while the recorder is open.
_OPENED = "_concurrently_opened"


def _opened(
    recorder: WarningsRecorder,
) -> tuple[routing.WarningSink, routing.WarningRecording] | None:
    opened: tuple[routing.WarningSink, routing.WarningRecording] | None = getattr(
        recorder, _OPENED, None
    )
    return opened


@contextmanager
def _recorders_per_test() -> Iterator[None]:
    original_enter = WarningsRecorder.__enter__
    original_exit = WarningsRecorder.__exit__

    def __enter__(self: WarningsRecorder) -> WarningsRecorder:
        sink = routing.current_warnings()
        if sink is None:
            return original_enter(self)
        if self._entered:
            __tracebackhide__ = True
            raise RuntimeError(f"Cannot enter {self!r} twice")
        self._entered = True
        self._list = []
        recording = routing.WarningRecording(self._list, process_filters=list(warnings.filters))
        setattr(self, _OPENED, (sink, recording))
        sink.recordings.append(recording)
        sink.filters.forget_shown()
        return self

    def __exit__(self: WarningsRecorder, *exc_info: Any) -> None:
        opened = _opened(self)
        if opened is None:
            original_exit(self, *exc_info)
            return
        delattr(self, _OPENED)
        sink, recording = opened
        if recording in sink.recordings:
            sink.recordings.remove(recording)
            sink.filters.forget_shown()
        _restore_process_filters(recording.process_filters)
        self._entered = False

    WarningsRecorder.__enter__ = __enter__  # type: ignore[method-assign,assignment]
    WarningsRecorder.__exit__ = __exit__  # type: ignore[method-assign]
    try:
        yield
    finally:
        WarningsRecorder.__enter__ = original_enter  # type: ignore[method-assign]
        WarningsRecorder.__exit__ = original_exit  # type: ignore[method-assign]


def _restore_process_filters(before: list[Any]) -> None:
    """Put the process's filters back as they were when a recorder's block
    opened, if code in the block changed them (``warnings.simplefilter``,
    ``resetwarnings``), as leaving its ``catch_warnings`` block would."""
    if warnings.filters == before:
        return
    cast("list[Any]", warnings.filters)[:] = before
    warnings._filters_mutated()  # type: ignore[attr-defined]


def recording_warnings() -> Generator[WarningsRecorder, None, None]:
    """The ``recwarn`` fixture: a recorder open for the whole test, which
    shows each warning once per place (the ``"default"`` filter)."""
    recorder = WarningsRecorder(_ispytest=True)
    with recorder:
        opened = _opened(recorder)
        if opened is None:
            warnings.simplefilter("default")
        else:
            opened[1].filters.insert(0, compile_filter("default", "", Warning, "", 0))
        yield recorder


def trim_warning_frames(error: BaseException) -> None:
    """Cut a warning that a filter turned into an error off at the line
    that issued it, as when the ``warnings`` module raises it: the router
    raises it from inside ``warnings``, whose frames say nothing to a user."""
    if not isinstance(error, Warning):
        return
    show = getattr(warnings, "_showwarnmsg", None)
    code = getattr(show, "__code__", None)
    entry = error.__traceback__
    while entry is not None and entry.tb_next is not None:
        if entry.tb_next.tb_frame.f_code is code:
            entry.tb_next = None
            return
        entry = entry.tb_next
