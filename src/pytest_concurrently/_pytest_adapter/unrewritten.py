"""The plugin's own modules imported as plain Python, not assertion-rewritten.

pytest rewrites the asserts of every module of a distribution that has a
``pytest11`` entry point, so that a plugin's helpers explain their failed
asserts. The plugin's asserts are internal invariants, never a user's
failure, so rewriting them buys nothing, and it costs: the rewriting hook
parses, rewrites and compiles each module, and it can keep the result only
where it may write bytecode. With ``PYTHONDONTWRITEBYTECODE`` set, as in many
container images and CI jobs, every pytest start paid that for some fifty
modules (about a quarter of a second), where a plain import reads the
bytecode compiled when the package was installed.

:func:`leave_unrewritten` takes the package off the list of every rewriting
hook on ``sys.meta_path`` (``AssertionRewritingHook._must_rewrite`` and its
cache ``_marked_for_rewrite_cache``). It runs from the package's
``__init__``, which is still rewritten (the hook has it before any of our code
runs), as is this package's ``__init__`` and this module; everything imported
after it is not.

pytest versions: both attributes exist unchanged from pytest 8.2 to 9.x. If
they go, nothing breaks: the modules are simply rewritten again.
"""

from __future__ import annotations

import sys

__all__ = ["leave_unrewritten"]


def leave_unrewritten(package: str) -> None:
    """Have pytest's assertion-rewriting hooks import ``package`` and its
    modules from here on as plain Python."""
    prefix = package + "."
    for finder in sys.meta_path:
        marked = getattr(finder, "_must_rewrite", None)
        cache = getattr(finder, "_marked_for_rewrite_cache", None)
        if not isinstance(marked, set) or not isinstance(cache, dict):
            continue
        marked.difference_update(
            [name for name in marked if name == package or name.startswith(prefix)]
        )
        # The hook remembers its verdict per module name; a name it has seen
        # under this package must be decided again.
        for name in [name for name in cache if name == package or name.startswith(prefix)]:
            del cache[name]
