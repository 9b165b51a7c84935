"""The per-test protocol of a concurrent item, and the call of its body.

pytest runs a test through ``runtestprotocol``: ``call_and_report`` for the
setup, call and teardown phases, ``show_test_item`` for ``--setup-show``, and
afterwards it lets the fixture values go by setting the item's ``_request`` to
False and its ``funcargs`` to None. :func:`run_protocol` does the same for a
concurrent item, with one warnings block for the whole phase instead of one
per test (see :mod:`.warning_capture`). :func:`call_async_test` calls an
``async def`` test body with the arguments named in ``_fixtureinfo``, as
``pytest_pyfunc_call`` does.

pytest versions: pytest 8.4 added ``show_test_item``'s ``add_space``
argument; ``call_and_report(item, when, log, **kwds)`` is the same from 8.2
to 9.x.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import Any, cast

import pytest
from _pytest.runner import call_and_report, show_test_item
from _pytest.unittest import TestCaseFunction

from .. import bridge, routing
from .warning_capture import report_warnings, test_filters

__all__ = ["call_async_test", "is_plain_test_function", "report_abandoned", "run_protocol"]

# The reports of a test whose reports are held until it ends.
_held_key = pytest.StashKey[list[pytest.TestReport]]()


def run_protocol(
    item: pytest.Item,
    entering: Callable[[str], object],
    keep_failed: Callable[[pytest.Item, list[pytest.TestReport]], bool] | None = None,
) -> None:
    """pytest's ``runtestprotocol`` for one concurrent item, with its
    ``pytest_runtest_logstart`` and ``pytest_runtest_logfinish``.

    :param entering: called with ``"call"`` between the setup and the call
        phase, and with ``"teardown"`` before the teardown phase; the runner
        stops counting the test as cancellable there, so an interrupted
        session still tears every fixture down.
    :param keep_failed: when given, the test's reports are held until it
        ends; if one of them failed and ``keep_failed(item, reports)``
        returns True, none is logged (the test will run again), otherwise
        all are logged then.
    """
    ihook = item.ihook
    held: list[pytest.TestReport] | None = None if keep_failed is None else []
    if held is not None:
        item.stash[_held_key] = held
    with routing.capturing_warnings(test_filters(item)) as warnings_issued:
        if held is None:
            ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        try:
            _run_phases(item, entering, held)
        except BaseException:
            # The session is ending (Ctrl-C, pytest.exit): report what ran.
            if held is not None:
                _log_held(item, held)
            raise
        if held is not None:
            assert keep_failed is not None
            if any(report.failed for report in held) and keep_failed(item, held):
                _forget_held(item)
                return  # it runs again later; only that run is reported
            _log_held(item, held)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    report_warnings(item, warnings_issued)


def _forget_held(item: pytest.Item) -> None:
    if _held_key in item.stash:
        del item.stash[_held_key]


def _log_held(item: pytest.Item, held: list[pytest.TestReport]) -> None:
    _forget_held(item)
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in held:
        item.ihook.pytest_runtest_logreport(report=report)


def report_abandoned(item: pytest.Item, phase: str, message: str) -> None:
    """Finish ``item``'s reports when the runner gave up on it in the middle
    of ``phase`` (its code never resumes): that phase fails with
    ``message``, and, unless that was the teardown, a teardown report
    follows, since reporters pair it with the setup one (though the test's
    own fixtures are not torn down)."""
    held = item.stash.get(_held_key, None)
    if held is not None:
        _log_held(item, held)
    ihook = item.ihook

    def fail() -> None:
        pytest.fail(message, pytrace=False)

    call = pytest.CallInfo.from_call(fail, when=phase)  # type: ignore[arg-type]
    ihook.pytest_runtest_logreport(report=ihook.pytest_runtest_makereport(item=item, call=call))
    if phase != "teardown":
        call = pytest.CallInfo.from_call(lambda: None, when="teardown")
        ihook.pytest_runtest_logreport(report=ihook.pytest_runtest_makereport(item=item, call=call))
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


def _run_phases(
    item: pytest.Item,
    entering: Callable[[str], object],
    held: list[pytest.TestReport] | None,
) -> None:
    reported: list[str] = []
    try:
        _setup_and_call(item, reported, held, entering)
    finally:
        entering("teardown")
        try:
            if "setup" in reported:
                _call_and_report(item, "teardown", held, nextitem=None)
            else:
                _tear_down_unreported(item)
        finally:
            # As runtestprotocol: let the fixture values go.
            if hasattr(item, "_request"):
                with_request = cast(Any, item)
                with_request._request = False
                with_request.funcargs = None


def _call_and_report(
    item: pytest.Item, when: str, held: list[pytest.TestReport] | None, **kwds: Any
) -> pytest.TestReport:
    report = call_and_report(item, when, log=held is None, **kwds)  # type: ignore[arg-type]
    if held is not None:
        held.append(report)
    return report


def _tear_down_unreported(item: pytest.Item) -> None:
    # A setup that ended the session (pytest.exit, an interruption) has no
    # report. pytest reports no teardown for such a test either, and plugins
    # that pair the two (pytest-rerunfailures) fail on a teardown report, or
    # even a teardown makereport, without a setup one. The fixtures are
    # still torn down, so their scopes end; their errors go unreported, as
    # pytest's own end-of-session teardown leaves them.
    with contextlib.suppress(Exception):
        item.ihook.pytest_runtest_teardown(item=item, nextitem=None)


def _setup_and_call(
    item: pytest.Item,
    reported: list[str],
    held: list[pytest.TestReport] | None,
    entering: Callable[[str], object],
) -> None:
    if hasattr(item, "_request") and not item._request:
        # Only when an item runs twice (pytest-rerunfailures does that).
        cast(Any, item)._initrequest()
    report = _call_and_report(item, "setup", held)
    reported.append("setup")
    if not report.passed:
        return
    setup_only = item.config.getoption("setuponly", False)
    if item.config.getoption("setupshow", False):
        _show_test_item(item, setup_only=setup_only)
    if not setup_only:
        entering("call")
        _call_and_report(item, "call", held)


def _show_test_item(item: pytest.Item, *, setup_only: bool) -> None:
    # pytest 8.4 added the add_space argument.
    show: Callable[..., None] = show_test_item
    if "add_space" in inspect.signature(show).parameters:
        show(item, add_space=not setup_only)
    else:
        show(item)


def call_async_test(item: pytest.Function) -> None:
    """Run an ``async def`` test function's body through the bridge."""
    __tracebackhide__ = True
    funcargs = item.funcargs
    arguments = {name: funcargs[name] for name in item._fixtureinfo.argnames}
    result = item.obj(**arguments)
    if inspect.isawaitable(result):
        bridge.wait_for(result)


def sync_test_body(item: pytest.Function) -> Callable[[], object]:
    """A sync test function's body with its arguments, to call on another
    thread."""
    funcargs = item.funcargs
    arguments = {name: funcargs[name] for name in item._fixtureinfo.argnames}
    return functools.partial(item.obj, **arguments)


def is_plain_test_function(item: pytest.Item) -> bool:
    """Whether ``item`` is a test function whose body pytest calls through
    ``pytest_pyfunc_call`` (not a ``unittest`` test case)."""
    return isinstance(item, pytest.Function) and not isinstance(item, TestCaseFunction)
