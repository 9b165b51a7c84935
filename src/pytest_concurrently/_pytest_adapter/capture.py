"""Output capture for concurrent tests.

pytest's capture manager (the ``capturemanager`` plugin, a ``CaptureManager``)
holds one process-wide capture, which it suspends and resumes around
terminal output, and wraps each phase of a test in its ``item_capture``
context manager, which reads that one capture into the test's report. With
several tests in flight the output has to be told apart by context instead
(see :mod:`..routing`): :func:`routed_capture` shadows ``item_capture`` and
the suspend/resume methods, and reads the ``--capture`` method from the
manager's ``_method``.

pytest versions: ``item_capture(when, item)``, ``suspend_global_capture``,
``resume_global_capture`` and ``_method`` are the same from 8.2 to 9.x.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

import pytest
from _pytest.capture import CaptureManager

from .. import routing
from ..current import running_test
from .patching import patched

__all__ = ["routed_capture"]


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
        yield


def _ignore(*args: object, **kwargs: object) -> None:
    pass


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
