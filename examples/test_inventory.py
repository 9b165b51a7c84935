"""System tests for the warehouse: reserving stock, shipping it, running out.

Every test restocks a SKU of its own (the ``sku`` fixture), because stock is
shared state and the tests run at the same time.
"""

from __future__ import annotations

import pytest
from orders_service import PAYMENT_LIMIT_CENTS, OrdersClient, RequestRejected, StockLevel
from polling import wait_until

pytestmark = pytest.mark.concurrent


async def test_restock_creates_a_sku(client: OrdersClient, sku: str) -> None:
    """A new SKU starts with what was delivered and nothing reserved."""
    level = await client.restock(sku, 12, price_cents=499)

    assert level == StockLevel(sku=sku, on_hand=12, reserved=0, price_cents=499)
    assert await client.inventory(sku) == level


async def test_restock_adds_to_existing_stock(
    client: OrdersClient, customer: str, sku: str
) -> None:
    """Delivering more of a SKU adds to what is on hand, even while orders are open."""
    await client.restock(sku, 5, price_cents=100)
    order_id = await client.submit(customer, {sku: 4})

    level = await client.restock(sku, 7)

    assert (level.on_hand, level.reserved) == (12, 4)
    await wait_until(lambda: client.reached(order_id, "shipped"))
    assert (await client.inventory(sku)).on_hand == 8


async def test_accepted_order_reserves_stock(client: OrdersClient, customer: str, sku: str) -> None:
    """Stock is reserved as soon as the order is accepted, before payment."""
    await client.restock(sku, 10, price_cents=300)

    order_id = await client.submit(customer, {sku: 3})

    level = await client.inventory(sku)
    assert (level.on_hand, level.reserved, level.available) == (10, 3, 7)
    await wait_until(lambda: client.reached(order_id, "paid"))
    assert (await client.inventory(sku)).reserved == 3


async def test_shipping_takes_stock_off_the_shelf(
    client: OrdersClient, customer: str, sku: str
) -> None:
    """When the order ships, its units leave the warehouse and the reservation ends."""
    await client.restock(sku, 10, price_cents=300)
    await client.submit(customer, {sku: 4})

    async def shelf_emptied() -> StockLevel | None:
        level = await client.inventory(sku)
        return level if level.on_hand < 10 else None

    level = await wait_until(shelf_emptied)

    assert (level.on_hand, level.reserved) == (6, 0)


async def test_order_larger_than_stock_is_rejected(
    client: OrdersClient, customer: str, sku: str
) -> None:
    """An order the warehouse cannot fill is refused outright and reserves nothing."""
    await client.restock(sku, 2, price_cents=300)

    with pytest.raises(RequestRejected, match="insufficient stock"):
        await client.submit(customer, {sku: 3, "widget": 1})

    assert (await client.inventory(sku)).reserved == 0
    assert await client.orders(customer) == []


async def test_last_unit_goes_to_the_first_order(client: OrdersClient, sku: str) -> None:
    """Two customers want the last unit: the first gets it, the second is refused."""
    await client.restock(sku, 1, price_cents=2_500)
    first = await client.submit("early-bird", {sku: 1})

    with pytest.raises(RequestRejected, match="insufficient stock"):
        await client.submit("late-comer", {sku: 1})

    await wait_until(lambda: client.reached(first, "shipped"))
    level = await client.inventory(sku)
    assert (level.on_hand, level.reserved) == (0, 0)


async def test_declined_payment_releases_the_reservation(
    client: OrdersClient, customer: str, sku: str
) -> None:
    """A declined order gives its units back, so another customer can buy them."""
    await client.restock(sku, 1, price_cents=PAYMENT_LIMIT_CENTS + 1)
    order_id = await client.submit(customer, {sku: 1})
    assert (await client.inventory(sku)).available == 0

    await wait_until(lambda: client.reached(order_id, "payment_failed"))

    level = await client.inventory(sku)
    assert (level.on_hand, level.reserved) == (1, 0)


async def test_unknown_sku_is_rejected(client: OrdersClient, customer: str) -> None:
    """Ordering or looking up a SKU the warehouse never stocked is an error."""
    with pytest.raises(RequestRejected, match="unknown SKU"):
        await client.submit(customer, {"no-such-sku": 1})
    with pytest.raises(RequestRejected, match="unknown SKU"):
        await client.inventory("no-such-sku")


@pytest.mark.parametrize("quantity", [0, -1])
async def test_order_quantity_must_be_positive(
    client: OrdersClient, customer: str, quantity: int
) -> None:
    """Zero or negative quantities are refused rather than turned into refunds."""
    with pytest.raises(RequestRejected, match="positive integer"):
        await client.submit(customer, {"widget": quantity})
