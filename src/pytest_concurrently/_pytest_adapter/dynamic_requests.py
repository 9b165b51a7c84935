"""The fixtures a function asks for by name with ``getfixturevalue``.

pytest plans a test's fixtures from the arguments of the test and of its
fixtures; a value asked for with ``request.getfixturevalue("name")`` is
made in the middle of a setup, and nothing sees it coming. When the name is
written out as a string literal, the source says it in advance:
:func:`literal_requests` finds such calls, so the plan of shared values
(:mod:`.lives`) can count the test among that fixture's users, in pytest's
order, as if it were an argument.

A call in a branch that does not run still counts. That only makes the
test wait for the value's turn as a user would; it never makes the value.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap

__all__ = ["literal_requests"]

_METHOD = "getfixturevalue"


def literal_requests(function: object) -> tuple[str, ...]:
    """The names ``function`` passes as a string literal to a
    ``getfixturevalue`` call, each once; empty when its source is not
    available."""
    function = inspect.unwrap(function)  # type: ignore[arg-type]
    code = getattr(function, "__code__", None)
    # An attribute the code uses is among its names: most fixtures make no
    # such call, and their source is never read.
    if code is None or _METHOD not in code.co_names:
        return ()
    return _literal_requests_in(code)


@functools.cache
def _literal_requests_in(code: object) -> tuple[str, ...]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(code)))  # type: ignore[arg-type]
    except (OSError, TypeError, SyntaxError, ValueError):
        return ()
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == _METHOD
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names[node.args[0].value] = None
    return tuple(names)
