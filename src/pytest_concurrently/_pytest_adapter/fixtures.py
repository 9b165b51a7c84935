"""One ``FixtureDef`` copy per test, and per scope node.

pytest keeps a fixture's value in its ``FixtureDef``: ``cached_result`` holds
one value and ``_finalizers`` one list of teardowns. pytest gets away with
that because one test runs at a time. This module gives each concurrent test
its own copies, through the item's ``_fixtureinfo.name2fixturedefs`` map and
``_initrequest()``, and reads the scopes of parametrized arguments from
``callspec._arg2scope``.

pytest versions: pytest 8's ``TopRequest`` copies the name -> definitions map
it is given (see :meth:`_ItemFixtureDefs.copy`); pytest 9 uses it as is.
pytest 9's ``get_scope_package`` finds a package-scoped fixture's package by
the fixture's node, 8.2's by its base id; :func:`_scope_node` leaves that to
it. pytest 8.2 compares cache keys with ``is``, 9 with ``==``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import pytest
from _pytest.fixtures import (
    FixtureDef,
    FuncFixtureInfo,
    SubRequest,
    get_scope_node,
    get_scope_package,
)
from _pytest.nodes import Node
from _pytest.outcomes import TEST_OUTCOME
from _pytest.scope import Scope

from .. import bridge
from ..resources import declared_resources
from .setupstate import raise_collected

__all__ = [
    "AnyFixtureDef",
    "FixtureDef",
    "FixtureInstances",
    "SubRequest",
    "apply_context_changes",
    "fixture_functions",
    "forget_context_changes",
    "mark_pending_setup",
    "pending_setup",
    "record_context_changes",
    "requesting_item",
    "update_main_context",
]

#: A fixture definition of any value type.
AnyFixtureDef = FixtureDef[Any]


class FixtureInstances:
    """Which ``FixtureDef`` copy serves which test.

    A ``FixtureDef`` caches one value; pytest gets away with that because one
    test runs at a time and wider-scoped values are torn down when the next
    test leaves their scope. Here each item gets fresh copies of the
    definitions it uses at function scope, and each (definition, scope node)
    pair one shared copy, so a module-scoped fixture from a conftest has one
    instance per module even when tests of two modules overlap.
    """

    def __init__(self) -> None:
        self._shared: dict[tuple[AnyFixtureDef, Node], AnyFixtureDef] = {}
        self._executing: dict[AnyFixtureDef, asyncio.Event] = {}
        self._finishing: dict[AnyFixtureDef, asyncio.Event] = {}
        # The tests that received the cached value of each shared copy, and
        # an event set when they are all done with it.
        self._holders: dict[AnyFixtureDef, set[pytest.Item]] = {}
        self._held_by: dict[pytest.Item, list[AnyFixtureDef]] = {}
        # Set, and replaced by a fresh one, whenever a test releases what it
        # held or starts resolving a fixture; tests waiting for holders check
        # again then.
        self._released = asyncio.Event()
        self._waiting = 0  # tests waiting in execute_one_at_a_time
        self.waits_for_test: Callable[[pytest.Item, pytest.Item], bool] = lambda a, b: False
        """Whether the teardown of the first test waits for the second (the
        first ends a scope the second belongs to); set by the runner."""
        self.holds_resources: Callable[[pytest.Item], bool] = lambda item: False
        """Whether a test holds a resource, declared or locked at run time
        (a lock another test waits for may be waiting for it); set by the
        runner."""
        self.on_blocked: Callable[[], object] = lambda: None
        """Called when a test starts to wait for a fixture (run-time locks
        taken for that fixture may go on, see :meth:`waits_for_copy_of`);
        set by the runner."""
        # The shared copies each test is executing (more than one when a
        # shared fixture's setup asks for another): tests waiting for one of
        # them wait for that test.
        self._turns: dict[pytest.Item, list[AnyFixtureDef]] = {}
        # Tests whose teardown waits for the other tests of a scope they
        # end (until their teardown is over).
        self._closing: set[pytest.Item] = set()
        # Collection positions and the lives of shared copies each test needs
        # (see lives.plan_admission), so that a new life is made by its first user.
        self._position: dict[pytest.Item, int] = {}
        self._lives: dict[pytest.Item, dict[object, object]] = {}
        self._slot_of: dict[AnyFixtureDef, object] = {}
        # Tests between isolate() and the end of their setup phase, and those
        # of them waiting in execute_one_at_a_time for someone else.
        self._setting_up: set[pytest.Item] = set()
        self._blocked: dict[pytest.Item, tuple[AnyFixtureDef, SubRequest]] = {}
        self._ends: dict[pytest.Item, list[tuple[AnyFixtureDef, Node]]] = {}
        # pytest's own fixture information of each isolated item.
        self._original_info: dict[pytest.Item, FuncFixtureInfo] = {}

    def plan(
        self,
        items: Sequence[pytest.Item],
        lives: Sequence[Mapping[object, object]],
        ends: Sequence[Sequence[tuple[AnyFixtureDef, Node]]] = (),
    ) -> None:
        """Give the session's items in collection order, the lives of shared
        copies each of them needs, and the shared copies each ends in its
        setup (see :mod:`.lives`)."""
        self._position = {item: index for index, item in enumerate(items)}
        self._lives = {item: dict(needed) for item, needed in zip(items, lives, strict=True)}
        self._ends = {item: list(ended) for item, ended in zip(items, ends, strict=False) if ended}

    def end_instances(self, item: pytest.Item) -> None:
        """Tear down the shared instances that ``item`` ends, if they are
        still set up: they hold a resource ``item`` needs in a conflicting
        way, and their users have finished (the scheduler saw to that)."""
        exceptions: list[BaseException] = []
        for definition, node in self._ends.get(item, ()):
            shared = self._shared.get((definition, node))
            if shared is None or shared.cached_result is None:
                continue
            request = shared.__dict__.get(_MADE_FOR)
            if request is None:
                continue
            try:
                shared.finish(request)
            except TEST_OUTCOME as exc:
                exceptions.append(exc)
        raise_collected(exceptions, "errors while tearing down fixtures that hold a resource")

    def isolate(self, item: pytest.Item) -> None:
        """Point ``item`` at its own fixture definitions. Call once, before the
        item is set up. Test functions and doctests have pytest fixtures; other
        items are left alone."""
        info: FuncFixtureInfo | None = getattr(item, "_fixtureinfo", None)
        if info is None or not hasattr(item, "_initrequest"):
            return
        self._setting_up.add(item)
        self._original_info.setdefault(item, info)
        per_item = _ItemFixtureDefs(self, item)
        for name, definitions in info.name2fixturedefs.items():
            per_item[name] = per_item.copies_for(name, definitions)
        with_fixtures = cast(Any, item)
        with_fixtures._fixtureinfo = FuncFixtureInfo(
            argnames=info.argnames,
            initialnames=info.initialnames,
            names_closure=info.names_closure,
            name2fixturedefs=per_item,
        )
        with_fixtures._initrequest()

    def forget(self, item: pytest.Item) -> None:
        """Give ``item`` back pytest's own fixture definitions and drop what
        was planned for it, once it has run: nothing asks about it again,
        and ten thousand tests' copies kept to the end of the session would
        cost memory and the garbage collector's time."""
        original = self._original_info.pop(item, None)
        if original is not None:
            cast(Any, item)._fixtureinfo = original
        self._lives.pop(item, None)
        self._ends.pop(item, None)
        self._closing.discard(item)

    def _copy(self, item: pytest.Item, name: str, definition: AnyFixtureDef) -> AnyFixtureDef:
        node = copy_node(item, name, definition)
        if node is item:
            return _fresh_copy(definition)
        key = (definition, node)
        shared = self._shared.get(key)
        if shared is None:
            shared = _fresh_copy(definition)
            shared.__dict__["execute"] = self._one_at_a_time(shared)
            shared.__dict__["finish"] = self._finish_once(shared)
            self._shared[key] = shared
            self._slot_of[shared] = ("fixture", definition, node)
        return shared

    def closing_scope(self, item: pytest.Item) -> None:
        """Record that ``item``'s teardown waits for the other tests of a
        scope it ends (see :meth:`_waited_for_by_nobody`)."""
        self._closing.add(item)
        self._wake_waiting_replacers()

    def setup_over(self, item: pytest.Item) -> None:
        """Record that ``item``'s setup phase has ended, however it ended."""
        if item in self._setting_up:
            self._setting_up.discard(item)
            self._wake_waiting_replacers()

    def release(self, item: pytest.Item) -> None:
        """Record that ``item`` is done with the shared instances it received:
        its teardown, scopes it ends included, is over. A test waiting to
        replace one of them checks again."""
        self._setting_up.discard(item)
        self._closing.discard(item)
        for definition in self._held_by.pop(item, ()):
            holders = self._holders.get(definition)
            if holders is not None:
                holders.discard(item)
        self._wake_waiting_replacers()

    def _wake_waiting_replacers(self) -> None:
        if not self._waiting:
            return  # nobody to wake: no need for a new event
        released, self._released = self._released, asyncio.Event()
        released.set()

    def _one_at_a_time(self, definition: AnyFixtureDef) -> Callable[..., Any]:
        execute = FixtureDef.execute.__get__(definition)

        def execute_one_at_a_time(request: SubRequest) -> Any:
            if not bridge.in_bridged_code():
                result = execute(request)
                apply_context_changes(definition)
                return result
            item = request._pyfuncitem
            while self._reason_to_wait(definition, request, item) is not None:
                # While it waits, a test says what for, so that other tests
                # do not wait for it (see _earlier_maker_of_new_life and
                # _other_holders_of_replaced_value); saying so wakes them to
                # look again.
                self._blocked[item] = (definition, request)
                try:
                    self._wake_waiting_replacers()
                    self.on_blocked()
                    waited_on = self._reason_to_wait(definition, request, item)
                    if waited_on is not None:
                        self._waiting += 1
                        try:
                            bridge.wait_for(waited_on.wait())
                        finally:
                            self._waiting -= 1
                finally:
                    del self._blocked[item]
            turns = self._turns.setdefault(item, [])
            turns.append(definition)
            try:
                with _turn_taken(self._executing, definition):
                    try:
                        result = execute(request)
                    finally:
                        self._hold(definition, item)
            finally:
                turns.pop()
                if not turns:
                    del self._turns[item]
            if _MADE_FOR not in definition.__dict__:
                definition.__dict__[_MADE_FOR] = request
            # The test runs in a context of its own: it sees what the
            # instance's setup set, as in pytest's one context.
            apply_context_changes(definition)
            return result

        return execute_one_at_a_time

    def waits_for_copy_of(self, waiter: pytest.Item, maker: pytest.Item) -> bool:
        """Whether ``waiter`` is waiting for a shared copy that ``maker``
        is executing (setting up, through its owner)."""
        blocked = self._blocked.get(waiter)
        return blocked is not None and blocked[0] in self._turns.get(maker, ())

    def _reason_to_wait(
        self,
        definition: AnyFixtureDef,
        request: SubRequest,
        item: pytest.Item,
        *,
        shallow: bool = False,
    ) -> asyncio.Event | None:
        """The event ``item`` must wait for before it executes
        ``definition`` for ``request``, or None when it may go on.

        :param shallow: count every waiting earlier test as unable to go on
            (see :meth:`_may_go_on`).
        """
        busy = self._executing.get(definition)
        if busy is not None:
            return busy
        pending = pending_setup(definition)
        if pending is not None:
            return pending
        if self._other_holders_of_replaced_value(
            definition, request, item
        ) or self._earlier_maker_of_new_life(definition, request, item, shallow=shallow):
            return self._released
        return None

    def _finish_once(self, definition: AnyFixtureDef) -> Callable[..., Any]:
        finish = FixtureDef.finish.__get__(definition)

        def finish_once(request: SubRequest) -> None:
            # Two tests may finish one copy at once (each replacing a value
            # the copy depends on); the second waits for the first, then
            # finds nothing left to finish, so dependencies are never torn
            # down before a dependent whose teardown is still running.
            definition.__dict__.pop(_MADE_FOR, None)
            if not bridge.in_bridged_code():
                finish(request)
                return
            while (busy := self._finishing.get(definition)) is not None:
                bridge.wait_for(busy.wait())
            with _turn_taken(self._finishing, definition):
                finish(request)

        return finish_once

    def _other_holders_of_replaced_value(
        self, definition: AnyFixtureDef, request: SubRequest, item: pytest.Item
    ) -> bool:
        """Whether ``request`` needs another value than the one cached while
        tests other than ``item`` still hold the cached one, and ``item`` may
        wait for them.

        The scheduler keeps tests that need different values apart when it
        can see them coming; a value asked for with
        ``request.getfixturevalue`` is seen only here. A holder that ends a
        scope ``item`` belongs to waits for ``item`` in its teardown, and a
        holder that is waiting for a fixture itself may be waiting for one
        ``item`` is resolving, so ``item`` waits for neither. A holder that
        is only setting its own fixtures up is waited for: replacing the
        value would tear it down under that holder.
        """
        cached = definition.cached_result
        if cached is None or _same(cached[1], definition.cache_key(request)):
            return False
        return any(
            holder is not item
            and holder not in self._blocked
            and not self.waits_for_test(holder, item)
            for holder in self._holders.get(definition, ())
        )

    def _earlier_maker_of_new_life(
        self,
        definition: AnyFixtureDef,
        request: SubRequest,
        item: pytest.Item,
        *,
        shallow: bool = False,
    ) -> bool:
        """Whether a test earlier in collection order, still in its setup,
        should make the life of a shared copy that ``request`` would make.

        pytest makes each life in the setup of its first user, and replacing
        a value tears the previous one down with its dependents, reporting
        their teardown errors there. So a test that would replace a value
        waits until the earlier tests have ended their setups (one of them
        may ask for the same copy with ``request.getfixturevalue``, which no
        plan sees), and a test that would make a copy's life waits for the
        earlier users of that life.

        Those earlier tests may be waiting themselves. ``item`` waits for
        them all the same when nobody can be waiting for ``item`` (see
        :meth:`_waited_for_by_nobody`): waits of such tests only point at
        earlier tests, so they cannot close a circle. Otherwise a test that
        waits here for something that is not over yet is not waited for: it
        might be waiting for something ``item`` holds.
        """
        cached = definition.cached_result
        if cached is not None and _same(cached[1], definition.cache_key(request)):
            return False
        position = self._position.get(item)
        if position is None:
            return False
        earlier = [
            other
            for other in self._setting_up
            if other is not item and self._position.get(other, position) < position
        ]
        if cached is None:
            slot = self._slot_of.get(definition)
            needed = self._lives.get(item, {}).get(slot) if slot is not None else None
            if needed is None:
                return False
            holders = self._holders.get(definition, ())
            earlier = [
                other
                for other in earlier
                if other not in holders and self._lives.get(other, {}).get(slot) == needed
            ]
        if not earlier:
            return False
        if self._waited_for_by_nobody(item):
            return True
        if shallow:
            return any(other not in self._blocked for other in earlier)
        return any(self._may_go_on(other) for other in earlier)

    def _waited_for_by_nobody(self, item: pytest.Item) -> bool:
        """Whether no test or owner can be waiting, or come to wait, for
        ``item`` while it waits for a fixture.

        What others wait for without giving up is a shared copy being
        executed (its turn), a resource (a run-time lock), and the end of
        the tests of a scope (a teardown that ends it). A test that is in
        none of these positions is waited for only by tests that give up
        waiting when it blocks (:meth:`_other_holders_of_replaced_value`,
        :meth:`_may_go_on`). A closing test is not itself blocked, so a test
        waiting to replace a value it holds does not give up; that test
        may be the one ``item`` would wait for.
        """
        return (
            item not in self._turns
            and not self.holds_resources(item)
            and not any(self.waits_for_test(closer, item) for closer in self._closing)
        )

    def _may_go_on(self, item: pytest.Item) -> bool:
        """Whether ``item`` is not waiting here, or what it waits for is
        over and it only has to be woken: then it does not wait for anyone a
        later test might be, so that test may wait for it."""
        blocked = self._blocked.get(item)
        if blocked is None:
            return True
        definition, request = blocked
        # Shallow: a test that waits for an earlier one is not waited for;
        # a later test looks at that earlier one itself.
        return self._reason_to_wait(definition, request, item, shallow=True) is None

    def _hold(self, definition: AnyFixtureDef, item: pytest.Item) -> None:
        self._holders.setdefault(definition, set()).add(item)
        self._held_by.setdefault(item, []).append(definition)
        self._wake_waiting_replacers()


