"""Shared fixtures set up and torn down by an owner task of their own.

A fixture wider than function scope is set up by pytest in whichever test
asks for it first and torn down in whichever test's teardown ends its scope.
Here both happen in an :class:`..ownership.OwnerTask` made for the instance:
``pytest_fixture_setup`` hands the fixture function to the owner and waits,
and the first finalizer the instance runs (pytest pops finalizers last in,
first out, and this one is registered last) hands every remaining finalizer
of the instance (the fixture's own teardown, ``request.addfinalizer``
callbacks, ``pytest_fixture_post_finalizer``) to the same owner.
Finalizers of dependent fixtures are registered after it, so they still run
first, each in its own owner.

Context variables the fixture function sets stay in the owner's context, so
a ``ContextVar.reset`` in its teardown works; the values are also handed to
every test that receives the instance (see
:func:`.fixtures.record_context_changes`), as pytest's one context shows
them to the tests that come after the fixture's setup.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from typing import Any

import pytest
from _pytest.fixtures import SubRequest, call_fixture_func, resolve_fixture_function

from .. import bridge
from ..ownership import OwnerTask
from .async_fixtures import HANDLED, cache_outcome, is_async_fixture, synchronous_fixture_function
from .fixtures import (
    AnyFixtureDef,
    apply_context_changes,
    forget_context_changes,
    mark_pending_setup,
    record_context_changes,
)
from .setupstate import raise_collected, run_finalizers

__all__ = ["is_shared_request", "setup_in_owner"]


def is_shared_request(request: SubRequest) -> bool:
    """Whether the fixture is requested at a scope wider than the test: its
    value is cached on a collector (a class-scoped fixture used outside a
    class lives on the test itself)."""
    return request.node is not request._pyfuncitem


def setup_in_owner(
    definition: AnyFixtureDef,
    request: SubRequest,
    context: contextvars.Context,
    *,
    share_context: bool = True,
) -> object:
    """pytest's ``pytest_fixture_setup`` for ``definition``, with the fixture
    function (sync or ``async def``) run in a new owner task started from
    ``context``.

    :param share_context: hand the context variables the setup sets to the
        tests that receive the instance (false for the wrappers another
        plugin puts around its fixtures, which set that plugin's own)."""
    kwargs = {name: request.getfixturevalue(name) for name in definition.argnames}
    func = resolve_fixture_function(definition, request)
    if is_async_fixture(definition):
        func = synchronous_fixture_function(func)
    owner = OwnerTask(
        f"pytest-concurrently: owner of fixture {definition.argname!r} of {request.node.nodeid}",
        context,
    )
    pending = asyncio.Event()
    mark_pending_setup(definition, pending)
    result = bridge.wait_for(
        owner.run(_set_up, definition, owner, func, request, kwargs, pending, share_context)
    )
    apply_context_changes(definition)
    return HANDLED if result is None else result


def _set_up(
    definition: AnyFixtureDef,
    owner: OwnerTask,
    func: Callable[..., Any],
    request: SubRequest,
    kwargs: dict[str, Any],
    pending: asyncio.Event,
    share_context: bool,
) -> Any:
    cache_key = definition.cache_key(request)
    before = contextvars.copy_context()
    try:
        result = call_fixture_func(func, request, kwargs)
    except BaseException as exc:
        if isinstance(exc, pytest.skip.Exception):
            # Report the skip at the test, not inside the fixture.
            exc._use_item_location = True
        # Failed or interrupted: every user gets the same exception.
        cache_outcome(definition, cache_key, None, exc)
        raise
    else:
        if share_context:
            record_context_changes(definition, before, contextvars.copy_context())
        cache_outcome(definition, cache_key, result, None)
        return result
    finally:
        definition.addfinalizer(functools.partial(_tear_down, definition, owner))
        pending.set()


def _tear_down(definition: AnyFixtureDef, owner: OwnerTask) -> None:
    forget_context_changes(definition)
    remaining = list(definition._finalizers)
    definition._finalizers.clear()
    try:
        if remaining:
            bridge.wait_for(owner.run(_run_finalizers, remaining))
    finally:
        owner.close()


def _run_finalizers(finalizers: list[Callable[[], object]]) -> None:
    # As FixtureDef.finish: every finalizer runs, whatever the others raise.
    exceptions = run_finalizers(finalizers, catching=BaseException)
    raise_collected(exceptions, "errors while tearing down a fixture")
