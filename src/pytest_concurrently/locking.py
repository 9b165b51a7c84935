"""Resources taken at run time: ``async with pytest_concurrently.lock(...)``.

A test or fixture that needs a resource only for part of its run takes it
with :func:`lock`. Run-time holds and declared holds (markers, fixtures)
are holds of the same resource: a run-time exclusive hold waits for every
test that declared the resource to end, and a test that declares it is not
admitted while someone holds it at run time.

Because a run-time lock is taken while the test already holds other
things, two tests can each hold what the other waits for. Before a test
starts to wait, the wait-for graph is followed; a wait that would close a
circle fails at once with :class:`DeadlockError`, naming the tests and the
resources on the circle.
"""

from __future__ import annotations

import asyncio
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager

import pytest

from .current import running_test
from .scheduling import Access, AdmissionPolicy
from .scheduling.waits import WaitGraph

__all__ = [
    "DeadlockError",
    "RuntimeLocks",
    "WorkerLocalLockWarning",
    "install",
    "lock",
    "running_beside_other_workers",
    "unreported_wait",
]


class DeadlockError(RuntimeError):
    """Taking a lock would wait for a test that (through others) waits for
    the one taking it."""


class WorkerLocalLockWarning(pytest.PytestWarning):
    """Under pytest-xdist, a run-time lock of a resource the test did not
    declare holds only among the tests of its worker."""


