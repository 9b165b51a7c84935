"""Everything a concurrent phase routes by context, entered in one block.

While concurrent tests are in flight, pytest's process-wide capture, logging
handlers, warnings block and assertion hooks would mix the tests up; this
module composes the replacements of :mod:`.capture`, :mod:`.logs`,
:mod:`.warning_capture` and :mod:`.assertion` and names no pytest internal
itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from .. import routing
from .assertion import routed_assertion_hooks
from .capture import routed_capture
from .logs import routed_logging
from .warning_capture import routed_warnings

__all__ = ["route_phase_capture"]


@contextmanager
def route_phase_capture(config: pytest.Config) -> Iterator[None]:
    """While the block runs, tests marked as concurrent in ``running_test``
    get their output, log records, warnings and assertion explanations
    routed to them by context instead of through pytest's process-wide
    capture, handlers and hooks."""
    with ExitStack() as stack:
        stack.enter_context(routed_capture(config))
        stack.enter_context(routed_logging(config))
        stack.enter_context(routed_warnings(config))
        stack.enter_context(routed_assertion_hooks(config))
        stack.enter_context(routing.threads_inherit_context())
        yield
