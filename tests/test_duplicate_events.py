"""The duplicate-event example: declared resources keep events of one kind apart.

``examples/events_service.py`` loses an event that is published while
another of its kind is in processing, and ``examples/test_events.py``
declares the kinds its tests share as resources. These tests run that
module in an inner session as it is, and again with the declarations taken
out, which must lose an event.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import intervals, peak_overlap, read_events

pytestmark = pytest.mark.usefixtures("recorder")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: What the inner session needs from the example suite.
SOURCES = ("line_protocol.py", "events_service.py", "polling.py", "test_events.py")

#: Records each test's start and end, and the fixtures it uses, which tell
#: the kinds of events it publishes.
RECORDING_CONFTEST = """
import pytest
from recorder import record


@pytest.fixture(autouse=True)
def span(request):
    record(request.node.nodeid, "start", fixtures=list(request.fixturenames))
    yield
    record(request.node.nodeid, "end")
"""

#: A resource declaration on one line of its own, as a marker or on a fixture.
DECLARATION = re.compile(r"^[ \t]*@pytest(?:\.mark|_concurrently)\.resource\(.*\)\n", re.MULTILINE)


def copy_example(pytester: pytest.Pytester, *, declared: bool) -> None:
    files = {Path(name).stem: (EXAMPLES / name).read_text() for name in SOURCES}
    if not declared:
        files["test_events"], removed = DECLARATION.subn("", files["test_events"])
        # The invoice class's marker and the refunds fixture's decorator.
        assert removed == 2
    pytester.makepyfile(**files)
    pytester.makeconftest(RECORDING_CONFTEST)


def same_kind_tests(pytester: pytest.Pytester) -> dict[str, list[str]]:
    """The tests that publish invoices and those that publish refunds; the
    example's other tests publish kinds of their own."""
    starts = [event for event in read_events(pytester) if event.what == "start"]
    uses = {event.name: event.extra["fixtures"] for event in starts}
    return {
        "invoice": [name for name in uses if "::TestInvoices::" in name],
        "refund": [
            name for name, used in uses.items() if isinstance(used, list) and "refunds" in used
        ],
    }


def test_tests_holding_a_kind_never_overlap_and_the_others_do(
    pytester: pytest.Pytester,
) -> None:
    copy_example(pytester, declared=True)
    result = pytester.runpytest()
    spans = intervals(read_events(pytester))
    outcomes = result.parseoutcomes()
    assert result.ret == pytest.ExitCode.OK
    assert outcomes["passed"] == len(spans)
    kinds = same_kind_tests(pytester)
    invoices, refunds = kinds["invoice"], kinds["refund"]
    others = sorted(set(spans) - set(invoices) - set(refunds))
    assert len(invoices) >= 2
    assert len(refunds) >= 2
    assert others

    def peak(names: list[str]) -> int:
        return peak_overlap({name: spans[name] for name in names})

    assert peak(invoices) == 1
    assert peak(refunds) == 1
    # Holding one kind keeps nobody else waiting.
    assert any(peak([invoice, refund]) == 2 for invoice in invoices for refund in refunds)
    assert any(peak([invoice, other]) == 2 for invoice in invoices for other in others)
    assert any(peak([refund, other]) == 2 for refund in refunds for other in others)


def test_without_the_declarations_an_event_is_lost(pytester: pytest.Pytester) -> None:
    copy_example(pytester, declared=False)
    result = pytester.runpytest()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1
    kinds = same_kind_tests(pytester)
    failed = [line.split()[1] for line in result.outlines if line.startswith("FAILED ")]
    assert len(failed) == outcomes["failed"]
    # Only tests that share a kind fail, and each because its event never
    # showed up as processed.
    assert set(failed) <= {*kinds["invoice"], *kinds["refund"]}
    lost = [
        line
        for line in result.outlines
        if re.match(r"E\s+AssertionError: eventually: still failing after \d+ attempts", line)
    ]
    assert len(lost) == len(failed)
    assert result.stdout.str().count("not yet: the predicate returned False") >= len(failed)