class RuntimeLocks:
    """The run-time side of resources: holds taken by running tests, who
    waits for what, and how long each test waited.

    :param policy: the admission policy whose resources these are; a
        standalone one (no tickets) when tests run one at a time.
    :param on_waiting: called with an owner (a test, or a task outside any
        test) when it starts to wait (the runner stops the test's timeout).
    :param on_waited: called with the owner, the resource and the seconds it
        waited, when the wait ends (the runner counts the wait and runs the
        test's timeout again).
    """

    def __init__(
        self,
        policy: AdmissionPolicy,
        on_waited: Callable[[Hashable, str, float], object] = lambda owner, name, seconds: None,
        on_waiting: Callable[[Hashable], object] = lambda owner: None,
    ) -> None:
        self._policy = policy
        self._on_waited = on_waited
        self._on_waiting = on_waiting
        # Seconds each holder waited that no report has subtracted yet.
        self._unreported: dict[Hashable, float] = {}
        self._graph = WaitGraph()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        # What each task holds at run time, and each test declared.
        self._held: dict[Hashable, dict[str, Access]] = {}
        self._declared: dict[Hashable, dict[str, Access]] = {}
        # The owner each holding task runs for, and how many run-time holds
        # each owner's tasks have.
        self._owner_of_task: dict[Hashable, Hashable] = {}
        self._holds_of_owner: dict[Hashable, int] = {}
        self.waits_for_copy_of: Callable[[Hashable, Hashable], bool] = lambda waiter, maker: False
        """Whether the first test waits for a shared fixture that the
        second is setting up; set by the runner."""

    # -- declared holds, reported by the runner --------------------------------

    def admitted(self, holder: Hashable, resources: dict[str, Access]) -> None:
        """``holder`` started, holding the resources it declared."""
        self._declared[holder] = resources
        for name in resources:
            self._graph.hold(name, holder)

    def finished(self, holder: Hashable) -> None:
        """``holder`` ended; what it declared is free (the policy knows)."""
        for name in self._declared.pop(holder, ()):
            self._graph.release(name, holder)
            self._wake(name)

    def gave_back(self, holder: Hashable, names: list[str]) -> None:
        """``holder``, still running, gave back the declared resources
        ``names`` (see :meth:`.AdmissionPolicy.release_own_resources`)."""
        declared = self._declared.get(holder)
        if declared is None:
            return
        for name in names:
            if declared.pop(name, None) is not None:
                self._graph.release(name, holder)
                self._wake(name)

    # -- run-time holds ---------------------------------------------------------

    async def acquire(
        self, name: str, access: Access, task: Hashable, owner: Hashable, timeout: float | None
    ) -> bool:
        """Take ``name`` for ``task``, which runs for ``owner`` (a test, or
        the task itself), waiting as long as needed (or ``timeout`` seconds).
        Returns False when the hold is covered already, by what ``owner``
        declared or by an enclosing lock of ``task``, or when every holder
        of ``name`` waits for the shared fixture ``owner`` is setting up
        (nothing to release then)."""
        __tracebackhide__ = True
        covered = self._covering_hold(task, owner, name)
        if covered is not None:
            if access is Access.EXCLUSIVE and covered is Access.SHARED:
                raise RuntimeError(
                    f"lock({name!r}, mode='exclusive'): {_describe(owner)} holds {name!r} "
                    "shared already; a shared hold cannot become exclusive (declare it "
                    "exclusive, or take the exclusive lock first)"
                )
            return False
        if not self._policy.try_hold(name, access, task) and not await self._wait(
            name, access, task, owner, timeout
        ):
            return False
        self._held.setdefault(task, {})[name] = access
        self._owner_of_task[task] = owner
        self._holds_of_owner[owner] = self._holds_of_owner.get(owner, 0) + 1
        self._graph.hold(name, task)
        return True

    def release(self, name: str, task: Hashable) -> None:
        """Give back the run-time hold of ``name`` that ``task`` took."""
        held = self._held.get(task, {})
        del held[name]
        owner = self._owner_of_task[task]
        if not held:
            self._held.pop(task, None)
            del self._owner_of_task[task]
        left = self._holds_of_owner[owner] - 1
        if left:
            self._holds_of_owner[owner] = left
        else:
            del self._holds_of_owner[owner]
        self._graph.release(name, task)
        self._policy.release_hold(name)
        self._wake(name)

    def holds_any(self, owner: Hashable) -> bool:
        """Whether ``owner`` holds a resource, declared or taken at run time
        by one of its tasks: a run-time lock may be waiting for it."""
        return bool(self._declared.get(owner)) or owner in self._holds_of_owner

    def _covering_hold(self, task: Hashable, owner: Hashable, name: str) -> Access | None:
        held = self._held.get(task, {}).get(name)
        if held is not None:
            return held
        return self._declared.get(owner, {}).get(name)

    def _serves_every_holder(self, name: str, owner: Hashable) -> bool:
        """Whether every holder of ``name`` is a test that declared it and
        waits for a shared fixture ``owner`` is setting up.

        The setup then works for those tests, as if one of them had made the
        fixture (a wider fixture's hold is shared with its users), and takes
        the lock without waiting: they cannot go on before it ends."""
        holders = [holder for holder in self._graph.holders(name) if holder is not owner]
        return bool(holders) and all(
            holder in self._declared and self.waits_for_copy_of(holder, owner) for holder in holders
        )

    def recheck(self) -> None:
        """Wake every waiting lock to look at its holders again (a holder
        started to wait for a fixture)."""
        for name in list(self._waiters):
            self._wake(name)

    async def _wait(
        self, name: str, access: Access, task: Hashable, owner: Hashable, timeout: float | None
    ) -> bool:
        """Wait until ``task`` holds ``name`` (True), or until the holders
        are all served by it (False: nothing was taken)."""
        __tracebackhide__ = True
        if self._serves_every_holder(name, owner):
            return False
        circle = self._graph.cycle(task, owner, name)
        if circle is not None:
            raise DeadlockError(_describe_circle(circle))
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        deadline = None if timeout is None else loop.time() + timeout
        self._graph.wait(task, owner, name)
        self._on_waiting(owner)
        try:
            while not self._policy.try_hold(name, access, task):
                if self._serves_every_holder(name, owner):
                    return False
                waiter = loop.create_future()
                self._waiters.setdefault(name, []).append(waiter)
                remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
                try:
                    await asyncio.wait_for(waiter, remaining)
                except asyncio.TimeoutError:
                    holders = ", ".join(_describe(h) for h in self._graph.holders(name))
                    raise TimeoutError(
                        f"lock({name!r}) not acquired within {timeout} s; held by "
                        f"{holders or 'tests still being admitted'}"
                    ) from None
                finally:
                    waiters = self._waiters.get(name, [])
                    if waiter in waiters:
                        waiters.remove(waiter)
            return True
        finally:
            self._graph.stop_waiting(task)
            waited = time.perf_counter() - started
            self._unreported[owner] = self._unreported.get(owner, 0.0) + waited
            self._on_waited(owner, name, waited)

    def take_unreported(self, holder: Hashable) -> float:
        """The seconds ``holder`` waited since the last call: a phase's
        report leaves them out of its duration."""
        return self._unreported.pop(holder, 0.0)

    def _wake(self, name: str) -> None:
        for waiter in self._waiters.pop(name, ()):
            if not waiter.done():
                waiter.set_result(None)


