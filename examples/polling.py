"""The "poll until the system shows the effect" helper used by the system tests.

It lives in its own module rather than in ``conftest.py`` because pytest
loads conftest files itself and they are not meant to be imported by tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


async def wait_until(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float = 5.0,
    interval: float = 0.1,
) -> T:
    """Await ``predicate()`` every ``interval`` seconds until it returns a truthy value.

    Returns that value, so a test can poll for an object and then go on to
    check it. While a test sleeps between polls the event loop is free to run
    other tests, which is what makes a suite of such tests fast when they run
    concurrently.

    Raises:
        TimeoutError: if ``timeout`` seconds pass first; the message shows the
            last value seen, which is usually what explains the failure.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"condition not met within {timeout} s; last value: {value!r}")
        await asyncio.sleep(min(interval, remaining))
