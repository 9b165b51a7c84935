"""System tests for the wire protocol itself, over raw connections.

These talk to the service without :class:`OrdersClient`, the way a
misbehaving client would, and check that it answers errors instead of
dropping the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from orders_service import OrdersService, decode_message, encode_message

pytestmark = pytest.mark.concurrent

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def raw(orders_service: OrdersService) -> AsyncIterator[Connection]:
    """A bare TCP connection to the service, closed when the test ends."""
    reader, writer = await asyncio.open_connection(orders_service.host, orders_service.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        await writer.wait_closed()


async def _exchange(raw: Connection, line: bytes) -> dict[str, object]:
    reader, writer = raw
    writer.write(line)
    await writer.drain()
    # A wait_for keeps a service that swallows the line from hanging the run.
    return decode_message(await asyncio.wait_for(reader.readline(), timeout=5))


async def test_malformed_line_gets_an_error_and_the_connection_survives(raw: Connection) -> None:
    """Garbage on the wire is answered with an error, and the next request still works."""
    answer = await _exchange(raw, b"this is not json\n")
    assert answer["ok"] is False
    assert "not valid JSON" in str(answer["error"])

    assert await _exchange(raw, encode_message({"op": "ping"})) == {"ok": True, "pong": True}


async def test_non_object_message_is_rejected(raw: Connection) -> None:
    """Valid JSON that is not an object is refused."""
    answer = await _exchange(raw, b"[1, 2, 3]\n")

    assert answer == {"ok": False, "error": "a message must be a JSON object"}


async def test_unknown_op_is_rejected(raw: Connection) -> None:
    """An op the service does not know is named in the error."""
    answer = await _exchange(raw, encode_message({"op": "refund"}))

    assert answer == {"ok": False, "error": "unknown op 'refund'"}


async def test_order_placed_over_raw_protocol_ships(raw: Connection) -> None:
    """The protocol alone is enough to place an order and follow it to shipped."""
    placed = await _exchange(
        raw, encode_message({"op": "submit", "customer": "raw-client", "items": {"gadget": 1}})
    )
    assert placed["ok"] is True

    # Poll by hand here, as a client written in another language would.
    states: list[object] = []
    for _ in range(50):
        status = await _exchange(raw, encode_message({"op": "status", "id": placed["id"]}))
        states.append(status["state"])
        if status["state"] == "shipped":
            break
        await asyncio.sleep(0.1)
    assert states[-1] == "shipped"
