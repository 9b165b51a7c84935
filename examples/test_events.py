"""System tests of the event service, which loses an event of a kind it is busy with.

Two events of one kind published at the same time make the service drop the
second one (see ``events_service.py``), so tests that publish the same kind
must not overlap. They say so by holding a named resource, and the plugin
never runs two holders of one resource at the same time:

- the invoice tests are a class marked ``@pytest.mark.resource("invoice-events")``;
- the refund tests use the ``refunds`` fixture, which declares
  ``"refund-events"`` with ``@pytest_concurrently.resource``, so every test
  that publishes refunds holds it without a marker of its own.

Every other test publishes a kind of its own and needs no declaration. All
of them, and the rest of the example suite, still run concurrently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import pytest
from events_service import EventsClient, EventsService, EventStream, RequestRejected
from polling import wait_until

import pytest_concurrently

pytestmark = pytest.mark.concurrent

#: How long a test waits for its event: processing takes 0.4 s, and a lost
#: event would never show up at all.
PROCESSED_WITHIN = 2.5


@pytest.fixture(scope="session")
async def events_service() -> AsyncIterator[EventsService]:
    """Start the event service on a free local port; stop it after the last test."""
    service = EventsService()
    await service.start(host="127.0.0.1", port=0)
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def events(events_service: EventsService) -> AsyncIterator[EventsClient]:
    """A connection of the test's own, closed when the test ends."""
    client = await EventsClient.connect(events_service.host, events_service.port)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def event_id(request: pytest.FixtureRequest) -> str:
    """An event id that belongs to this test alone."""
    return f"evt/{request.node.name}"


@pytest_concurrently.resource("refund-events")
@pytest.fixture
def refunds(events: EventsClient) -> EventStream:
    """The refund events; a test that publishes refunds holds ``refund-events``."""
    return events.stream("refund")


@pytest.mark.resource("invoice-events")
class TestInvoices:
    """Every test here publishes invoice events, so they run one at a time."""

    async def test_an_issued_invoice_is_processed(
        self, events: EventsClient, event_id: str
    ) -> None:
        await events.publish("invoice", event_id, {"customer": "ada", "total_cents": 4_500})
        await wait_until(lambda: events.has_processed("invoice", event_id), PROCESSED_WITHIN)

    async def test_a_paid_invoice_is_processed(self, events: EventsClient, event_id: str) -> None:
        await events.publish("invoice", event_id, {"customer": "grace", "paid": True})
        await wait_until(lambda: events.has_processed("invoice", event_id), PROCESSED_WITHIN)

    async def test_a_redelivered_invoice_is_processed_once(
        self, events: EventsClient, event_id: str
    ) -> None:
        await events.publish("invoice", event_id, {"customer": "alan"})
        await events.publish("invoice", event_id, {"customer": "alan"})
        await wait_until(lambda: events.has_processed("invoice", event_id), PROCESSED_WITHIN)
        status = await events.status(event_id)
        assert status.deliveries == 2
        assert (await events.processed("invoice")).count(event_id) == 1


async def test_a_full_refund_is_processed(refunds: EventStream, event_id: str) -> None:
    await refunds.publish(event_id, {"order": "ord-000001", "amount_cents": 1_999})
    await wait_until(lambda: refunds.has_processed(event_id), PROCESSED_WITHIN)


@pytest.mark.parametrize("share", [0.25, 0.5])
async def test_a_partial_refund_is_processed(
    refunds: EventStream, event_id: str, share: float
) -> None:
    await refunds.publish(event_id, {"order": "ord-000002", "share": share})
    await wait_until(lambda: refunds.has_processed(event_id), PROCESSED_WITHIN)


# The tests below publish kinds that no other test publishes, so nothing
# holds them back.


async def test_a_shipment_event_is_processed(events: EventsClient, event_id: str) -> None:
    await events.publish("shipment", event_id, {"order": "ord-000003", "carrier": "post"})
    await wait_until(lambda: events.has_processed("shipment", event_id), PROCESSED_WITHIN)


async def test_an_event_is_in_processing_at_first(events: EventsClient, event_id: str) -> None:
    await events.publish("signup", event_id, {"user": "barbara"})
    assert (await events.status(event_id)).state == "processing"
    await wait_until(lambda: events.has_processed("signup", event_id), PROCESSED_WITHIN)
    assert (await events.status(event_id)).state == "processed"


async def test_events_of_different_kinds_are_processed_side_by_side(
    events: EventsClient, event_id: str
) -> None:
    kinds = ("stock-low", "stock-restocked", "price-changed")
    for kind in kinds:
        await events.publish(kind, f"{event_id}/{kind}", {"sku": "widget"})
    for kind in kinds:
        await wait_until(
            partial(events.has_processed, kind, f"{event_id}/{kind}"), PROCESSED_WITHIN
        )


async def test_an_event_without_a_kind_is_rejected(events: EventsClient, event_id: str) -> None:
    with pytest.raises(RequestRejected, match="'kind' must be a non-empty string"):
        await events.request("publish", id=event_id)