def _describe(holder: Hashable) -> str:
    nodeid = getattr(holder, "nodeid", None)
    if nodeid is not None:
        return str(nodeid)
    current = _task_owners.get(holder)
    return _describe(current) if current is not None else repr(holder)


def _describe_circle(circle: list[tuple[Hashable, str, Hashable]]) -> str:
    steps = [
        f"{_describe(waiter)} waits for {wanted!r}, held by {_describe(holder)}"
        for waiter, wanted, holder in circle
    ]
    return "taking this lock would deadlock: " + "; ".join(steps)


# The test each task holding a run-time lock runs for, to name it.
_task_owners: weakref.WeakKeyDictionary[Hashable, Hashable] = weakref.WeakKeyDictionary()


_standalone: RuntimeLocks | None = None
_current: RuntimeLocks | None = None


def install(locks: RuntimeLocks | None) -> None:
    """Make ``locks`` the run's run-time locks (None: back to standalone)."""
    global _current
    _current = locks


def unreported_wait(holder: Hashable) -> float:
    """Seconds ``holder`` waited for locks that its current phase's report
    should leave out of its duration."""
    locks = _current if _current is not None else _standalone
    if locks is None or not locks._unreported:
        return 0.0
    return locks.take_unreported(holder)


def _locks() -> RuntimeLocks:
    global _standalone
    if _current is not None:
        return _current
    if _standalone is None:
        _standalone = RuntimeLocks(AdmissionPolicy([], max_in_flight=1))
    return _standalone


_other_workers = False


def running_beside_other_workers(others: bool) -> None:
    """Say whether this process is one of several pytest-xdist workers of a
    concurrent run (then a lock of an undeclared resource warns)."""
    global _other_workers
    _other_workers = others


@asynccontextmanager
async def lock(
    name: str, *, mode: str = "exclusive", timeout: float | None = None
) -> AsyncIterator[None]:
    """Hold resource ``name`` for the block, inside a test or a fixture::

        async with pytest_concurrently.lock("db"):
            await migrate()

    The hold is of the same resource that ``@pytest.mark.resource("db")``
    declares: it waits for the declared holders that conflict with it, and
    tests declaring it wait for the block to end. A test that declared the
    resource already holds it; taking it again is immediate.

    :param mode: ``"exclusive"`` (the default) or ``"shared"``.
    :param timeout: seconds to wait at most, then :class:`TimeoutError`.
    :raises DeadlockError: when waiting would close a circle of tests that
        each wait for what the next holds.
    """
    if mode not in ("exclusive", "shared"):
        raise ValueError(f"lock({name!r}): mode must be 'exclusive' or 'shared', got {mode!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"lock(): the name must be a non-empty string, got {name!r}")
    __tracebackhide__ = True
    current = running_test.get()
    task: Hashable = asyncio.current_task()
    owner = current.item if current is not None else task
    if current is not None:
        _task_owners[task] = current.item
    locks = _locks()
    taken = await locks.acquire(name, Access(mode), task, owner, timeout)
    if taken and current is not None and _other_workers:
        # Tests that declare a resource share one worker; a lock taken
        # without declaring it cannot reach the other workers' tests.
        warnings.warn(
            WorkerLocalLockWarning(
                f"pytest_concurrently.lock({name!r}) holds only among the tests of this "
                "pytest-xdist worker; run the tests that take it on one worker: declare "
                f"the resource on them (@pytest.mark.resource({name!r}), held for the "
                "whole test), or give them one xdist_group and run with --dist loadgroup"
            ),
            stacklevel=3,
        )
    try:
        yield
    finally:
        if taken:
            locks.release(name, task)
