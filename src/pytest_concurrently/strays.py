"""Tasks a test started and left running.

A task that outlives the test that started it may fail a later test, or
write into a later test's output. :class:`StrayTasks` notes, through the
loop's task factory, which test (:data:`.current.task_owner`) started each
task; when a test's teardown is over, the tasks it left running are
cancelled (``concurrently_stray_tasks = cancel``, the default) and named in
a :class:`StrayTaskWarning` on that test, or only named (``warn``). Tasks
started by a shared fixture belong to the fixture's owner, not to a test.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Coroutine, Hashable
from pathlib import Path
from typing import Any

import pytest

from . import bridge
from .current import task_owner
from .stacks import awaiting_places, located

__all__ = ["StrayTaskWarning", "StrayTasks", "current", "install"]

# How long cancelled tasks get to finish before the test's teardown ends.
_CANCEL_WAIT = 1.0


class StrayTaskWarning(pytest.PytestWarning):
    """A test left a task it started running when it ended."""

    __module__ = "pytest_concurrently"


class StrayTasks:
    """The tasks started by each test on one loop.

    :param cancel: whether to cancel what a test leaves running, or only
        warn about it.
    :param rootpath: paths under it are shown relative to it.
    """

    def __init__(self, *, cancel: bool, rootpath: Path) -> None:
        self._cancel = cancel
        self._rootpath = rootpath
        self._started: dict[Hashable, list[asyncio.Task[Any]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Note the tasks started on ``loop`` from now on (again a no-op)."""
        if self._loop is loop:
            return
        self.unwatch()
        self._loop = loop
        self._previous = loop.get_task_factory()
        loop.set_task_factory(self._make_task)  # type: ignore[arg-type]

    def unwatch(self) -> None:
        """Give the loop its task factory back."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.set_task_factory(self._previous)
        self._loop = None
        self._previous = None

    def _make_task(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        if self._previous is not None:
            task = self._previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        context = kwargs.get("context")
        owner = context.get(task_owner) if context is not None else task_owner.get()
        if owner is not None:
            self._started.setdefault(owner, []).append(task)
        return task  # type: ignore[no-any-return]

    def settle(self, item: pytest.Item, *, warn: bool) -> None:
        """``item``'s teardown is over: deal with the tasks it left running."""
        started = self._started.pop(item, None)
        if not started:
            return
        # The task a test that runs alone runs in is created in its context.
        running = asyncio.current_task(self._loop) if self._loop is not None else None
        left = [task for task in started if not task.done() and task is not running]
        if not left:
            return
        named = [self._name(task) for task in left]
        if self._cancel:
            for task in left:
                task.cancel()
            if bridge.can_wait():
                bridge.wait_for(asyncio.wait(left, timeout=_CANCEL_WAIT))
        if not warn:
            return
        count = len(left)
        what = "a task" if count == 1 else f"{count} tasks"
        done = ", which were cancelled" if self._cancel else ""
        if self._cancel and count == 1:
            done = ", which was cancelled"
        message = f"{item.nodeid} left {what} running when it ended{done}: " + "; ".join(named)
        path, lineno, _ = item.location
        warnings.warn_explicit(
            StrayTaskWarning(message),
            StrayTaskWarning,
            str(self._rootpath / path),
            (lineno or 0) + 1,
        )

    def _name(self, task: asyncio.Task[Any]) -> str:
        coro = task.get_coro()
        name = getattr(coro, "__qualname__", None) or repr(coro)
        return f"{name}(){located(awaiting_places(task), self._rootpath)}"


_current: StrayTasks | None = None


def install(strays: StrayTasks | None) -> None:
    """Make ``strays`` the one :func:`current` returns (None: no run)."""
    global _current
    _current = strays


def current() -> StrayTasks | None:
    """The stray-task tracker of the run in progress, if any."""
    return _current
