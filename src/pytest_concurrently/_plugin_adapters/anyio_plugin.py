"""anyio's pytest plugin's tests, run on the session loop.

anyio runs an ``async def`` test whose fixtures include ``anyio_backend``
(its marker and its auto mode add that fixture), on a test runner for the
backend the fixture names, and wraps the async fixtures such a test asks for
to run on that runner too. A test on the plain ``"asyncio"`` backend can run
on the session loop instead; a trio test, or one whose backend options ask
for something the session loop does not have (``use_uvloop``, a debug loop),
stays with anyio and runs alone.

The backend is read from the test's parameters, or from the
``anyio_backend`` fixture that serves it: anyio's own default is
``"asyncio"``, and a plain function of no arguments (``return "asyncio"``,
the usual override) is called once to see what it returns. Any other
definition is known only when it runs, and its tests stay with anyio.

Internals relied on: the default ``anyio_backend`` fixture's home module,
``anyio.pytest_plugin`` (anyio 4.x).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

__all__ = ["claim"]

_DEFAULT_HOME = "anyio.pytest_plugin"
_UNKNOWN = object()
_returned_by: dict[object, object] = {}


def claim(item: pytest.Item) -> tuple[bool, str | None]:
    """Whether anyio would run ``item``, and why it must stay with anyio
    (None when this plugin can run it instead)."""
    if not item.config.pluginmanager.has_plugin("anyio"):
        return False, None
    if "anyio_backend" not in getattr(item, "fixturenames", ()):
        return False, None
    backend = _backend(item)
    if backend is _UNKNOWN:
        return True, "its anyio_backend fixture's value is known only when it runs"
    options: dict[str, object]
    if isinstance(backend, str):
        name, options = backend, {}
    elif isinstance(backend, tuple) and len(backend) == 2 and isinstance(backend[1], dict):
        name, options = backend[0], backend[1]
    else:
        return True, "its anyio_backend value is neither a name nor a (name, options) pair"
    if name != "asyncio":
        return True, f"it runs on anyio's {name} backend, not on asyncio"
    if options:
        return True, f"its anyio backend options {options!r} need a loop of their own"
    return True, None


def _backend(item: pytest.Item) -> object:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "anyio_backend" in callspec.params:
        return callspec.params["anyio_backend"]
    definitions = item._fixtureinfo.name2fixturedefs.get("anyio_backend")  # type: ignore[attr-defined]
    if not definitions:
        return _UNKNOWN
    definition = definitions[-1]
    func: Any = definition.func
    if getattr(func, "__module__", None) == _DEFAULT_HOME:
        return "asyncio"
    if definition.params is not None or definition.argnames:
        return _UNKNOWN
    if not inspect.isfunction(func) or inspect.isgeneratorfunction(func):
        return _UNKNOWN
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        return _UNKNOWN
    if definition not in _returned_by:
        try:
            _returned_by[definition] = func()
        except Exception:
            _returned_by[definition] = _UNKNOWN
    return _returned_by[definition]
