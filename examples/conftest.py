"""Fixtures for the order-service system tests.

One service runs for the whole session, every test gets its own connection,
and names that tests create are unique per test so that tests running at the
same time never see each other's orders or stock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from orders_service import OrdersClient, OrdersService


@pytest.fixture(scope="session")
async def orders_service() -> AsyncIterator[OrdersService]:
    """Start the order service on a free local port; stop it after the last test."""
    service = OrdersService()
    await service.start(host="127.0.0.1", port=0)
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def client(orders_service: OrdersService) -> AsyncIterator[OrdersClient]:
    """A connection of the test's own, closed when the test ends."""
    # One connection per test, like separate users, so a test that breaks
    # its connection cannot disturb the others.
    client = await OrdersClient.connect(orders_service.host, orders_service.port)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def customer(request: pytest.FixtureRequest) -> str:
    """A customer name that belongs to this test alone."""
    # Derived from the test's name rather than random, so the orders (and so
    # their processing times) are the same on every run.
    return f"customer/{request.node.name}"


@pytest.fixture
def sku(request: pytest.FixtureRequest) -> str:
    """A SKU name that belongs to this test alone; the test must restock it."""
    return f"sku/{request.node.name}"
