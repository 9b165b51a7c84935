"""System tests for cancelling orders, grouped in a class.

The ``concurrent`` mark on the module covers the methods of the class too.
"""

from __future__ import annotations

import asyncio

import pytest
from orders_service import OrdersClient, RequestRejected, processing_delays
from polling import wait_until

pytestmark = pytest.mark.concurrent


class TestCancellation:
    """An order can be cancelled until it ships, and never after."""

    async def test_received_order_can_be_cancelled(
        self, client: OrdersClient, customer: str
    ) -> None:
        """Cancelling before payment ends the order for good."""
        items = {"widget": 1}
        order_id = await client.submit(customer, items)

        status = await client.cancel(order_id)
        assert status.states == ["received", "cancelled"]

        # Wait past the moment the order would have shipped, to show that
        # the background processing really stopped.
        await asyncio.sleep(sum(processing_delays(customer, items)) + 0.2)
        assert (await client.status(order_id)).states == ["received", "cancelled"]

    async def test_paid_order_can_be_cancelled(self, client: OrdersClient, customer: str) -> None:
        """A paid order that has not shipped yet can still be cancelled."""
        order_id = await client.submit(customer, {"gadget": 1})
        await wait_until(lambda: client.reached(order_id, "paid"))

        status = await client.cancel(order_id)

        assert status.states == ["received", "paid", "cancelled"]

    async def test_cancelling_releases_the_reservation(
        self, client: OrdersClient, customer: str, sku: str
    ) -> None:
        """Cancelled units go back on offer without ever leaving the warehouse."""
        await client.restock(sku, 5, price_cents=700)
        order_id = await client.submit(customer, {sku: 5})
        await wait_until(lambda: client.reached(order_id, "paid"))

        await client.cancel(order_id)

        level = await client.inventory(sku)
        assert (level.on_hand, level.reserved) == (5, 0)

    async def test_shipped_order_cannot_be_cancelled(
        self, client: OrdersClient, customer: str
    ) -> None:
        """Once the parcel has left, cancelling is refused and the order stays shipped."""
        order_id = await client.submit(customer, {"gizmo": 1})
        await wait_until(lambda: client.reached(order_id, "shipped"))

        with pytest.raises(RequestRejected, match="is shipped and cannot be cancelled"):
            await client.cancel(order_id)

        assert (await client.status(order_id)).state == "shipped"

    async def test_order_cannot_be_cancelled_twice(
        self, client: OrdersClient, customer: str
    ) -> None:
        """A second cancel is refused, and the first one still stands."""
        order_id = await client.submit(customer, {"widget": 3})
        await wait_until(lambda: client.reached(order_id, "paid"))
        await client.cancel(order_id)

        with pytest.raises(RequestRejected, match="is cancelled"):
            await client.cancel(order_id)

    async def test_declined_order_cannot_be_cancelled(
        self, client: OrdersClient, customer: str, sku: str
    ) -> None:
        """An order whose payment failed is already over; there is nothing to cancel."""
        await client.restock(sku, 1, price_cents=60_000)
        order_id = await client.submit(customer, {sku: 1})
        await wait_until(lambda: client.reached(order_id, "payment_failed"))

        with pytest.raises(RequestRejected, match="is payment_failed"):
            await client.cancel(order_id)

    async def test_cancelled_order_stays_listed(self, client: OrdersClient, customer: str) -> None:
        """Cancelled orders remain in the customer's history next to shipped ones."""
        kept = await client.submit(customer, {"widget": 1})
        dropped = await client.submit(customer, {"gadget": 1})
        await client.cancel(dropped)

        await wait_until(lambda: client.reached(kept, "shipped"))

        assert await client.orders(customer) == [kept, dropped]
        assert (await client.status(dropped)).state == "cancelled"
