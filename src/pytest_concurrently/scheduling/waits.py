"""Who holds which resource, and who waits for which: the one place a
deadlock can form.

Admission takes everything a test declared at once, so declared resources
can never deadlock. A lock taken at run time (``pytest_concurrently.lock``)
is taken while the test already holds other things, so two tests can each
hold what the other waits for. :class:`WaitGraph` sees that coming: before
a holder starts to wait, :meth:`WaitGraph.cycle` follows the holders of the
resource it wants, what they wait for, and so on, and reports the circle it
would close.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

__all__ = ["WaitGraph"]


class WaitGraph:
    """Holders of resources, and what each waiting task wants.

    A holder is a *node*: a test that declared a resource (it holds it
    until it ends) or a task that took a lock at run time. Each waiting task
    belongs to an owner (its test, or itself outside any test): a test is
    held up while any of its tasks waits, so a circle may pass from a
    resource a test declared to what one of its tasks waits for.
    """

    def __init__(self) -> None:
        self._holders: dict[str, Counter[Hashable]] = {}
        self._wants: dict[Hashable, str] = {}  # waiting task -> resource
        self._waiting_tasks: dict[Hashable, set[Hashable]] = {}  # owner -> tasks
        self._owner: dict[Hashable, Hashable] = {}  # waiting task -> owner

    def hold(self, name: str, node: Hashable) -> None:
        """Record that ``node`` holds ``name`` (once more)."""
        self._holders.setdefault(name, Counter())[node] += 1

    def release(self, name: str, node: Hashable) -> None:
        """Record that ``node`` holds ``name`` once less."""
        holders = self._holders.get(name)
        if holders is None or not holders[node]:
            return
        holders[node] -= 1
        if not holders[node]:
            del holders[node]
            if not holders:
                del self._holders[name]

    def holders(self, name: str) -> list[Hashable]:
        """Who holds ``name`` now."""
        return list(self._holders.get(name, ()))

    def wait(self, task: Hashable, owner: Hashable, name: str) -> None:
        """Record that ``task``, of ``owner``, waits for ``name``."""
        self._wants[task] = name
        self._owner[task] = owner
        self._waiting_tasks.setdefault(owner, set()).add(task)

    def stop_waiting(self, task: Hashable) -> None:
        """Record that ``task`` waits no more."""
        self._wants.pop(task, None)
        owner = self._owner.pop(task, None)
        tasks = self._waiting_tasks.get(owner, set())
        tasks.discard(task)
        if not tasks:
            self._waiting_tasks.pop(owner, None)

    def cycle(
        self, task: Hashable, owner: Hashable, name: str
    ) -> list[tuple[Hashable, str, Hashable]] | None:
        """The circle that ``task`` (of ``owner``) waiting for ``name`` would
        close, as (waiting owner, resource, holder) steps starting with
        ``owner``; None when there is none."""
        path: list[tuple[Hashable, str, Hashable]] = []
        seen: set[Hashable] = set()

        def waits_of(node: Hashable) -> list[tuple[Hashable, str]]:
            if node in self._wants:
                return [(self._owner[node], self._wants[node])]
            return [(node, self._wants[t]) for t in self._waiting_tasks.get(node, ())]

        def follow(waiter: Hashable, wanted: str) -> bool:
            for holder in self._holders.get(wanted, ()):
                path.append((waiter, wanted, holder))
                if holder in (task, owner):
                    return True
                if holder not in seen:
                    seen.add(holder)
                    if any(follow(*step) for step in waits_of(holder)):
                        return True
                path.pop()
            return False

        return path if follow(owner, name) else None
