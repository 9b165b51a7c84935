"""Every use of pytest's private internals, and nothing else.

pytest keeps per-test state in objects that exist once per session: a
``FixtureDef`` holds one cached value and one finalizer list, ``SetupState`` is
one stack of nodes, the capture manager and the logging plugin each hold one
set of per-phase handlers, the warnings plugin opens one ``catch_warnings``
block per test and the assertion rewriter calls module-level hooks. This
package bends each of them just enough for several tests to be in flight at
once. No other module of the plugin imports ``_pytest`` or reads pytest's
underscore attributes, so a pytest upgrade that moves these internals
touches this package alone (``tests/test_pytest_canaries.py`` names the
internals it relies on, one test each).

* :mod:`.fixtures`: per-test and per-scope-node copies of ``FixtureDef``
  (``_fixtureinfo``, ``_initrequest``, ``callspec._arg2scope``).
* :mod:`.async_fixtures`: ``async def`` fixtures through ``pytest_fixture_setup``'s
  own call path and ``FixtureDef.cached_result``.
* :mod:`.lives`: the lives of shared values in pytest's order, and what
  each test therefore needs from the scheduler.
* :mod:`.owners`: wider-scoped fixtures set up and torn down in an owner
  task of their own (``FixtureDef._finalizers``, ``call_fixture_func``).
* :mod:`.setupstate`: a ``SetupState`` (``session._setupstate``) that holds
  several branches of the collection tree, each node torn down where pytest
  would tear it down.
* :mod:`.capture`: the capture manager's ``item_capture``, routed by context,
  and the capture fixtures (``capsys`` and kin) kept per test.
* :mod:`.logs`: the logging plugin's ``_runtest_for``, routed by context, and
  its live log handler's ``emit``, tagged with the test's id.
* :mod:`.warning_capture`: one ``catch_warnings_for_item`` block per
  concurrent phase, warnings filtered and reported per test, and
  ``WarningsRecorder`` (``pytest.warns``, ``recwarn``) recording per test.
* :mod:`.assertion`: the assertion rewriter's ``_reprcompare`` and
  ``_assertion_pass`` hooks, dispatched to the running test.
* :mod:`.phase`: enters the routings above for a concurrent phase.
* :mod:`.terminal`: the terminal reporter's lines for concurrent tests (whole
  ``-v`` lines, letters under their file) and their live lines (``-s``
  output, live logs), tagged with the test's id (``currentfspath``,
  ``write_ensure_prefix``, ``write_fspath_result``).
* :mod:`.protocol`: pytest's ``runtestprotocol`` (``call_and_report``) for a
  concurrent item, and the call of an ``async def`` test body.
* :mod:`.patching`: shadows a method on one plugin object for a block.
* :mod:`.unrewritten`: the plugin's own modules imported as plain Python,
  taken off the assertion rewriter's list (``_must_rewrite``).
* :mod:`.layered_patches`, :mod:`.layered_mocks`: ``monkeypatch`` and
  pytest-mock's ``mocker`` whose patches come off in any order
  (``MonkeyPatch._setattr``/``_setitem``, ``unittest.mock``'s patchers).

Each module's docstring names the internals it bends and where pytest 8.2
and 9.x differ.
"""

# First of all: the modules imported after this are not assertion-rewritten.
from .unrewritten import leave_unrewritten

leave_unrewritten(__name__.rpartition(".")[0])

from .async_fixtures import has_async_fixtures as has_async_fixtures  # noqa: E402
from .async_fixtures import is_async_fixture as is_async_fixture  # noqa: E402
from .async_fixtures import setup_async_fixture as setup_async_fixture  # noqa: E402
from .fixtures import FixtureDef as FixtureDef  # noqa: E402
from .fixtures import FixtureInstances as FixtureInstances  # noqa: E402
from .fixtures import SubRequest as SubRequest  # noqa: E402
from .fixtures import fixture_functions as fixture_functions  # noqa: E402
from .fixtures import requesting_item as requesting_item  # noqa: E402
from .fixtures import update_main_context as update_main_context  # noqa: E402
from .layered_patches import LayeredMonkeyPatch as LayeredMonkeyPatch  # noqa: E402
from .lives import AdmissionNeeds as AdmissionNeeds  # noqa: E402
from .lives import plan_admission as plan_admission  # noqa: E402
from .owners import is_shared_request as is_shared_request  # noqa: E402
from .owners import setup_in_owner as setup_in_owner  # noqa: E402
from .phase import route_phase_capture as route_phase_capture  # noqa: E402
from .protocol import call_async_test as call_async_test  # noqa: E402
from .protocol import is_plain_test_function as is_plain_test_function  # noqa: E402
from .protocol import report_abandoned as report_abandoned  # noqa: E402
from .protocol import run_protocol as run_protocol  # noqa: E402
from .protocol import sync_test_body as sync_test_body  # noqa: E402
from .setupstate import ConcurrentSetupState as ConcurrentSetupState  # noqa: E402
from .setupstate import ItemSegments as ItemSegments  # noqa: E402
from .setupstate import install_setup_state as install_setup_state  # noqa: E402
from .setupstate import node_segments as node_segments  # noqa: E402
from .setupstate import restart_setup_state as restart_setup_state  # noqa: E402
from .terminal import TerminalLines as TerminalLines  # noqa: E402
from .terminal import register_terminal_lines as register_terminal_lines  # noqa: E402
from .terminal import status_line_writer as status_line_writer  # noqa: E402
from .terminal import terminal_lines as terminal_lines  # noqa: E402
from .warning_capture import recording_warnings as recording_warnings  # noqa: E402
from .warning_capture import trim_warning_frames as trim_warning_frames  # noqa: E402

__all__ = [
    "AdmissionNeeds",
    "ConcurrentSetupState",
    "FixtureDef",
    "FixtureInstances",
    "ItemSegments",
    "LayeredMonkeyPatch",
    "SubRequest",
    "TerminalLines",
    "call_async_test",
    "fixture_functions",
    "has_async_fixtures",
    "install_setup_state",
    "is_async_fixture",
    "is_plain_test_function",
    "is_shared_request",
    "node_segments",
    "plan_admission",
    "recording_warnings",
    "register_terminal_lines",
    "report_abandoned",
    "requesting_item",
    "restart_setup_state",
    "route_phase_capture",
    "run_protocol",
    "setup_async_fixture",
    "setup_in_owner",
    "status_line_writer",
    "sync_test_body",
    "terminal_lines",
    "trim_warning_frames",
    "update_main_context",
]
