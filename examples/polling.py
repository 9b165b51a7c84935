"""The "poll until the system shows the effect" helper used by the system tests.

It is :func:`pytest_concurrently.eventually` with this suite's defaults: the
order service answers within a few seconds, and polling every tenth of a
second keeps the tests quick. It lives in its own module rather than in
``conftest.py`` because pytest loads conftest files itself and they are not
meant to be imported by tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pytest_concurrently import eventually

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
        AssertionError: if ``timeout`` seconds pass first; the message says
            how many attempts were made and what the last one returned,
            which is usually what explains the failure.
    """

    async def check() -> T:
        value = await predicate()
        # A check that returns None passes eventually(); here None means
        # "not yet", as any falsy value does.
        if not value:
            raise AssertionError(f"not yet: the predicate returned {value!r}")
        return value

    return await eventually(check, timeout=timeout, interval=interval)
