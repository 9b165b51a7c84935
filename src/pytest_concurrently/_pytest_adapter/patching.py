"""Shadowing one method of one plugin object for the length of a block.

The capture manager and the logging plugin call their own per-phase methods
through ``self``, so an entry in the instance's ``__dict__`` replaces the
method for every caller, and deleting it brings the class's method back. No
pytest internal is named here; :mod:`.capture` and :mod:`.logs` say which
methods they shadow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["patched"]


@contextmanager
def patched(target: object, name: str, replacement: object) -> Iterator[None]:
    """Set ``target.<name>`` to ``replacement`` on the instance while the block
    runs; the class attribute of that name shows through again afterwards."""
    target.__dict__[name] = replacement
    try:
        yield
    finally:
        del target.__dict__[name]
