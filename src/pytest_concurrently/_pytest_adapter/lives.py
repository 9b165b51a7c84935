"""Lives of shared values, and what each test needs from the scheduler.

pytest runs tests in collection order and keeps one instance per shared
fixture copy (definition and scope node) at a time: it tears the instance
down and makes a new one when a test asks for another parameter
(``params=`` or an indirect override), when an instance it depends on
changes, or when the scope node is torn down between two runs of its items.
:func:`plan_admission` walks the items in collection order, numbers the
*lives* of every copy and node the way pytest would, and turns them into
what the admission policy needs to keep pytest's outcomes while tests
overtake each other:

- the lives each test needs (tests that need different lives of one copy
  never overlap, and lives come in order);
- the earlier tests each test must not start before: the test that makes a
  life (pytest makes it in the setup of its first user, and reports its
  output and errors there) before the life's other users, every test of a
  node's segment before the segment's last test, which tears the node down
  after them, and every earlier test before a test that makes a later life
  of something (an earlier test may still ask for the old value with
  ``request.getfixturevalue`` and a computed name);
- the resources each test holds through the fixtures it uses.

A wider-scoped fixture that declares a resource holds it for its whole
life, and its users share that hold. A test that does not use the instance
but needs the resource in a way that conflicts with it ends that life: it
tears the instance down in its own setup (its earlier users have finished
by then), and the next user makes a new one, as after a parameter switch.

pytest versions: reads ``_fixtureinfo``, ``callspec._arg2scope`` and the
definitions' ``argnames`` and ``func``, as :mod:`.fixtures` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest
from _pytest.nodes import Node

from ..resources import ResourceNeed, merge_needs
from ..scheduling import Access
from .dynamic_requests import literal_requests
from .fixtures import AnyFixtureDef, _effective_scope, _ParamValue, _same, _scope_node, copy_node
from .setupstate import ItemSegments, NodeSegment, node_segments

__all__ = ["AdmissionNeeds", "plan_admission"]


@dataclass
class AdmissionNeeds:
    """What one test needs from the scheduler, beyond its own markers.

    :param lives: the life of each shared copy or node (with more than one
        life) the test needs.
    :param after: positions of earlier tests that must be admitted first.
    :param resources: resources the test holds through function-scoped
        fixtures, and (shared) through shared instances that hold them shared.
    :param held_through: resources held exclusively by a shared instance the
        test uses: resource name -> the instance's life.
    :param ends: the shared copies (definition, node) whose instance this
        test tears down in its setup, if still set up (see the module
        docstring).
    :param replaces: the test makes a later life of something, replacing
        the value an earlier test received: it starts only after every
        earlier test has started (one of them may still ask for the old
        value with ``request.getfixturevalue`` and a computed name, which no
        plan sees).
    :param values: the life of every shared copy and node the test uses,
        those with one life included: a value is made by its first user
        even when a later one asks for it first.
    """

    lives: dict[object, int] = field(default_factory=dict)
    after: set[int] = field(default_factory=set)
    resources: dict[str, Access] = field(default_factory=dict)
    held_through: dict[str, object] = field(default_factory=dict)
    ends: list[tuple[AnyFixtureDef, Node]] = field(default_factory=list)
    replaces: bool = False
    values: dict[object, int] = field(default_factory=dict)


def plan_admission(
    items: Sequence[pytest.Item],
    own_needs: Sequence[Sequence[ResourceNeed]],
    declared: Callable[[object], Sequence[ResourceNeed]],
    limited: Callable[[str], bool],
    segments: Mapping[pytest.Item, ItemSegments] | None = None,
) -> list[AdmissionNeeds]:
    """For each item, what it needs from the scheduler.

    :param own_needs: the resources each item declares itself (markers).
    :param declared: the resource needs a fixture function declares.
    :param limited: whether a resource has a limit (then a hold that does
        not say its mode is shared).
    :param segments: the items' node segments (:func:`.node_segments`),
        when already computed.
    """
    if segments is None:
        segments = node_segments(items)
    plans = [AdmissionNeeds() for _ in items]
    per_item: list[dict[tuple[object, ...], object]] = []
    # pytest registers a copy's finish() on the node of every request for
    # it; one made at a narrower scope (a parameter's) ends the copy's life,
    # whatever value it holds then, when that node is torn down. Count
    # those ends per copy (and the ends by a conflicting test): each starts
    # a new life.
    ended: dict[tuple[object, ...], int] = {}
    ends_with: dict[NodeSegment, set[tuple[object, ...]]] = {}
    # Shared copies whose current life holds resources, with the tests that
    # used that life (a test that ends it comes after them), and the tests
    # that ended a life since (the next user comes after them).
    holding: dict[tuple[object, ...], dict[str, Access]] = {}
    users: dict[tuple[object, ...], list[int]] = {}
    enders: dict[tuple[object, ...], list[int]] = {}
    instance_holds: list[dict[tuple[object, ...], dict[str, Access]]] = []

    # One key per node, not one per test and node: the keys live as long as
    # the tests' plans.
    node_keys: dict[Node, tuple[object, ...]] = {}
    for index, item in enumerate(items):
        identities: dict[tuple[object, ...], object] = {}
        for segment in segments[item].within:
            key = node_keys.get(segment.node)
            if key is None:
                key = node_keys[segment.node] = ("node", segment.node)
            identities[key] = segment.index
        own_declared = list(own_needs[index])
        through: dict[tuple[object, ...], dict[str, Access]] = {}
        if isinstance(item, pytest.Function) and hasattr(item, "_fixtureinfo"):
            narrow: dict[tuple[object, ...], Node] = {}
            walk = _FixtureLives(item, segments[item].within, identities, narrow, ended, declared)
            walk.walk()
            for key, request_node in narrow.items():
                for segment in segments[item].within:
                    if segment.node is request_node:
                        ends_with.setdefault(segment, set()).add(key)
            own_declared += walk.own_needs
            for key, declared_needs in walk.instance_needs.items():
                through[key] = merge_needs(declared_needs, limited)
        own = merge_needs(own_declared, limited)
        plans[index].resources = own
        instance_holds.append(through)
        # What the test holds, to find the instances it conflicts with.
        holds = dict(own)
        for instance_holds_of in through.values():
            for name, access in instance_holds_of.items():
                if holds.get(name) is not Access.EXCLUSIVE:
                    holds[name] = access
        for key, held in list(holding.items()):
            if key in identities:
                continue
            if any(
                name in holds and Access.EXCLUSIVE in (access, holds[name])
                for name, access in held.items()
            ):
                del holding[key]
                plans[index].after.update(users.pop(key, ()))
                ended[key] = ended.get(key, 0) + 1
                enders.setdefault(key, []).append(index)
                _, definition, node = key
                plans[index].ends.append((definition, node))  # type: ignore[arg-type]
        for key in identities:
            pending = enders.pop(key, None)
            if pending:
                plans[index].after.update(pending)
        holding.update(through)
        for key in through:
            users.setdefault(key, []).append(index)
        per_item.append(identities)
        for segment in segments[item].closes:
            for key in ends_with.pop(segment, ()):
                ended[key] = ended.get(key, 0) + 1
    numbered, changed = _number_lives(per_item)
    # The maker of each life comes before its other users.
    makers: dict[tuple[tuple[object, ...], int], int] = {}
    for index, lives in enumerate(numbered):
        for key, life in lives.items():
            maker = makers.setdefault((key, life), index)
            if maker != index:
                plans[index].after.add(maker)
            elif life:
                plans[index].replaces = True
    # Every other test of a node's segment comes before its last test.
    position = {item: index for index, item in enumerate(items)}
    for index, item in enumerate(items):
        for segment in segments[item].within:
            if segment.last is not None and segment.last is not item:
                plans[position[segment.last]].after.add(index)
    _hold_latest_lives(items, segments, numbered, changed, position)
    for index, plan in enumerate(plans):
        plan.values = numbered[index]  # type: ignore[assignment]
        plan.lives = {key: life for key, life in numbered[index].items() if key in changed}
        for key, held in instance_holds[index].items():
            for name, access in held.items():
                if access is Access.EXCLUSIVE:
                    plan.held_through[name] = (key, numbered[index][key])
                elif name not in plan.resources:
                    plan.resources[name] = Access.SHARED
    return plans


def _number_lives(
    per_item: list[dict[tuple[object, ...], object]],
) -> tuple[list[dict[tuple[object, ...], int]], set[tuple[object, ...]]]:
    """A copy's life changes when its identity differs from that of the
    previous item that used the copy. Returns each item's lives and the
    keys with more than one life."""
    last: dict[tuple[object, ...], tuple[object, int]] = {}
    changed: set[tuple[object, ...]] = set()
    numbered: list[dict[tuple[object, ...], int]] = []
    for identities in per_item:
        lives: dict[tuple[object, ...], int] = {}
        for key, identity in identities.items():
            previous = last.get(key)
            if previous is None:
                life = 0
            elif _same(previous[0], identity):
                life = previous[1]
            else:
                life = previous[1] + 1
                changed.add(key)
            last[key] = (identity, life)
            lives[key] = life
        numbered.append(lives)
    return numbered, changed


def _hold_latest_lives(
    items: Sequence[pytest.Item],
    segments: Mapping[pytest.Item, object],
    numbered: list[dict[tuple[object, ...], int]],
    changed: set[tuple[object, ...]],
    position: Mapping[pytest.Item, int],
) -> None:
    """The last test of a node's segment tears the node down, and with it
    every instance cached there, which may depend on shared values that
    other tests of the segment received: it holds the segment's latest life
    of each of them until then, so no later test replaces a value under
    that teardown. (Lives only grow in collection order, so this never asks
    it to hold two lives of one thing.)"""
    if not changed:
        return
    latest: dict[int, dict[tuple[object, ...], int]] = {}
    for index, item in enumerate(items):
        for segment in segments[item].within:  # type: ignore[attr-defined]
            if segment.last is not None and segment.last is not item:
                held = latest.setdefault(position[segment.last], {})
                held.update((key, used) for key, used in numbered[index].items() if key in changed)
    for index, held in latest.items():
        for key, used in held.items():
            numbered[index].setdefault(key, used)


class _FixtureLives:
    """The identity of every shared fixture copy one item uses, as an
    argument or by a name written out in a ``getfixturevalue`` call (see
    :mod:`.dynamic_requests`): (node segment, cache key, identities of its
    dependencies)."""

    def __init__(
        self,
        item: pytest.Function,
        segments: Sequence[NodeSegment],
        out: dict[tuple[object, ...], object],
        narrow: dict[tuple[object, ...], Node],
        ended: dict[tuple[object, ...], int],
        declared: Callable[[object], Sequence[ResourceNeed]],
    ) -> None:
        self._declared = declared
        #: Resource needs of the function-scoped fixtures the item uses.
        self.own_needs: list[ResourceNeed] = []
        #: Resource needs of the shared copies it uses, by copy key.
        self.instance_needs: dict[tuple[object, ...], Sequence[ResourceNeed]] = {}
        self._item = item
        self._narrow = narrow
        self._ended = ended
        self._definitions: Mapping[str, Sequence[AnyFixtureDef]] = (
            item._fixtureinfo.name2fixturedefs
        )
        #: Fixtures reached only by a name in a ``getfixturevalue`` call,
        #: whose arguments may be outside the item's closure too.
        self._by_name: dict[str, Sequence[AnyFixtureDef]] = {}
        self._callspec = getattr(item, "callspec", None)
        self._segment_index = {segment.node: segment.index for segment in segments}
        self._out = out
        self._memo: dict[tuple[str, int], object] = {}

    def walk(self) -> None:
        for name in self._item._fixtureinfo.names_closure:
            definitions = self._definitions.get(name)
            if definitions:
                self._identity(name, len(definitions) - 1)
        # What the test's body asks for by name, it asks for after its setup.
        for name in literal_requests(getattr(self._item, "obj", None)):
            definitions = self._requested(name)
            if definitions:
                self._identity(name, len(definitions) - 1)

    def _requested(self, name: str) -> Sequence[AnyFixtureDef] | None:
        """The definitions visible to the item of a fixture asked for by
        name, if its value can be planned: not one that takes parameters
        the item does not give (pytest fails such a request)."""
        definitions = self._definitions.get(name) or self._by_name.get(name)
        if definitions is None:
            definitions = self._item.session._fixturemanager.getfixturedefs(name, self._item)
            if not definitions:
                return None
            self._by_name[name] = definitions
        params = self._callspec.params if self._callspec is not None else {}
        if definitions[-1].params is not None and name not in params:
            return None
        return definitions

    def _identity(self, name: str, level: int) -> object:
        memo_key = (name, level)
        if memo_key in self._memo:
            return self._memo[memo_key]
        self._memo[memo_key] = None  # a cycle is pytest's error to report
        definition = (self._definitions.get(name) or self._by_name[name])[level]
        callspec = self._callspec
        if callspec is not None and name in callspec.params:
            cache_key: object = _ParamValue(callspec.params[name])
        else:
            cache_key = None
        dependencies = []
        for argname in definition.argnames:
            if argname == name:
                if level > 0:
                    dependencies.append(self._identity(name, level - 1))
                continue
            found = self._definitions.get(argname)
            if found is None and name in self._by_name:
                # The arguments of a fixture asked for by name may be
                # outside the item's closure; those of the others are in it
                # (pytest's closure is transitive), or are not fixtures.
                found = self._requested(argname)
            if found:
                dependencies.append(self._identity(argname, len(found) - 1))
        for argname in literal_requests(definition.func):
            if argname != name and argname not in definition.argnames:
                found = self._requested(argname)
                if found:
                    dependencies.append(self._identity(argname, len(found) - 1))
        node = copy_node(self._item, name, definition)
        needs = self._declared(definition.func)
        if node is self._item:
            identity: object = ("function", tuple(dependencies))
            self.own_needs.extend(needs)
        else:
            key = ("fixture", definition, node)
            if needs:
                self.instance_needs[key] = needs
            identity = (
                self._segment_index.get(node, 0),
                cache_key,
                tuple(dependencies),
                self._ended.get(key, 0),
            )
            request_node = _scope_node(
                self._item, _effective_scope(self._item, name, definition), definition
            )
            if request_node is not node:
                # Parametrized at a narrower scope than the fixture's own: pytest
                # tears the value down with that narrower node, so each node
                # gets a life of its own in the one cached slot.
                identity = (identity, request_node)
                self._narrow[key] = request_node
            self._out[key] = identity
        self._memo[memo_key] = identity
        return identity
