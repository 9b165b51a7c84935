"""``async def`` fixtures, set up through pytest's own fixture call path.

pytest calls fixture functions from ``pytest_fixture_setup``, which resolves
the function (``resolve_fixture_function``), calls it (``call_fixture_func``,
which also registers a generator's teardown) and stores the outcome in
``FixtureDef.cached_result``. :func:`setup_async_fixture` does the same with a
synchronous stand-in for the async function, so values, ``yield`` teardown and
errors behave as for a plain fixture.

pytest versions: from 8.3 the error slot of ``cached_result`` holds
``(exception, traceback)``, 8.2 the exception alone; :func:`cache_outcome`
writes the form of the running pytest. pytest 9 fails an ``async def``
fixture that no hook handled; 8.2 calls it and hands the test the coroutine.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from typing import Any

import pytest
from _pytest.fixtures import SubRequest, call_fixture_func, resolve_fixture_function
from _pytest.outcomes import TEST_OUTCOME

from .. import bridge
from .fixtures import AnyFixtureDef

__all__ = [
    "HANDLED",
    "cache_outcome",
    "has_async_fixtures",
    "is_async_fixture",
    "setup_async_fixture",
    "synchronous_fixture_function",
]

# pytest 8.3 started keeping the traceback beside a cached setup error.
_ERROR_WITH_TRACEBACK = pytest.version_tuple[:2] >= (8, 3)


def cache_outcome(
    definition: AnyFixtureDef, cache_key: object, result: object, error: BaseException | None
) -> None:
    """Store a setup's outcome in ``cached_result`` as pytest would: later
    requests with the same cache key get the value, or the same error."""
    if error is None:
        definition.cached_result = (result, cache_key, None)
    elif _ERROR_WITH_TRACEBACK:
        definition.cached_result = (None, cache_key, (error, error.__traceback__))
    else:  # pragma: no cover - pytest 8.2 only
        definition.cached_result = (None, cache_key, error)  # type: ignore[assignment]


def is_async_fixture(definition: AnyFixtureDef) -> bool:
    """Whether the fixture function is ``async def`` (coroutine or generator)."""
    func = definition.func
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def has_async_fixtures(item: pytest.Item) -> bool:
    """Whether ``item`` statically requests an ``async def`` fixture."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        is_async_fixture(definition)
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


#: Returned by :func:`setup_async_fixture` for a fixture whose value is None,
#: because ``pytest_fixture_setup`` is a first-result hook and None would mean
#: "not handled". pytest reads the value from ``cached_result``, not from the
#: hook's return value.
HANDLED = object()


def setup_async_fixture(definition: AnyFixtureDef, request: SubRequest) -> object:
    """Set up an ``async def`` fixture the way pytest sets up a plain one.

    The coroutine (or async generator) runs through :func:`bridge.wait_for`:
    in the test's own task when the test is concurrent, on the idle loop
    otherwise.
    """
    kwargs = {name: request.getfixturevalue(name) for name in definition.argnames}
    func = resolve_fixture_function(definition, request)
    cache_key = definition.cache_key(request)
    try:
        result = call_fixture_func(synchronous_fixture_function(func), request, kwargs)
    except TEST_OUTCOME as exc:
        if isinstance(exc, pytest.skip.Exception):
            # Report the skip at the test, not inside the fixture.
            exc._use_item_location = True
        cache_outcome(definition, cache_key, None, exc)
        raise
    cache_outcome(definition, cache_key, result, None)
    return HANDLED if result is None else result


def synchronous_fixture_function(func: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function (or generator function, for an async generator) that
    drives ``func`` through the bridge, so pytest can call it like a sync
    fixture: values, ``yield`` teardown and errors behave the same."""
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        def drive_generator(**kwargs: Any) -> Generator[Any, None, None]:
            agen: AsyncGenerator[Any, None] = func(**kwargs)
            try:
                value = bridge.wait_for(agen.__anext__())
            except StopAsyncIteration:
                raise ValueError(f"{func.__name__} did not yield a value") from None
            yield value
            try:
                bridge.wait_for(agen.__anext__())
            except StopAsyncIteration:
                return
            # pytest's own teardown reports a generator that goes on.
            yield None

        return drive_generator

    @functools.wraps(func)
    def drive_coroutine(**kwargs: Any) -> Any:
        coroutine: Coroutine[Any, Any, Any] = func(**kwargs)
        return bridge.wait_for(coroutine)

    return drive_coroutine
