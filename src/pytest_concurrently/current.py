"""Which test the running code belongs to.

asyncio copies the context into every task, and the bridge shares it with the
greenlet that runs pytest's machinery, so a context variable set when a test
starts names that test in its fixtures, its body and anything they spawn.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass

import pytest

__all__ = ["RunningTest", "running_test", "task_owner"]


@dataclass(frozen=True)
class RunningTest:
    """The test a piece of code runs for.

    :param item: the pytest item.
    :param concurrent: whether other tests may be in flight beside it, in which
        case its output and log records are routed to it by context.
    :param task: the task a concurrent test runs in.
    """

    item: pytest.Item
    concurrent: bool
    task: asyncio.Task[None] | None = None


running_test: ContextVar[RunningTest | None] = ContextVar(
    "pytest_concurrently_running_test", default=None
)

task_owner: ContextVar[pytest.Item | None] = ContextVar(
    "pytest_concurrently_task_owner", default=None
)
"""The test that owns the tasks started here. Unlike :data:`running_test`,
which a shared fixture's owner takes on from the test it works for (so its
output goes to that test), this is unset in owners: what a shared fixture
starts belongs to the fixture, not to a test."""
