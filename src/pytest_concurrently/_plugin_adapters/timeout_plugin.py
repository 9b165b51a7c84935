"""pytest-timeout's limits for concurrent tests.

pytest-timeout arms a timer around a test's whole protocol (its
``pytest_runtest_protocol`` wrapper) or around its call alone
(``pytest_runtest_call``, with ``func_only``), through its own hooks
``pytest_timeout_set_timer`` and ``pytest_timeout_cancel_timer``, which it
offers for other ways of timing out. Its ways, a process-wide ``SIGALRM`` or
a thread that dumps stacks and ends the process, cannot time out one test of
many on one loop. For a concurrent test, :class:`ConcurrentTimeouts`
answers those hooks with the runner's own limits (:mod:`..timeouts`), which
interrupt just that test where it waits: it fails with pytest-timeout's
message, the traceback ends at the ``await`` it was stuck on, and its
teardown runs. The runner applies the whole-protocol limit itself
(:func:`whole_test_timeout`), since concurrent tests do not go through
``pytest_runtest_protocol``.

Internals relied on: ``pytest_timeout._get_item_settings(item)``, which
returns the settings for an item from its marker, the command line, the ini
file and the environment (pytest-timeout 2.x).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from ..timeouts import TestTimeouts

__all__ = ["ConcurrentTimeouts", "timed_out_message", "whole_test_timeout"]

_pytest_timeout: Any
try:
    _pytest_timeout = importlib.import_module("pytest_timeout")
except ImportError:  # pragma: no cover - pytest-timeout is not installed
    _pytest_timeout = None


def whole_test_timeout(item: pytest.Item) -> float | None:
    """The seconds pytest-timeout allows ``item`` from the start of its
    setup to the end of its teardown, if it sets a limit on all of it."""
    if _pytest_timeout is None or not item.config.pluginmanager.has_plugin("timeout"):
        return None
    settings = _pytest_timeout._get_item_settings(item)
    if settings.timeout is None or settings.timeout <= 0 or settings.func_only:
        return None
    return float(settings.timeout)


def timed_out_message(seconds: float) -> str:
    """pytest-timeout's failure message for a limit of ``seconds``."""
    return f"Timeout (>{seconds}s) from pytest-timeout."


class ConcurrentTimeouts:
    """pytest-timeout's timer hooks, answered by the runner's limits for
    concurrent tests (and left to pytest-timeout for the others)."""

    def __init__(self) -> None:
        self.limits: TestTimeouts | None = None
        """The limits of the tests in flight, while the runner runs some."""

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        """Limit the call of a concurrent ``item``."""
        seconds = float(settings.timeout)
        if self.limits is None or not self.limits.limit_call(
            item, seconds, timed_out_message(seconds)
        ):
            return None
        return True

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_cancel_timer(self, item: pytest.Item) -> bool | None:
        """Cancel the limit of a concurrent ``item``'s call."""
        if self.limits is None or not self.limits.unlimit_call(item):
            return None
        return True
