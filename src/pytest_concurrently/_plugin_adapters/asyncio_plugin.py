"""pytest-asyncio's tests, run on the session loop.

pytest-asyncio collects an ``async def`` test it runs (marked ``asyncio``, or
any in its auto mode) as a ``PytestAsyncioFunction``: its ``setup`` adds a
runner fixture for the test's loop scope, and its ``runtest`` runs the body
on that runner's loop. From 1.1 its ``pytest_fixture_setup`` wrapper runs
async fixtures on such a runner when a test asks for them; before 1.1 it
replaced fixture functions with wrappers at collection, so their original
functions and arguments are gone by the time a test runs, and tests are
left to it.

A claimed test keeps its class, so pytest-asyncio's own checks see the same
item, but its ``setup`` and ``runtest`` are pytest's plain ``Function`` ones:
no runner fixture, no loop of its own, and the body goes through
``pytest_pyfunc_call``, where this plugin runs it.

Internals relied on: ``pytest_asyncio.plugin.PytestAsyncioFunction`` and its
subclass ``AsyncGenerator``, the
``_asyncio_loop_factory`` parameter a loop factory adds, and the
``event_loop_policy`` fixture's home module (1.1 to 1.5).
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

import pytest

__all__ = ["claim", "fixture_problem", "take_over"]


def _registered_plugin(config: pytest.Config) -> Any:
    """pytest-asyncio's plugin module, when pytest loaded it.

    Looked up rather than imported: importing it takes longer than a hundred
    trivial tests, for runs where it is installed but disabled.
    """
    plugin = config.pluginmanager.get_plugin("asyncio")
    return plugin if hasattr(plugin, "PytestAsyncioFunction") else None


@functools.cache
def _version() -> tuple[int, ...]:
    # Asked for every test it would run: reading the installed metadata takes
    # about half a millisecond, more than the rest of a trivial test's claim.
    try:
        text = metadata.version("pytest-asyncio")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return (0,)
    numbers = []
    for part in text.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


#: The first release that wraps async fixtures when a test asks for them.
_FIRST_SUPPORTED = (1, 1)


def claim(item: pytest.Item) -> tuple[bool, str | None]:
    """Whether pytest-asyncio would run ``item``, and why it must stay with
    pytest-asyncio (None when this plugin can run it instead)."""
    plugin = _registered_plugin(item.config)
    if plugin is None or not isinstance(item, plugin.PytestAsyncioFunction):
        return False, None
    version = _version()
    if version < _FIRST_SUPPORTED:
        return True, (
            f"pytest-asyncio {'.'.join(map(str, version))} sets async fixtures up on its "
            "own loops; pytest-asyncio 1.1 or later lets them run concurrently"
        )
    if isinstance(item, plugin.AsyncGenerator):
        return True, "it is an async generator, which pytest-asyncio runs itself"
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "_asyncio_loop_factory" in callspec.params:
        return True, "it runs on a pytest-asyncio loop factory's loop"
    definitions = item._fixtureinfo.name2fixturedefs.get("event_loop_policy")
    if definitions and definitions[-1].func.__module__ != plugin.__name__:
        return True, "it overrides the event_loop_policy fixture"
    return True, None


def fixture_problem(function: object) -> str | None:
    """Why a fixture made with ``@pytest_asyncio.fixture`` cannot run on the
    session loop: only before 1.1, which wraps it for its own loop when it
    collects it."""
    if getattr(function, "_force_asyncio_fixture", False) and _version() < _FIRST_SUPPORTED:
        return (
            "made with @pytest_asyncio.fixture, which pytest-asyncio before 1.1 runs "
            "on its own loop, not inside pytest-concurrently's"
        )
    return None


_taken_over_classes: dict[type[Any], type[Any]] = {}


def take_over(item: pytest.Item) -> None:
    """Give ``item`` pytest's plain ``setup`` and ``runtest``."""
    cls = type(item)
    taken = _taken_over_classes.get(cls)
    if taken is None:
        taken = type(
            cls.__name__,
            (cls,),
            {
                "__module__": __name__,
                "__doc__": cls.__doc__,
                "setup": pytest.Function.setup,
                "runtest": pytest.Function.runtest,
            },
        )
        _taken_over_classes[cls] = taken
    item.__class__ = taken
