"""pytest-xdist: every worker runs its share of a concurrent run concurrently.

Two plugins, registered when pytest-xdist is in use:

- :class:`XdistController`, on the controller, schedules with
  :class:`._plugin_adapters.xdist_controller.ShareScheduling`: each worker
  gets its whole share at once, tests tied by a resource or a group go to
  one worker, and ``isolated`` tests run last with every worker idle. At
  the end it sums the workers' figures for the end-of-run line.
- :class:`XdistWorker`, on each worker, tells the controller what it needs
  to split the run (before the collection goes out), and carries the
  worker's side of pytest-xdist's protocol while its share runs.

``docs/xdist.md`` says what holds across workers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import _pytest_adapter as adapter
from ._plugin_adapters import xdist_controller, xdist_worker
from .marking import ISOLATED_MARKER, TestPlan
from .resources import declared_resources
from .stats import RunStats, RunTotals

#: The ``workeroutput`` key of a worker's figures.
TOTALS_OUTPUT = "concurrently_totals"


class XdistController:
    """pytest-xdist's controller side of a concurrent run.

    :param on_output: called with each worker's output of a concurrent run.
    """

    def __init__(self, on_output: Callable[[dict[str, Any]], None]) -> None:
        self._on_output = on_output
        self._scheduling: xdist_controller.ShareScheduling | None = None
        # Share information can come (on execnet's thread) before the
        # scheduler is made.
        self._infos: dict[Any, dict[str, Any]] = {}
        self.worker_outputs: list[dict[str, Any]] = []
        """Every worker's ``workeroutput`` from a concurrent run."""

    @pytest.hookimpl(wrapper=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Iterator[None]:
        """Wrap the scheduler pytest-xdist made for the ``--dist`` mode."""
        inner = yield
        dist = str(config.getvalue("dist"))
        if inner is None or dist not in xdist_controller.SHARED_DIST_MODES:
            return inner
        self._scheduling = xdist_controller.ShareScheduling(inner, dist)
        for node, info in list(self._infos.items()):
            self._scheduling.worker_info(node, info)
        return self._scheduling

    def pytest_configure_node(self, node: Any) -> None:
        """Tell the worker how its tests will come, and listen for what it
        says about them."""
        dist = str(node.config.getvalue("dist"))
        node.workerinput[xdist_controller.SHARES_INPUT] = dist in xdist_controller.SHARED_DIST_MODES
        xdist_controller.listen_to_worker(node, self._worker_info)

    def _worker_info(self, node: Any, info: dict[str, Any]) -> None:
        self._infos[node] = info
        if self._scheduling is not None:
            self._scheduling.worker_info(node, info)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """Note which tests a worker has begun: a crash names one of them."""
        if self._scheduling is not None:
            self._scheduling.test_started(nodeid)

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Keep a finished worker's figures."""
        output = getattr(node, "workeroutput", None) or {}
        if TOTALS_OUTPUT in output:
            self.worker_outputs.append(output[TOTALS_OUTPUT])
            self._on_output(output[TOTALS_OUTPUT])

    def totals(self) -> RunTotals | None:
        """The workers' figures summed; None if no worker ran concurrently."""
        parts = [
            RunTotals(**{**output["totals"], "alone": tuple(map(tuple, output["totals"]["alone"]))})
            for output in self.worker_outputs
        ]
        return RunTotals.sum(parts) if parts else None


class XdistWorker:
    """A pytest-xdist worker's side of a concurrent run.

    :param plan_of: how a collected item runs.
    """

    def __init__(self, interactor: Any, plan_of: Callable[[pytest.Item], TestPlan]) -> None:
        self._interactor = interactor
        self._plan_of = plan_of
        self._link: xdist_worker.WorkerLink | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Before pytest-xdist sends the collection: send what the
        controller needs to split the run."""
        items = session.items
        plans = [self._plan_of(item) for item in items]
        concurrent = any(plan.concurrent for plan in plans)
        keys: dict[int, list[str]] = {}
        alone: list[int] = []
        if concurrent:
            for index, (item, plan) in enumerate(zip(items, plans, strict=True)):
                tied = _ties(item, plan)
                if tied:
                    keys[index] = tied
                if item.get_closest_marker(ISOLATED_MARKER) is not None:
                    alone.append(index)
        self._interactor.sendevent(
            xdist_controller.SHARE_INFO_EVENT, concurrent=concurrent, keys=keys, alone=alone
        )

    @property
    def worker_id(self) -> str:
        """This worker's id, such as ``gw0``."""
        return str(self._interactor.workerid)

    def batches(
        self, session: pytest.Session, on_stop: Callable[[str], None]
    ) -> Iterator[list[pytest.Item]]:
        """The tests the controller sends, a command's worth at a time."""
        self._link = xdist_worker.WorkerLink(self._interactor, session.items, on_stop)
        try:
            yield from self._link.batches()
        finally:
            self._link = None

    @staticmethod
    def send_totals(config: pytest.Config, stats: RunStats, extra: dict[str, Any]) -> None:
        """Put this worker's figures where the controller gets them."""
        output = {"totals": dataclasses.asdict(stats.totals()), **extra}
        config.workeroutput[TOTALS_OUTPUT] = output  # type: ignore[attr-defined]

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """Start the test's clock, for pytest-xdist's durations."""
        if self._link is not None:
            self._link.began(nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Before pytest-xdist sends it: tag the report with its own test."""
        if self._link is not None:
            self._link.reporting(report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """After pytest-xdist's own event: say the test is done."""
        if self._link is not None:
            self._link.finished(nodeid)


def _ties(item: pytest.Item, plan: TestPlan) -> list[str]:
    """What ties ``item`` to other tests across workers: the resources it
    or its fixtures hold, and being in a group."""
    names = {need.name for need in plan.resources}
    for _, function in adapter.fixture_functions(item):
        names.update(need.name for need in declared_resources(function))
    tied = [f"resource:{name}" for name in sorted(names)]
    if plan.group is not None:
        # Tests of one group overlap no test of another: all go to one worker.
        tied.append("groups")
    return tied
