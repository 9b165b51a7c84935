"""Plain synchronous tests of the service's pure helpers.

They are not marked ``concurrent`` (there is nothing to wait for) and run
like any other pytest test, in the same session as the concurrent ones. A
test that is not concurrent runs alone, once the tests in flight before it
have finished; this module's name sorts after the others so that it runs
last and does not split the concurrent tests into two waves.
"""

from __future__ import annotations

import pytest
from orders_service import ProtocolError, decode_message, encode_message, processing_delays


def test_processing_delays_are_deterministic_and_bounded() -> None:
    """The same order always takes the same time, within the documented range."""
    delays = [processing_delays(f"customer-{n}", {"widget": n % 5 + 1}) for n in range(200)]

    assert delays == [processing_delays(f"customer-{n}", {"widget": n % 5 + 1}) for n in range(200)]
    assert all(0.5 <= to_paid <= 1.0 and 0.5 <= to_shipped <= 1.5 for to_paid, to_shipped in delays)
    # Different orders must actually differ, or the spread in timing is gone.
    assert len(set(delays)) > 150
    # The order of lines in a cart is not part of the order's identity.
    assert processing_delays("ada", {"a": 1, "b": 2}) == processing_delays("ada", {"b": 2, "a": 1})


def test_messages_round_trip_as_single_lines() -> None:
    """Any message encodes to exactly one line that decodes back to it."""
    message = {"op": "submit", "customer": "line\nbreak", "items": {"widget": 2}}

    line = encode_message(message)

    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode_message(line) == message
    with pytest.raises(ProtocolError):
        decode_message(b"\xff\xfe\n")
