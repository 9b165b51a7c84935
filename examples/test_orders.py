"""System tests for the life of an order: submitted, paid, shipped.

Each test sends a request and then polls until the service shows the effect,
so it spends a second or two waiting. Marked ``concurrent``, the waits
overlap and the module takes about as long as its slowest test.
"""

from __future__ import annotations

import asyncio
from functools import partial

import pytest
from orders_service import (
    PAYMENT_LIMIT_CENTS,
    OrdersClient,
    OrderState,
    OrderStatus,
    RequestRejected,
    processing_delays,
)
from polling import wait_until

pytestmark = pytest.mark.concurrent

# Timers may fire a hair early on coarse clocks and late on a busy machine;
# the slack on the late side is generous because a slow CI box is not a bug.
EARLY = 0.01
LATE = 0.75


async def test_submitted_order_gets_an_id_and_starts_received(
    client: OrdersClient, customer: str
) -> None:
    """A new order is acknowledged at once and is later paid."""
    order_id = await client.submit(customer, {"widget": 1})

    assert order_id.startswith("ord-")
    assert (await client.status(order_id)).state == "received"
    await wait_until(lambda: client.reached(order_id, "paid"))


async def test_order_is_paid_then_shipped(client: OrdersClient, customer: str) -> None:
    """An order goes through received, paid and shipped, in that order."""
    order_id = await client.submit(customer, {"widget": 2})

    await wait_until(lambda: client.reached(order_id, "shipped"))

    assert (await client.status(order_id)).states == ["received", "paid", "shipped"]


async def test_states_are_only_ever_seen_in_order(client: OrdersClient, customer: str) -> None:
    """Polling never observes an order going back to an earlier state."""
    order_id = await client.submit(customer, {"gadget": 1})
    seen: list[str] = []

    async def shipped() -> bool:
        state = (await client.status(order_id)).state
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "shipped"

    await wait_until(shipped, interval=0.05)

    assert seen == ["received", "paid", "shipped"]


async def test_processing_follows_the_published_delays(client: OrdersClient, customer: str) -> None:
    """The service takes exactly as long per step as processing_delays() says."""
    items = {"gizmo": 1, "widget": 3}
    to_paid, to_shipped = processing_delays(customer, items)
    order_id = await client.submit(customer, items)

    status = await wait_until(
        lambda: _status_if(client, order_id, "shipped"), timeout=to_paid + to_shipped + 3
    )

    paid_at = status.entered_at("paid")
    shipped_at = status.entered_at("shipped")
    assert to_paid - EARLY <= paid_at <= to_paid + LATE
    assert to_shipped - EARLY <= shipped_at - paid_at <= to_shipped + LATE


async def test_order_is_not_paid_before_its_delay(client: OrdersClient, customer: str) -> None:
    """Halfway through the payment delay the order is still only received."""
    items = {"gadget": 2}
    to_paid, _ = processing_delays(customer, items)
    order_id = await client.submit(customer, items)

    await asyncio.sleep(to_paid / 2)

    assert (await client.status(order_id)).state == "received"
    await wait_until(lambda: client.reached(order_id, "paid"))


async def test_total_is_priced_from_the_catalog(
    client: OrdersClient, customer: str, sku: str
) -> None:
    """The order total is quantity times the SKU's unit price, summed over lines."""
    await client.restock(sku, 10, price_cents=1_234)
    order_id = await client.submit(customer, {sku: 3, "widget": 2})

    status = await wait_until(lambda: _status_if(client, order_id, "paid"))

    assert status.total_cents == 3 * 1_234 + 2 * 250


async def test_orders_are_listed_per_customer(client: OrdersClient, customer: str) -> None:
    """A customer's orders are listed oldest first, and all of them ship."""
    ids = [await client.submit(customer, {"widget": n}) for n in (1, 2, 3)]

    assert await client.orders(customer) == ids
    await asyncio.gather(
        *(wait_until(partial(client.reached, order_id, "shipped")) for order_id in ids)
    )


async def test_one_connection_serves_parallel_requests(client: OrdersClient, customer: str) -> None:
    """Requests made at the same time over one connection each get their own answer."""
    carts = [{"widget": 1}, {"gadget": 1}, {"gizmo": 1}, {"widget": 2, "gadget": 2}]

    ids = await asyncio.gather(*(client.submit(customer, cart) for cart in carts))

    assert len(set(ids)) == len(carts)
    totals = {(await client.status(order_id)).total_cents for order_id in ids}
    assert totals == {250, 1_999, 4_500, 2 * 250 + 2 * 1_999}
    await asyncio.gather(
        *(wait_until(partial(client.reached, order_id, "paid")) for order_id in ids)
    )


async def test_payment_over_the_limit_is_declined(
    client: OrdersClient, customer: str, sku: str
) -> None:
    """An order above the payment limit ends in payment_failed, not paid."""
    await client.restock(sku, 5, price_cents=PAYMENT_LIMIT_CENTS)
    order_id = await client.submit(customer, {sku: 2})

    await wait_until(lambda: client.reached(order_id, "payment_failed"))

    assert (await client.status(order_id)).states == ["received", "payment_failed"]


async def test_order_at_the_payment_limit_is_accepted(
    client: OrdersClient, customer: str, sku: str
) -> None:
    """The payment limit itself is still allowed."""
    await client.restock(sku, 5, price_cents=PAYMENT_LIMIT_CENTS)
    order_id = await client.submit(customer, {sku: 1})

    await wait_until(lambda: client.reached(order_id, "paid"))


async def test_declined_order_never_ships(client: OrdersClient, customer: str, sku: str) -> None:
    """Waiting for a declined order to ship times out with a helpful message."""
    await client.restock(sku, 5, price_cents=PAYMENT_LIMIT_CENTS + 1)
    order_id = await client.submit(customer, {sku: 1})

    with pytest.raises(AssertionError, match=r"still failing after \d+ attempts over 2\.5 s"):
        await wait_until(lambda: client.reached(order_id, "shipped"), timeout=2.5)

    assert (await client.status(order_id)).state == "payment_failed"


async def test_unknown_order_is_rejected(client: OrdersClient) -> None:
    """Asking about an order that was never placed is an error, not a crash."""
    with pytest.raises(RequestRejected, match="unknown order"):
        await client.status("ord-999999")

    assert await client.ping()


@pytest.mark.parametrize(
    ("cart", "total_cents"),
    [
        ({"widget": 1}, 250),
        ({"widget": 4}, 1_000),
        ({"gadget": 1}, 1_999),
        ({"gizmo": 2}, 9_000),
        ({"widget": 1, "gadget": 1}, 2_249),
        ({"widget": 2, "gadget": 1, "gizmo": 1}, 6_999),
    ],
    ids=["one-widget", "four-widgets", "gadget", "two-gizmos", "widget-and-gadget", "mixed"],
)
async def test_cart_ships(
    client: OrdersClient, customer: str, cart: dict[str, int], total_cents: int
) -> None:
    """Typical carts are priced correctly and make it all the way to shipped."""
    order_id = await client.submit(customer, cart)

    status = await wait_until(lambda: _status_if(client, order_id, "shipped"))

    assert status.total_cents == total_cents
    assert status.customer == customer


async def _status_if(client: OrdersClient, order_id: str, state: OrderState) -> OrderStatus | None:
    """Return the order's status once it is in ``state``, else None."""
    status = await client.status(order_id)
    return status if status.state == state else None
