"""pytest-mock's ``mocker`` whose patches come off in any order without leaking.

A patch started with ``unittest.mock`` remembers the value it replaced and
its stop puts that value back. pytest-mock's ``mocker`` stops its patches at
the end of the test, newest first, which is right when one test patches at a
time. With two tests in flight that patch the same attribute, the second
remembers the first's value; if the first ends first and the second after,
the first's value is put back for good. ``patch.dict`` is worse: its stop
puts back a copy of the whole dictionary, taking out what every other test
set in it since.

:class:`LayeredMockerFixture` makes every patch it starts (``mocker.patch``,
``patch.object``, ``patch.context_manager``, ``patch.multiple``,
``patch.dict``, and ``spy``, which patches through ``patch.object``) a layer
in the registry of :mod:`.layered_patches`, shared with ``monkeypatch``:
per target the value from before the first patch, and one layer per patch
in place. Stopping a patch (``mocker.stop``, ``stopall``, the end of the
test, ``unittest.mock.patch.stopall``) takes its layer out, and the target
shows the newest layer left, or, when none is left, the value from before
the first. This module's ``mocker``, ``class_mocker``, ``module_mocker``,
``package_mocker`` and ``session_mocker`` fixtures hand out such fixtures;
the plugin registers the module after pytest-mock, so that they are the
ones used. What the patches change is not warned about as a change of
shared state (see :mod:`..process_state`).

Rules:

* An attribute (``patch``, ``patch.object``, each attribute of
  ``patch.multiple``, ``spy``) is one target. Its value from before is
  whatever the stop of its first patch would have put back (the attribute
  set again when it was the target's own, deleted when it was inherited or
  created): that patch's own restore is kept and run when the last layer
  comes off.
* ``patch.dict``: each key it sets (its values) and each key it removes
  (with ``clear=True``: every key but its values, those another patcher's
  layer hides at the time included) is a layer of its own on that key, in
  the same stack as ``monkeypatch.setitem``/``setenv`` of that key. Other
  changes to the dictionary while a ``patch.dict`` of it is in place, made
  by the code under test, cannot be told apart by test: they are undone
  when the last ``patch.dict`` in place on that dictionary stops, which
  puts the dictionary back as it was before the first (keys in their
  order), keys another patcher still has a layer on excepted: those show
  that layer, and then go back. A stop of the newest of several
  ``patch.dict`` of one dictionary that all belong to one ``mocker`` (the
  nested ones of one test) also puts the whole dictionary back as it was
  when that patch started, as ``unittest.mock`` does.
* One test at a time stopping its patches newest first, as ``stopall`` and
  the end of a test do, gets what pytest-mock gives. Stopping an older
  patch of a target before a newer one (``mocker.stop`` out of order)
  leaves the newer one in place, where ``unittest.mock`` would put the
  older one's value from before back at once, and the older one's value
  back for good at the newer one's stop.
* A patch is made from what is in place when it starts: a ``spy`` or an
  ``autospec`` patch of an attribute that another test in flight has
  replaced with a mock fails, as it does with pytest-mock alone when one
  test does it twice (a mock cannot be autospecced). So two tests in
  flight cannot spy one method at once.

Internals relied on, from pytest-mock 3.12 on, ``unittest.mock`` of Python
3.10 to 3.13 and the ``mock`` package 5.x (``mock_use_standalone_module``):

* pytest-mock: ``MockerFixture.patch`` is a ``_Patcher`` that looks up
  ``self.mock_module.patch`` (and its ``object``, ``multiple``, ``dict``)
  each time it patches, starts the patch with ``start()`` and stops it with
  ``stop()``.
* ``_patch``: ``start``/``stop`` (and ``patch.multiple``'s other patches)
  go through ``__enter__``/``__exit__``; after ``__enter__`` it holds
  ``target``, ``attribute``, ``new`` and ``attribute_name`` (set by
  ``patch.multiple``, whose ``__enter__`` then returns a dict of the mocks
  it made), and ``_exit_stack`` holds ``patch.multiple``'s other patches;
  ``__exit__`` restores the attribute from what it holds (``target``,
  ``temp_original``, ``is_local``, ``create``).
* ``_patch_dict``: after ``__enter__``, ``in_dict`` is the dictionary,
  ``_original`` a copy of it from before, ``values`` the values set and
  ``clear`` whether it was cleared first.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Generator, Hashable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, cast

import pytest
from pytest_mock import MockerFixture

# What these patches change comes off layer by layer: not a change of shared
# state to warn about.
from ..process_state import layered
from .layered_patches import (
    NOTSET,
    _Identity,
    _Target,
    _targets,
    _write_attribute,
    add_layer,
    remove_layers,
)

__all__ = [
    "LayeredMockerFixture",
    "class_mocker",
    "mocker",
    "module_mocker",
    "package_mocker",
    "session_mocker",
]


class LayeredMockerFixture(MockerFixture):
    """A ``MockerFixture`` whose patches leave other patchers' patches of the
    same target in place, whatever order they are stopped in."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        # The patcher looks the patch functions up on this attribute each
        # time; the fixture keeps the real module for its mock classes.
        self.patch.mock_module = _LayeredMockModule(self.mock_module, self)


