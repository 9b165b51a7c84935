"""The fixture names a function asks for with ``getfixturevalue``, read from
its source, so the plan of shared values counts those requests (see
:mod:`pytest_concurrently._pytest_adapter.dynamic_requests`; the
differential reproduction ``fixture-asks-by-name-for-a-replaced-value``
runs a whole session that needs them)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from pytest_concurrently._pytest_adapter.dynamic_requests import literal_requests


def _asks_twice(request: Any) -> object:
    first = request.getfixturevalue("db")
    if first:
        return request.getfixturevalue("cache"), request.getfixturevalue("db")
    return first


async def _async_asks(request: Any) -> object:
    return request.getfixturevalue("client")


def _asks_by_variable(request: Any, name: str) -> object:
    return request.getfixturevalue(name)


def _asks_nothing(request: Any) -> object:
    return request.node


def test_literal_names_each_once() -> None:
    assert set(literal_requests(_asks_twice)) == {"db", "cache"}
    assert len(literal_requests(_asks_twice)) == 2


def test_async_functions_and_wrappers_are_read() -> None:
    @functools.wraps(_async_asks)
    def wrapper(*args: Any, **kwargs: Any) -> object:
        return _async_asks(*args, **kwargs)

    assert literal_requests(_async_asks) == ("client",)
    assert literal_requests(wrapper) == ("client",)


def test_methods_are_read() -> None:
    class Suite:
        def fixture(self, request: Any) -> object:
            return request.getfixturevalue("server")

    assert literal_requests(Suite.fixture) == ("server",)
    assert literal_requests(Suite().fixture) == ("server",)


@pytest.mark.parametrize(
    "function",
    [_asks_by_variable, _asks_nothing, len, None, functools.partial(_asks_nothing, None)],
    ids=["name-in-a-variable", "no-request", "builtin", "none", "partial"],
)
def test_nothing_to_plan(function: object) -> None:
    assert literal_requests(function) == ()


def test_function_without_source() -> None:
    namespace: dict[str, Any] = {}
    exec("def made(request):\n    return request.getfixturevalue('db')\n", namespace)
    assert literal_requests(namespace["made"]) == ()
