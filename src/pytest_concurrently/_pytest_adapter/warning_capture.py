"""Warning capture for concurrent tests.

pytest's ``warnings`` plugin wraps each test's protocol in
``catch_warnings_for_item(config, ihook, when, item)``, a ``catch_warnings``
block with the configured filters that hands what it records to
``pytest_warning_recorded``. Blocks of overlapping tests would restore each
other's state, so :func:`routed_warnings` opens one block for the whole
concurrent phase and the warnings are attributed by context (see
:mod:`..routing`); :func:`report_warnings` then reports each test's warnings
as the per-test block would.

pytest versions: ``catch_warnings_for_item`` takes the same four positional
arguments from 8.2 to 9.x (9.x adds a keyword-only ``record``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from _pytest.warnings import catch_warnings_for_item

from .. import routing

__all__ = ["forget_warned_locations", "report_warnings", "routed_warnings"]


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


def forget_warned_locations() -> None:
    """Make the ``"default"`` action show a warning again at a location that
    already warned, as a fresh per-test ``catch_warnings`` block would."""
    # The registries of warned locations are cleared whenever the filters
    # change; this private function of the warnings module marks them changed.
    warnings._filters_mutated()  # type: ignore[attr-defined]
