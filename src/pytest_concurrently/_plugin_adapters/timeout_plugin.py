"""pytest-timeout's limits for concurrent tests.

pytest-timeout arms a timer around a test's whole protocol (its
``pytest_runtest_protocol`` wrapper) or around its call alone
(``pytest_runtest_call``, with ``func_only``), through its own hooks
``pytest_timeout_set_timer`` and ``pytest_timeout_cancel_timer``, which it
offers for other ways of timing out. Its ways, a process-wide ``SIGALRM`` or
a thread that dumps stacks and ends the process, cannot time out one test of
many on one loop. For a concurrent test, :class:`ConcurrentTimeouts`
answers those hooks with a timer on the session loop that interrupts just
that test where it waits: it fails with pytest-timeout's message, the
traceback ends at the ``await`` it was stuck on, and its teardown runs. The
runner arms the whole-protocol timer itself (:func:`whole_test_timeout`),
since concurrent tests do not go through ``pytest_runtest_protocol``.

Internals relied on: ``pytest_timeout._get_item_settings(item)``, which
returns the settings for an item from its marker, the command line, the ini
file and the environment (pytest-timeout 2.x).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import Callable
from typing import Any

import pytest

from .. import bridge
from ..current import running_test

__all__ = ["ConcurrentTimeouts", "arm", "disarm", "pause", "resume", "whole_test_timeout"]

_pytest_timeout: Any
try:
    _pytest_timeout = importlib.import_module("pytest_timeout")
except ImportError:  # pragma: no cover - pytest-timeout is not installed
    _pytest_timeout = None

_timer_key = pytest.StashKey[asyncio.TimerHandle]()
_callback_key = pytest.StashKey[Any]()
_left_key = pytest.StashKey[float]()
_loop_key = pytest.StashKey[asyncio.AbstractEventLoop]()


def whole_test_timeout(item: pytest.Item) -> float | None:
    """The seconds pytest-timeout allows ``item`` from the start of its
    setup to the end of its teardown, if it sets a limit on all of it."""
    if _pytest_timeout is None or not item.config.pluginmanager.has_plugin("timeout"):
        return None
    settings = _pytest_timeout._get_item_settings(item)
    if settings.timeout is None or settings.timeout <= 0 or settings.func_only:
        return None
    return float(settings.timeout)


def arm(
    item: pytest.Item,
    task: asyncio.Task[Any],
    seconds: float,
    failure: Callable[[], BaseException] | None = None,
) -> None:
    """Fail ``item``, running in ``task``, if it is still running after
    ``seconds``, unless :func:`disarm` comes first.

    :param failure: makes the exception the test fails with where it waits;
        by default pytest-timeout's.
    """
    if failure is None:
        failure = functools.partial(_timed_out, seconds)
    callback = functools.partial(bridge.interrupt, task, failure)
    item.stash[_callback_key] = callback
    # Kept, since the bridge hides the running loop from pytest's code.
    item.stash[_loop_key] = task.get_loop()
    item.stash[_timer_key] = task.get_loop().call_later(seconds, callback)


def pause(item: pytest.Item) -> None:
    """Stop ``item``'s timer, if armed, keeping the time it has left: time
    spent waiting for a resource does not count against its limit."""
    handle = item.stash.get(_timer_key, None)
    if handle is None or handle.cancelled():
        return
    handle.cancel()
    item.stash[_left_key] = max(handle.when() - item.stash[_loop_key].time(), 0.0)


def resume(item: pytest.Item) -> None:
    """Run ``item``'s timer again after :func:`pause`."""
    left = item.stash.get(_left_key, None)
    if left is None:
        return
    del item.stash[_left_key]
    callback = item.stash[_callback_key]
    item.stash[_timer_key] = item.stash[_loop_key].call_later(left, callback)


def disarm(item: pytest.Item) -> bool:
    """Cancel the timer :func:`arm` set for ``item``; whether there was one."""
    if _timer_key not in item.stash:
        return False
    item.stash[_timer_key].cancel()
    del item.stash[_timer_key]
    if _left_key in item.stash:
        del item.stash[_left_key]
    return True


def _timed_out(seconds: float) -> BaseException:
    return pytest.fail.Exception(f"Timeout (>{seconds}s) from pytest-timeout.")


class ConcurrentTimeouts:
    """pytest-timeout's timer hooks, answered on the session loop for
    concurrent tests (and left to pytest-timeout for the others)."""

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        """Arm a loop timer for a concurrent ``item``."""
        current = running_test.get()
        if current is None or current.task is None or current.item is not item:
            return None
        arm(item, current.task, float(settings.timeout))
        return True

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_cancel_timer(self, item: pytest.Item) -> bool | None:
        """Cancel the loop timer of a concurrent ``item``."""
        return True if disarm(item) else None
