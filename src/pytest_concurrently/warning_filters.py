"""Deciding what happens to a warning, per test instead of per process.

The ``warnings`` module keeps one list of filters and one memory of where
each warning was already shown, for the whole process. pytest gives each
test its own by entering a ``catch_warnings`` block around it, and
``pytest.warns``, ``recwarn`` and ``deprecated_call`` enter another inside.
With several tests in flight those blocks would overlap and restore each
other's state, and a filter that one test sets (a ``filterwarnings``
marker, the ``"always"`` of ``pytest.warns``) would act on every test.

While concurrent tests run, the process's filters let every warning through
to the warning router (see :mod:`.routing`), and the router decides for the
test that issued it, with :class:`WarningFilters`: the filters of that
test's open recorders, innermost first, then its markers', then the run's,
the first that matches deciding, as in :func:`warnings.warn_explicit`; the
actions ``"default"``, ``"module"`` and ``"once"`` remember per test where
a warning was already shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["ALWAYS", "Filter", "WarningFilters", "compile_filter", "decide"]

#: A filter as the ``warnings`` module keeps it: action, message pattern
#: (or None for any), category, module pattern (or None), line number (0
#: for any).
Filter = tuple[str, Any, Any, Any, int]

#: What ``pytest.warns`` and the other recorders put in front: show every
#: warning, however often.
ALWAYS: Filter = ("always", None, Warning, None, 0)


def compile_filter(
    action: str, message: str, category: type[Warning], module: str, lineno: int
) -> Filter:
    """A filter from the parts ``warnings.filterwarnings`` takes (and
    pytest's ``parse_warning_filter`` returns), compiled as it compiles them."""
    return (
        action,
        re.compile(message, re.IGNORECASE) if message else None,
        category,
        re.compile(module) if module else None,
        lineno,
    )


def decide(
    filters: Iterable[Any], text: str, category: type[Warning], module: str, lineno: int
) -> str:
    """The action of the first of ``filters`` that matches the warning, or
    ``"default"`` when none does."""
    for action, message, filter_category, filter_module, filter_lineno in filters:
        if (
            (message is None or message.match(text))
            and issubclass(category, filter_category)
            and (filter_module is None or filter_module.match(module))
            and (filter_lineno == 0 or filter_lineno == lineno)
        ):
            return str(action)
    return "default"


class WarningFilters:
    """One test's say over its warnings: its own filters and its memory of
    which warnings it was already shown."""

    __slots__ = ("_shown", "own")

    def __init__(self, own: list[Filter] | None = None) -> None:
        #: The test's own filters (its markers'), in front of the run's.
        self.own: Sequence[Filter] = own or ()
        # Made on the first warning shown once: most tests issue none.
        self._shown: set[tuple[object, ...]] | None = None

    def forget_shown(self) -> None:
        """Show again what was shown once, as a change of the filters makes
        the ``warnings`` module do."""
        self._shown = None

    def shows(
        self,
        action: str,
        text: str,
        category: type[Warning],
        filename: str,
        module: str,
        lineno: int,
    ) -> bool:
        """Whether a warning that ``action`` applies to is shown (recorded),
        remembering it for the actions that show a warning once."""
        if action in ("always", "all"):
            return True
        if action == "ignore":
            return False
        if action == "once":
            key: tuple[object, ...] = ("once", text, category)
        elif action == "module":
            key = ("module", text, category, module)
        else:
            key = ("default", text, category, filename, lineno)
        if self._shown is None:
            self._shown = set()
        elif key in self._shown:
            return False
        self._shown.add(key)
        return True
