"""Hypothesis's ``@given`` on ``async def`` tests.

``@given`` turns a test into a plain function that calls the test's own
function, ``.hypothesis.inner_test``, once per example. For an ``async
def`` test, each call returns a coroutine, which hypothesis refuses; here
the inner test is replaced, for the length of the call, by a plain function
that runs the coroutine through the bridge, so every example's awaits
yield to the other tests in flight.

Hypothesis keeps the example being built in thread-local state, so two
``@given`` tests must not interleave on one thread: the runner never lets
two such tests overlap (see :func:`is_hypothesis_test`).

Relies on ``HypothesisHandle.inner_test``, which hypothesis documents as
replaceable for this purpose.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import bridge

__all__ = ["async_inner_test", "examples_through_the_bridge"]


def async_inner_test(function: object) -> Callable[..., Any] | None:
    """The ``async def`` function under ``@given``, if ``function`` is one."""
    handle = getattr(function, "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    return inner if inspect.iscoroutinefunction(inner) else None


@contextmanager
def examples_through_the_bridge(function: Any) -> Iterator[None]:
    """While the block runs, each example of the ``@given`` test
    ``function`` awaits its coroutine through the bridge."""
    handle = function.hypothesis
    inner = handle.inner_test

    @functools.wraps(inner)
    def run_example(*args: Any, **kwargs: Any) -> None:
        __tracebackhide__ = True
        bridge.wait_for(inner(*args, **kwargs))

    handle.inner_test = run_example
    try:
        yield
    finally:
        handle.inner_test = inner
