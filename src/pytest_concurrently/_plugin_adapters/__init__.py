"""Tests written for pytest-asyncio or anyio's pytest plugin, run here.

Both plugins run an ``async def`` test on an event loop of their own, made
for the test (or for its module, class or session), and wrap its async
fixtures to run there too. A suite written for them can run concurrently on
the session loop instead, with the same outcomes, as long as nothing in it
needs a loop of its own. This package decides, per test, whether that is so
(:func:`claim`), and takes a claimed test away from its plugin
(:func:`take_over`, :func:`hiding_fixture_from_plugins`). It is the only
place that knows those plugins' internals; each module's docstring names the
ones it relies on and the versions it was written against.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from . import anyio_plugin, asyncio_plugin
from . import timeout_plugin as timeouts
from .hypothesis_tests import async_inner_test, examples_through_the_bridge

__all__ = [
    "Claim",
    "async_inner_test",
    "claim",
    "examples_through_the_bridge",
    "fixture_problem",
    "hiding_fixture_from_plugins",
    "reveal_fixture",
    "take_over",
    "timeouts",
]


@dataclass(frozen=True)
class Claim:
    """Which plugin would run an async test, and whether it can run here.

    :param owner: ``"pytest-asyncio"`` or ``"anyio"``.
    :param alone_because: why the test must stay with its plugin and run
        alone, in words for the user; None when it can run concurrently.
    """

    owner: str
    alone_because: str | None = None


def claim(item: pytest.Item) -> Claim | None:
    """The plugin that would run ``item``'s async body, if another plugin
    would, and whether this plugin can run it instead."""
    for owner, plugin_claim in (
        ("pytest-asyncio", asyncio_plugin.claim),
        ("anyio", anyio_plugin.claim),
    ):
        would_run, alone_because = plugin_claim(item)
        if would_run:
            return Claim(owner, alone_because)
    return None


def fixture_problem(function: object) -> str | None:
    """Why a fixture function cannot run on the session loop, in words that
    follow its name; None when it can."""
    return asyncio_plugin.fixture_problem(function)


def take_over(item: pytest.Item, owner: str) -> None:
    """Make ``item``, claimed from ``owner``, a test this plugin runs: its
    plugin no longer makes a loop for it or runs its body."""
    if owner == "pytest-asyncio":
        asyncio_plugin.take_over(item)
    # anyio runs a test whose arguments include ``anyio_backend``; the
    # runner's own pytest_pyfunc_call is called before anyio's.


class _HiddenFixtureFunction:
    """Stands in for an ``async def`` fixture function while the fixture
    plugins' ``pytest_fixture_setup`` wrappers look at it: they wrap only
    async functions, and this is not one."""

    __slots__ = ("original",)

    def __init__(self, original: Any) -> None:
        self.original = original

    def __call__(self, *args: object, **kwargs: object) -> object:  # pragma: no cover
        raise RuntimeError("pytest-concurrently: a hidden fixture function was called")


@contextmanager
def hiding_fixture_from_plugins(definition: Any) -> Iterator[None]:
    """For the block, hide ``definition``'s ``async def`` function from
    pytest-asyncio's and anyio's fixture wrappers; :func:`reveal_fixture`
    shows it again to whoever sets the fixture up inside the block."""
    original = definition.func
    if not (inspect.iscoroutinefunction(original) or inspect.isasyncgenfunction(original)):
        yield
        return
    definition.func = _HiddenFixtureFunction(original)
    try:
        yield
    finally:
        definition.func = original


def reveal_fixture(definition: Any) -> None:
    """Undo :func:`hiding_fixture_from_plugins` for ``definition`` now."""
    func = definition.func
    if isinstance(func, _HiddenFixtureFunction):
        definition.func = func.original
