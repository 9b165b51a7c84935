"""``monkeypatch`` whose patches come off in any order without leaking.

pytest's ``MonkeyPatch`` remembers, for each patch, the value it replaced,
and ``undo()`` puts those values back in reverse order. That is right when
one test patches at a time. With two tests in flight that patch the same
attribute, the second remembers the first's value; if the first ends first
and the second after, the first's value is put back for good.

:class:`LayeredMonkeyPatch` keeps, per patched target (an attribute, a
mapping key, ``os.environ``'s variables, the working directory), the value
from before anyone patched it and one layer per patch still in place. Its
``undo()`` takes its own layers out: the target then shows the newest layer
left, or, when none is left, the value from before the first. ``sys.path``
entries added with ``syspath_prepend`` are taken out one by one instead of
restoring a copy of the whole list. The same class serves the sequential
case unchanged: one patcher at a time is a stack of layers undone from the
top. The registry of targets is shared with :mod:`.layered_mocks`, so that
``monkeypatch`` and pytest-mock's ``mocker`` patches of one target are
layers of one stack.

Internals relied on: ``MonkeyPatch`` records each patch in ``_setattr`` as
``(target, name, old value)`` and each mapping patch in ``_setitem`` as
``(mapping, key, old value)``, in ``setattr``/``delattr`` and
``setitem``/``delitem`` (``setenv``/``delenv`` go through the latter),
with a sentinel for "absent" (``notset`` up to pytest 8.3, ``NOTSET``
since), from pytest 8.2 to 9.x.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Hashable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import _pytest.monkeypatch
import pytest

# What these patches change comes off layer by layer: not a change of shared
# state to warn about (see process_state).
from ..process_state import layered

__all__ = ["LayeredMonkeyPatch", "patched_targets"]

# What MonkeyPatch records for "absent": ``notset`` up to pytest 8.3,
# ``NOTSET`` (from ``_pytest.compat``) since.
_MONKEYPATCH_NAMES = vars(_pytest.monkeypatch)
NOTSET: object = _MONKEYPATCH_NAMES.get("notset") or _MONKEYPATCH_NAMES["NOTSET"]


@dataclass
class _Target:
    """A patched target: how to write it, its value from before, and the
    layers of the patchers that have it patched, oldest first."""

    write: Any
    original: object
    layers: list[tuple[object, object]] = field(default_factory=list)


# Key -> target. Keys hold the patched object itself (not only its id), so
# an id is never reused while its target is here; the registry is
# process-wide, as what it keeps track of is.
_targets: dict[Hashable, _Target] = {}


def patched_targets() -> int:
    """How many targets have patches in place (for tests)."""
    return len(_targets)


def add_layer(key: Hashable, write: Any, original: object, owner: object, value: object) -> None:
    """Put ``owner``'s ``value`` on top of the target ``key``, which has
    already been written. ``write`` and ``original`` (the value from before
    every patch) are kept only when nobody else has the target patched."""
    target = _targets.get(key)
    if target is None:
        target = _targets[key] = _Target(write, original)
    target.layers.append((owner, value))


@layered
def remove_layers(key: Hashable, owner: object) -> None:
    """Take ``owner``'s layers off the target ``key`` and write what then
    shows: the newest layer left, or the value from before every patch."""
    target = _targets.get(key)
    if target is None:
        return
    was_on_top = bool(target.layers) and target.layers[-1][0] is owner
    target.layers = [(other, value) for other, value in target.layers if other is not owner]
    obj, name = _parts(key)
    if not target.layers:
        del _targets[key]
        target.write(obj, name, target.original)
    elif was_on_top:
        target.write(obj, name, target.layers[-1][1])


def _write_attribute(obj: object, name: str, value: object) -> None:
    if value is NOTSET:
        with contextlib.suppress(AttributeError):
            delattr(obj, name)
    else:
        setattr(obj, name, value)


def _write_item(mapping: MutableMapping[Any, Any], key: object, value: object) -> None:
    if value is NOTSET:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def _write_cwd(_obj: object, _name: object, value: object) -> None:
    os.chdir(str(value))


# pytest marks MonkeyPatch final for type checkers; a subclass is what lets
# ``isinstance(monkeypatch, pytest.MonkeyPatch)`` and every method pytest
# adds later keep working.
class LayeredMonkeyPatch(pytest.MonkeyPatch):  # type: ignore[misc]
    """A ``MonkeyPatch`` whose ``undo()`` leaves other patchers' patches in
    place, whatever order patchers undo in."""

    def __init__(self) -> None:
        super().__init__()
        self._mine: list[Hashable] = []
        self._prepended: list[str] = []

    def _layer(self, key: Hashable, write: Any, old: object, new: object) -> None:
        add_layer(key, write, old, self, new)
        self._mine.append(key)

    @layered
    def setattr(self, target: Any, name: Any, value: Any = NOTSET, raising: bool = True) -> None:
        """As ``MonkeyPatch.setattr``, as a layer of its own."""
        __tracebackhide__ = True
        before = len(self._setattr)
        super().setattr(target, name, value, raising)
        if len(self._setattr) > before:
            obj, attribute, old = self._setattr[-1]
            new = value if value is not NOTSET else name
            self._layer(("attr", _Identity(obj), attribute), _write_attribute, old, new)

    @layered
    def delattr(self, target: Any, name: Any = NOTSET, raising: bool = True) -> None:
        """As ``MonkeyPatch.delattr``, as a layer of its own."""
        __tracebackhide__ = True
        before = len(self._setattr)
        super().delattr(target, name, raising)
        if len(self._setattr) > before:
            obj, attribute, old = self._setattr[-1]
            self._layer(("attr", _Identity(obj), attribute), _write_attribute, old, NOTSET)

    @layered
    def setitem(self, dic: Any, name: Any, value: Any) -> None:
        """As ``MonkeyPatch.setitem`` (and ``setenv``), as a layer of its own."""
        super().setitem(dic, name, value)
        mapping, key, old = self._setitem[-1]
        self._layer(("item", _Identity(mapping), key), _write_item, old, value)

    @layered
    def delitem(self, dic: Any, name: Any, raising: bool = True) -> None:
        """As ``MonkeyPatch.delitem`` (and ``delenv``), as a layer of its own."""
        before = len(self._setitem)
        super().delitem(dic, name, raising)
        if len(self._setitem) > before:
            mapping, key, old = self._setitem[-1]
            self._layer(("item", _Identity(mapping), key), _write_item, old, NOTSET)

    @layered
    def chdir(self, path: str | os.PathLike[str]) -> None:
        """As ``MonkeyPatch.chdir``, as a layer of its own."""
        old = os.getcwd()
        os.chdir(path)
        self._layer(("cwd",), _write_cwd, old, os.getcwd())

    @layered
    def syspath_prepend(self, path: Any) -> None:
        """As ``MonkeyPatch.syspath_prepend``; ``undo()`` takes out this
        entry alone, leaving other changes to ``sys.path`` in place."""
        super().syspath_prepend(path)
        self._savesyspath = None
        self._prepended.append(str(path))

    @layered
    def undo(self) -> None:
        """Take this patcher's layers out, newest first; each target shows
        the newest layer left, or its value from before every patch."""
        self._setattr[:] = []
        self._setitem[:] = []
        mine, self._mine = self._mine, []
        for key in reversed(mine):
            remove_layers(key, self)
        prepended, self._prepended = self._prepended, []
        for path in reversed(prepended):
            if path in sys.path:
                sys.path.remove(path)


class _Identity:
    """An object as a dictionary key by identity: a mapping or an instance
    may not be hashable, or may compare equal to another."""

    __slots__ = ("target",)

    def __init__(self, target: object) -> None:
        self.target = target

    def __hash__(self) -> int:
        return id(self.target)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.target is self.target


def _parts(key: Hashable) -> tuple[Any, Any]:
    kind = key[0]  # type: ignore[index]
    if kind in ("attr", "item"):
        return key[1].target, key[2]  # type: ignore[index]
    return None, None
