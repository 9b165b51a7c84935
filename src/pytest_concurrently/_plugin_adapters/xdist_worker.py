"""On a pytest-xdist worker: receive tests as whole shares, and speak
pytest-xdist's protocol for tests that run concurrently.

pytest-xdist's worker runs one test at a time: it takes the next index off
its queue, runs the test, tags every report with that index and says the
test is done. A worker of a concurrent run instead takes each ``runtests``
command whole (see :mod:`.xdist_controller`) and runs those tests
concurrently, so :class:`WorkerLink` tags each report with its own test's
index and says each test is done when its protocol ends.

Relies on pytest-xdist's worker internals, read in 3.5 and tested with 3.8: the
``WorkerInteractor`` plugin (found by its ``channel``, ``sendevent``,
``torun`` and ``workerid`` attributes, since its class lives in a module run
through execnet) and the ``item_index`` it tags reports with, its commands
(``runtests``, ``runtests_all``, ``shutdown``, ``steal``) and events
(``runtest_protocol_complete``, ``unscheduled``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from .xdist_controller import SHARES_INPUT

# Put in the command queue when the controller will send no more tests.
_END = None
# What execnet hands the callback when the channel closes.
_CLOSED = object()


def worker_interactor(config: pytest.Config) -> Any | None:
    """pytest-xdist's worker plugin, on a worker; None elsewhere."""
    if not hasattr(config, "workerinput"):
        return None
    for plugin in config.pluginmanager.get_plugins():
        if all(hasattr(plugin, name) for name in ("channel", "sendevent", "torun", "workerid")):
            return plugin
    return None


class WorkerLink:
    """This worker's side of a concurrent run under pytest-xdist.

    :param interactor: pytest-xdist's worker plugin.
    :param items: the session's collected items, which the controller's
        indices refer to.
    :param on_stop: called, from another thread, when the controller stops
        the run (``-x`` on another worker, say) while tests are left.
    """

    def __init__(
        self, interactor: Any, items: Sequence[pytest.Item], on_stop: Callable[[str], None]
    ) -> None:
        self._interactor = interactor
        self._items = items
        self._index_of = {item.nodeid: index for index, item in enumerate(items)}
        self._on_stop = on_stop
        self._commands: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        # Tests received and not yet done; the lock guards it between
        # execnet's thread and the main one.
        self._left: set[int] = set()
        self._lock = threading.Lock()
        self._began: dict[str, float] = {}
        self.in_shares = bool(interactor.config.workerinput.get(SHARES_INPUT))
        """Whether the controller sends each worker's tests as shares; if
        not (``--dist each``), its one command is every test."""

    def batches(self) -> Iterator[list[pytest.Item]]:
        """The tests the controller sends, one command's tests at a time, in
        collection order, until it sends no more."""
        self._interactor.channel.setcallback(self._on_command, endmarker=_CLOSED)
        while True:
            indices = self._commands.get()
            if indices is _END:
                return
            yield [self._items[index] for index in sorted(indices)]

    def _on_command(self, command: Any) -> None:
        # Called in execnet's receiving thread: hand over and return.
        if command is _CLOSED:
            self._commands.put(_END)
            return
        name, kwargs = command
        if name == "runtests":
            indices = list(kwargs["indices"])
        elif name == "runtests_all":
            indices = list(range(len(self._items)))
        elif name == "shutdown":
            with self._lock:
                left = bool(self._left)
            if self.in_shares and left:
                # The controller sends shutdown once every test is done,
                # or to stop the run early.
                self._on_stop("the run was stopped by pytest-xdist's controller")
            self._commands.put(_END)
            return
        elif name == "steal":
            # Tests already handed to a concurrent run are never given back.
            self._interactor.sendevent("unscheduled", indices=[])
            return
        else:
            return
        with self._lock:
            self._left.update(indices)
        self._commands.put(indices)

    def began(self, nodeid: str) -> None:
        """``pytest_runtest_logstart``: start the test's clock."""
        self._began[nodeid] = time.perf_counter()

    def reporting(self, nodeid: str) -> None:
        """``pytest_runtest_logreport`` (before pytest-xdist's): the report
        goes out tagged with its own test's index."""
        index = self._index_of.get(nodeid)
        if index is not None:
            self._interactor.item_index = index

    def finished(self, nodeid: str) -> None:
        """``pytest_runtest_logfinish``: tell the controller the test is done."""
        index = self._index_of.get(nodeid)
        if index is None:
            return
        began = self._began.pop(nodeid, None)
        duration = time.perf_counter() - began if began is not None else 0.0
        with self._lock:
            self._left.discard(index)
        self._interactor.sendevent("runtest_protocol_complete", item_index=index, duration=duration)