def _layered_mocker(pytestconfig: pytest.Config) -> Generator[LayeredMockerFixture, None, None]:
    """pytest-mock's mocker, whose patches come off in any order: when tests
    in flight patch the same target, each stop takes out that patch alone,
    and after the last one the target is as it was before the first (see
    ``docs/semantics.md``)."""
    fixture = LayeredMockerFixture(pytestconfig)
    yield fixture
    fixture.stopall()


# pytest-mock's fixtures, of every scope, under their names: this module is
# registered as a plugin after pytest-mock, so these are the ones used.
mocker = pytest.fixture()(_layered_mocker)
class_mocker = pytest.fixture(scope="class")(_layered_mocker)
module_mocker = pytest.fixture(scope="module")(_layered_mocker)
package_mocker = pytest.fixture(scope="package")(_layered_mocker)
session_mocker = pytest.fixture(scope="session")(_layered_mocker)


class _LayeredMockModule:
    """The mock module as the fixture's patcher sees it: itself, except for
    ``patch``, whose patches are layered."""

    def __init__(self, module: Any, fixture: LayeredMockerFixture) -> None:
        self._module = module
        self.patch = _LayeredPatches(module, fixture)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class _LayeredPatches:
    """``patch``, ``patch.object``, ``patch.multiple`` and ``patch.dict`` of
    a mock module, returning patches not started yet whose start and stop
    are layered."""

    def __init__(self, module: Any, fixture: LayeredMockerFixture) -> None:
        self._patch = module.patch
        self._default = module.DEFAULT
        self._fixture = fixture

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._attributes(self._patch(*args, **kwargs))

    def object(self, *args: Any, **kwargs: Any) -> Any:
        return self._attributes(self._patch.object(*args, **kwargs))

    def multiple(self, *args: Any, **kwargs: Any) -> Any:
        return self._attributes(self._patch.multiple(*args, **kwargs))

    def dict(self, *args: Any, **kwargs: Any) -> Any:
        patch = self._patch.dict(*args, **kwargs)
        patch.__class__ = _layered_class(type(patch), _LayeredDictPatch, self._default)
        patch._layered_by = self._fixture
        return patch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._patch, name)

    def _attributes(self, patch: Any) -> Any:
        # patch.multiple's first attribute is the patch returned; the others
        # are patches it enters and exits along with itself.
        for each in [patch, *patch.additional_patchers]:
            each.__class__ = _layered_class(type(each), _LayeredAttributePatch, self._default)
        return patch


_layered_classes: dict[tuple[type, type], type] = {}


def _layered_class(base: type, layering: type, default: object) -> type:
    """``base`` (a patch class of the mock module in use) with ``layering``'s
    ``__enter__`` and ``__exit__`` around its own."""
    cls = _layered_classes.get((base, layering))
    if cls is None:
        namespace = {"_mock_base": base, "_mock_default": default, "__module__": __name__}
        cls = _layered_classes[(base, layering)] = type(
            f"Layered{base.__name__}", (layering, base), namespace
        )
    return cls


class _LayeredAttributePatch:
    """Layering of a patch of one attribute."""

    _mock_base: Any
    _mock_default: object

    @layered
    def __enter__(self) -> Any:
        result = cast(Any, super()).__enter__()
        this: Any = self
        if this.attribute_name is None:
            value = result
        elif this.new is not self._mock_default:
            value = this.new
        else:
            value = result[this.attribute_name]
        key = ("attr", _Identity(this.target), this.attribute)
        original = None if key in _targets else _SequentialRestore(self)
        add_layer(key, _write_patched_attribute, original, self, value)
        this._layered_key = key
        return result

    @layered
    def __exit__(self, *exc_info: Any) -> Any:
        this: Any = self
        key = this.__dict__.pop("_layered_key", None)
        if key is None:
            # A start that failed halfway, before anyone else could run.
            return cast(Any, super()).__exit__(*exc_info)
        remove_layers(key, self)
        # unittest.mock's own exit for the rest (forget this start, stop
        # patch.multiple's other patches), its restore sent to nowhere.
        this.target = _Nowhere()
        return cast(Any, super()).__exit__(*exc_info)


class _Nowhere:
    """An object that takes any attribute set or deleted and keeps none."""

    def __setattr__(self, name: str, value: object) -> None:
        pass

    def __delattr__(self, name: str) -> None:
        pass


class _SequentialRestore:
    """What the stop of the first patch of an attribute would put back,
    kept to be put back when the target's last layer comes off."""

    def __init__(self, patch: _LayeredAttributePatch) -> None:
        # The patch's own restore, run on a copy of what it knows after its
        # start, with nothing else to exit.
        self._exit: Any = patch._mock_base.__exit__
        self._state: Any = copy.copy(cast(Any, patch))
        self._state._exit_stack = contextlib.ExitStack()

    def restore(self) -> None:
        """Put the value from before back, as the patch's own stop would."""
        self._exit(self._state, None, None, None)