@contextmanager
def _turn_taken(
    turns: dict[AnyFixtureDef, asyncio.Event], definition: AnyFixtureDef
) -> Iterator[None]:
    """Mark ``definition``'s turn as taken for the block; whoever waits on the
    event it leaves in ``turns`` goes on when the block ends."""
    done = asyncio.Event()
    turns[definition] = done
    try:
        yield
    finally:
        del turns[definition]
        done.set()


class _ParamValue:
    """A parameter value that compares by identity, then by ``==``; values
    whose ``==`` raises (numpy arrays, say) are different unless identical."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _ParamValue):
            return NotImplemented
        if self.value is other.value:
            return True
        try:
            return bool(self.value == other.value)
        except Exception:
            # Values that cannot be compared are different values.
            return False

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"_ParamValue({self.value!r})"


class _ItemFixtureDefs(dict[str, Sequence[AnyFixtureDef]]):
    """An item's name -> definitions map, which also copies the definitions
    of fixtures the item requests dynamically (``request.getfixturevalue``)."""

    def __init__(self, instances: FixtureInstances, item: pytest.Item) -> None:
        super().__init__()
        self._instances = instances
        self._item = item

    def copies_for(
        self, name: str, definitions: Sequence[AnyFixtureDef]
    ) -> tuple[AnyFixtureDef, ...]:
        return tuple(self._instances._copy(self._item, name, d) for d in definitions)

    def copy(self) -> _ItemFixtureDefs:
        # pytest 8's TopRequest copies the map it is given; the copy must
        # keep copying dynamically requested definitions.
        duplicate = _ItemFixtureDefs(self._instances, self._item)
        duplicate.update(self)
        return duplicate

    def get(self, name: str, default: Any = None) -> Any:
        found = super().get(name)
        if found is not None:
            return found
        definitions = self._item.session._fixturemanager.getfixturedefs(name, self._item)
        if definitions is None:
            return default
        for definition in definitions:
            needs = declared_resources(definition.func)
            if needs:
                pytest.fail(
                    f"the fixture {name!r} holds {', '.join(repr(n.name) for n in needs)}, "
                    "but was asked for with request.getfixturevalue, which the scheduler "
                    "cannot see before the test starts; request it as an argument or "
                    "with @pytest.mark.usefixtures",
                    pytrace=False,
                )
        copies = self.copies_for(name, definitions)
        self[name] = copies
        return copies


def _fresh_copy(definition: AnyFixtureDef) -> AnyFixtureDef:
    clone = object.__new__(type(definition))
    clone.__dict__.update(definition.__dict__)
    clone.__dict__.pop("execute", None)
    clone.__dict__.pop("finish", None)
    clone.cached_result = None
    clone.__dict__["_finalizers"] = []
    return clone


def _effective_scope(item: pytest.Item, name: str, definition: AnyFixtureDef) -> Scope:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and name in callspec.params:
        return callspec._arg2scope[name]  # type: ignore[no-any-return]
    return definition._scope


def copy_node(item: pytest.Item, name: str, definition: AnyFixtureDef) -> Node:
    """The node whose copy of ``definition`` serves ``item``: ``item`` itself
    for a value that lives as long as the test, else a collector.

    pytest keeps one ``FixtureDef`` per definition, so within one scope node
    every user of a definition shares its one cached value, whatever scope a
    parametrization gives the request: a module fixture overridden in a class
    and requested there with an indirect parameter is torn down and set up
    again, and so is its copy here. The copy therefore lives on the node of
    the wider of the definition's scope and the request's.
    """
    scope = max(definition._scope, _effective_scope(item, name, definition))
    if scope is Scope.Function:
        return item
    # A class-scoped fixture used outside a class lives as long as the item.
    return _scope_node(item, scope, definition)


def _scope_node(item: pytest.Item, scope: Scope, definition: AnyFixtureDef | None) -> Node:
    """The node a value of ``scope`` is cached on, as ``SubRequest.node``
    computes it."""
    node: Node | None
    if scope is Scope.Package and definition is not None:
        node = get_scope_package(item, definition)
    else:
        node = get_scope_node(item, scope)
    return node if node is not None else item


def _same(a: object, b: object) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        # Values that cannot be compared (numpy arrays) are different values,
        # as pytest's cache falls back to identity for them.
        return False


# A request for a shared copy's instance, kept to tear the instance down
# early (FixtureInstances.end_instances).
_MADE_FOR = "_pytest_concurrently_made_for"


# The context variables a shared instance's setup set, with their values.
_CONTEXT_CHANGES = "_pytest_concurrently_context_changes"


# Changes to make in the main thread's own context, which tests that run
# alone and each concurrent phase start from: made between tests, in order.
_for_the_main_context: list[Callable[[], object]] = []


def record_context_changes(
    definition: AnyFixtureDef, before: contextvars.Context, after: contextvars.Context
) -> None:
    """Remember which context variables ``definition``'s setup set, from
    the contexts before and after it, to hand them to the tests that
    receive the instance (:func:`apply_context_changes`), and to the main
    context, as pytest's one context would keep them until the teardown."""
    changes = [
        (variable, value)
        for variable, value in after.items()
        if variable not in before or before[variable] is not value
    ]
    definition.__dict__.pop(_CONTEXT_CHANGES, None)
    if not changes:
        return
    definition.__dict__[_CONTEXT_CHANGES] = changes
    tokens: list[contextvars.Token[Any]] = []

    def set_in_main() -> None:
        tokens.extend(variable.set(value) for variable, value in changes)

    def reset_in_main() -> None:
        for token in reversed(tokens):
            token.var.reset(token)

    _for_the_main_context.append(set_in_main)
    definition.__dict__[_MAIN_CONTEXT_RESET] = reset_in_main


