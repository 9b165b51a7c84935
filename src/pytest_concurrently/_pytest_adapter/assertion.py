"""Assertion explanations for concurrent tests.

Asserts rewritten by pytest call module-level hooks in
``_pytest.assertion.util`` (``_reprcompare`` to explain a failed comparison,
``_assertion_pass`` for ``pytest_assertion_pass``, with ``_config``), which
pytest points at the running test for the length of its protocol.
:func:`routed_assertion_hooks` points them, for the whole concurrent phase, at
a dispatcher that asks the hooks of whichever test is running, and truncates
the explanation as pytest would.

pytest versions: pytest 9 truncates explanations by the config
(``truncate.materialize_with_truncation``); pytest 8 by the item
(``truncate.truncate_if_required``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from _pytest.assertion import truncate as assertion_truncate
from _pytest.assertion import util as assertion_util

from ..current import running_test

__all__ = ["routed_assertion_hooks"]


@contextmanager
def routed_assertion_hooks(config: pytest.Config) -> Iterator[None]:
    """While the block runs, rewritten asserts explain comparisons and report
    passed assertions through the hooks of the test that is running."""
    # Rewritten asserts call module-level hooks that pytest points at the
    # running test for the length of its protocol. One dispatcher for the
    # phase asks the hooks of whichever test is running.
    saved = assertion_util._reprcompare, assertion_util._assertion_pass, assertion_util._config

    def current_item() -> pytest.Item | None:
        current = running_test.get()
        return None if current is None else current.item

    def explain_comparison(op: str, left: object, right: object) -> str | None:
        item = current_item()
        ihook = config.hook if item is None else item.ihook
        for explanation in ihook.pytest_assertrepr_compare(
            config=config, op=op, left=left, right=right
        ):
            if explanation:
                lines = _truncated(explanation, item, config)
                if lines:
                    text = "\n~".join(line.replace("\n", "\\n") for line in lines)
                    if config.getvalue("assertmode") == "rewrite":
                        text = text.replace("%", "%%")
                    return text
        return None

    def report_passed_assertion(lineno: int, orig: str, expl: str) -> None:
        item = current_item()
        if item is not None:
            item.ihook.pytest_assertion_pass(item=item, lineno=lineno, orig=orig, expl=expl)

    assertion_util._reprcompare = explain_comparison
    assertion_util._config = config
    if config.hook.pytest_assertion_pass.get_hookimpls():
        assertion_util._assertion_pass = report_passed_assertion
    try:
        yield
    finally:
        (
            assertion_util._reprcompare,
            assertion_util._assertion_pass,
            assertion_util._config,
        ) = saved


def _truncated(lines: list[str], item: pytest.Item | None, config: pytest.Config) -> list[str]:
    # pytest 9 truncates by the config; pytest 8 by the item.
    materialize = getattr(assertion_truncate, "materialize_with_truncation", None)
    if materialize is not None:
        return list(materialize(lines, config))
    truncate_for_item = getattr(assertion_truncate, "truncate_if_required", None)
    if item is None or truncate_for_item is None:
        return lines
    return list(truncate_for_item(lines, item))