def _write_patched_attribute(obj: object, name: str, value: object) -> None:
    if isinstance(value, _SequentialRestore):
        value.restore()
    else:
        _write_attribute(obj, name, value)


@dataclass
class _DictLayers:
    """What one started ``patch.dict`` has in place."""

    mapping: MutableMapping[Any, Any]
    keys: list[Any]


@dataclass
class _DictGuard:
    """One ``patch.dict`` in place on a dictionary: the fixture it belongs
    to and the dictionary from before it started, without any layers."""

    fixture: object
    before: dict[Any, Any]


class _LayeredDictPatch:
    """Layering of a ``patch.dict``."""

    _layered_by: object

    @layered
    def __enter__(self) -> Any:
        result = cast(Any, super()).__enter__()
        this: Any = self
        mapping = this.in_dict
        identity = _Identity(mapping)
        before: dict[Any, Any] = this._original
        guard = _DictGuard(self._layered_by, _without_layers(mapping, before))
        # ``clear`` also takes out keys another patcher's layer hides now,
        # which would come back when that layer comes off.
        removed = [
            key for key in {**guard.before, **before} if this.clear and key not in this.values
        ]
        keys = [*this.values, *removed]
        for key in keys:
            value = this.values.get(key, NOTSET)
            add_layer(("item", identity, key), _write_entry, before.get(key, NOTSET), self, value)
        add_layer(("dict", identity), _write_nothing, guard, self, guard)
        this._layered = _DictLayers(mapping, keys)
        return result

    @layered
    def __exit__(self, *exc_info: Any) -> Any:
        this: Any = self
        layers: _DictLayers | None = this.__dict__.pop("_layered", None)
        if layers is None:
            return cast(Any, super()).__exit__(*exc_info)
        identity = _Identity(layers.mapping)
        for key in reversed(layers.keys):
            remove_layers(("item", identity, key), self)
        guards = _targets.get(("dict", identity))
        if guards is None:
            return False
        on_top = guards.layers[-1][0] is self
        mine = next(value for owner, value in guards.layers if owner is self)
        guards.layers = [(owner, value) for owner, value in guards.layers if owner is not self]
        if not guards.layers:
            del _targets[("dict", identity)]
            _settle(layers.mapping, cast(_DictGuard, guards.original).before, last=True)
        elif on_top and all(
            cast(_DictGuard, guard).fixture is self._layered_by for _, guard in guards.layers
        ):
            _settle(layers.mapping, cast(_DictGuard, mine).before, last=False)
        return False


def _item_targets(mapping: object) -> Iterator[tuple[Any, _Target]]:
    """(key, target) for every key of ``mapping`` with layers in place."""
    identity = _Identity(mapping)
    for registered, target in list(_targets.items()):
        if (
            isinstance(registered, tuple)
            and len(registered) == 3
            and registered[0] == "item"
            and registered[1] == identity
        ):
            yield registered[2], target


def _without_layers(mapping: object, contents: dict[Any, Any]) -> dict[Any, Any]:
    """``contents`` of ``mapping`` with every layered key at its value from
    before every patch."""
    result = dict(contents)
    for key, target in _item_targets(mapping):
        if target.original is NOTSET:
            result.pop(key, None)
        else:
            result[key] = target.original
    return result


def _settle(mapping: MutableMapping[Any, Any], before: dict[Any, Any], last: bool) -> None:
    """Put ``mapping`` back to ``before``, except the keys with layers in
    place, which show their newest layer. When ``last``, ``before`` also
    becomes those keys' value from before every patch."""
    layered = dict(_item_targets(mapping))
    wanted: dict[Any, Any] = {}
    for key in [*before, *(key for key in layered if key not in before)]:
        target = layered.get(key)
        if target is None:
            value = before[key]
        else:
            if last:
                target.original = before.get(key, NOTSET)
            value = target.layers[-1][1]
        if value is not NOTSET:
            wanted[key] = value
    for key in [key for key in mapping if key not in wanted]:
        del mapping[key]
    for key, value in wanted.items():
        if key not in mapping or not _same(mapping[key], value):
            mapping[key] = value
    if list(mapping) != list(wanted):
        # Cleared and filled again, like unittest.mock's own restore, so
        # that the keys come back in their order.
        for key in list(mapping):
            del mapping[key]
        for key, value in wanted.items():
            mapping[key] = value


def _same(value: object, other: object) -> bool:
    # Equal strings cannot be told apart, and os.environ makes a new one at
    # each read: writing them again would be a change of nothing.
    return value is other or (type(value) is str and type(other) is str and value == other)


def _write_entry(mapping: MutableMapping[Any, Any], key: Hashable, value: object) -> None:
    # Unlike a mapping of monkeypatch's, patch.dict's may have no ``pop``.
    if value is NOTSET:
        if key in mapping:
            del mapping[key]
    else:
        mapping[key] = value


def _write_nothing(_obj: object, _name: object, _value: object) -> None:
    # A patch.dict's own layer on the whole dictionary is taken out by the
    # patch itself (``_LayeredDictPatch.__exit__``), never written.
    pass