def forget_context_changes(definition: AnyFixtureDef) -> None:
    """The instance is being torn down: hand its values to nobody more, and
    take them back out of the main context."""
    definition.__dict__.pop(_CONTEXT_CHANGES, None)
    reset = definition.__dict__.pop(_MAIN_CONTEXT_RESET, None)
    if reset is not None:
        _for_the_main_context.append(reset)


def update_main_context() -> None:
    """Make, in the current context (the main thread's own, between tests),
    the changes shared fixtures' setups and teardowns made to theirs."""
    while _for_the_main_context:
        _for_the_main_context.pop(0)()


_MAIN_CONTEXT_RESET = "_pytest_concurrently_main_context_reset"


def apply_context_changes(definition: AnyFixtureDef) -> None:
    """Set, in the current context, the context variables the setup of
    ``definition``'s instance set; in the main thread's own context, bring
    it up to date instead (see :func:`update_main_context`)."""
    if not bridge.in_bridged_code() and bridge.can_wait():
        update_main_context()
        return
    for variable, value in definition.__dict__.get(_CONTEXT_CHANGES, ()):
        variable.set(value)


# Set on a definition while an owner sets an instance up; the event is set
# when the setup has ended, whether or not the test that asked still waits.
_PENDING_SETUP = "_pytest_concurrently_pending_setup"


def mark_pending_setup(definition: AnyFixtureDef, done: asyncio.Event) -> None:
    """Record that an owner is setting ``definition`` up until ``done`` is set."""
    definition.__dict__[_PENDING_SETUP] = done


def pending_setup(definition: AnyFixtureDef) -> asyncio.Event | None:
    """The event set when the owner setting ``definition`` up is done, if
    one is at it (the test that asked for it first may have stopped waiting
    for the owner)."""
    pending: asyncio.Event | None = definition.__dict__.get(_PENDING_SETUP)
    if pending is not None and pending.is_set():
        definition.__dict__.pop(_PENDING_SETUP, None)
        return None
    return pending


def fixture_functions(item: pytest.Item) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The names and functions of the fixtures ``item`` requests statically."""
    info: FuncFixtureInfo | None = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    for name, definitions in info.name2fixturedefs.items():
        for definition in definitions:
            yield name, definition.func


def requesting_item(request: pytest.FixtureRequest) -> pytest.Item:
    """The test a fixture request was made for."""
    return request._pyfuncitem
