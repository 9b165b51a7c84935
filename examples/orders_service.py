"""A small order-processing service that the example system tests run against.

The service speaks a line-based JSON protocol over TCP: the client sends one
JSON object per line, such as ``{"op": "submit", "customer": "ada",
"items": {"widget": 2}}``, and gets one JSON object per line back, either
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

Orders move through their states in the background, the way a real backend
hands work to a payment provider and then to a warehouse: ``received`` ->
``paid`` -> ``shipped``. An order whose payment is declined ends in
``payment_failed`` instead, and one cancelled before it ships ends in
``cancelled``.

How long each step takes depends only on the order's contents (see
:func:`processing_delays`), so a test run is reproducible however the tests
interleave. Stock is reserved when an order is accepted and leaves the shelf
when it ships.

Only the standard library is used. :class:`OrdersService` is the server and
:class:`OrdersClient` a matching client.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from line_protocol import (
    LineClient,
    LineServer,
    ProtocolError,
    RequestRejected,
    decode_message,
    encode_message,
)

__all__ = [
    "DEFAULT_CATALOG",
    "PAYMENT_LIMIT_CENTS",
    "OrderState",
    "OrderStatus",
    "OrdersClient",
    "OrdersService",
    "ProtocolError",
    "RequestRejected",
    "StockLevel",
    "decode_message",
    "encode_message",
    "processing_delays",
]

OrderState = Literal["received", "paid", "shipped", "payment_failed", "cancelled"]
"""The states an order can be in; the last three are final."""

PAYMENT_LIMIT_CENTS = 50_000
"""Orders whose total is above this are declined by the (simulated) payment provider."""

DEFAULT_CATALOG: Mapping[str, tuple[int, int]] = {
    "widget": (1_000_000, 250),
    "gadget": (1_000_000, 1_999),
    "gizmo": (1_000_000, 4_500),
}
"""Stock the service starts with: SKU -> (units on hand, unit price in cents).

The quantities are large so that tests which do not care about inventory can
share these SKUs without ever running them out.
"""

_CANCELLABLE: tuple[OrderState, ...] = ("received", "paid")


def processing_delays(customer: str, items: Mapping[str, int]) -> tuple[float, float]:
    """Return how long an order takes to be paid, then to be shipped, in seconds.

    The first value (0.5-1.0 s) is the time from submission until payment
    clears; the second (0.5-1.5 s) the time from payment until the parcel
    ships. Both come from a digest of the order's contents rather than from a
    random generator, so the same order always takes the same time, no matter
    in which order concurrently running tests submit theirs.
    """
    key = json.dumps([customer, sorted(items.items())])
    digest = hashlib.sha256(key.encode()).digest()
    pay_fraction = int.from_bytes(digest[:4], "big") / 2**32
    ship_fraction = int.from_bytes(digest[4:8], "big") / 2**32
    return round(0.5 + 0.5 * pay_fraction, 3), round(0.5 + 1.0 * ship_fraction, 3)


@dataclass(frozen=True)
class StockLevel:
    """Inventory of one SKU as reported by the service."""

    sku: str
    on_hand: int
    """Units physically in the warehouse."""
    reserved: int
    """Units promised to accepted orders that have not shipped yet."""
    price_cents: int

    @property
    def available(self) -> int:
        """Units that a new order can still claim."""
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class OrderStatus:
    """An order as reported by the service."""

    id: str
    customer: str
    state: OrderState
    total_cents: int
    history: tuple[tuple[OrderState, float], ...]
    """Each state the order entered, with seconds since submission."""

    @property
    def states(self) -> list[OrderState]:
        """The states the order went through, oldest first."""
        return [state for state, _ in self.history]

    def entered_at(self, state: OrderState) -> float:
        """Seconds after submission at which the order entered ``state``.

        Raises:
            KeyError: if the order never entered that state.
        """
        for seen, offset in self.history:
            if seen == state:
                return offset
        raise KeyError(state)


@dataclass
class _Stock:
    on_hand: int
    reserved: int
    price_cents: int


@dataclass
class _Order:
    id: str
    customer: str
    items: dict[str, int]
    total_cents: int
    submitted_at: float
    state: OrderState = "received"
    history: list[tuple[OrderState, float]] = field(default_factory=list)


class OrdersService(LineServer):
    """The order-processing server.

    Start it with :meth:`start` (or ``async with``), read :attr:`host` and
    :attr:`port` to connect, and :meth:`stop` it when done.
    """

    def __init__(self, catalog: Mapping[str, tuple[int, int]] = DEFAULT_CATALOG) -> None:
        """Create a stopped service whose warehouse holds ``catalog``.

        Args:
            catalog: SKU -> (units on hand, unit price in cents).
        """
        super().__init__()
        self._stock = {
            sku: _Stock(on_hand=on_hand, reserved=0, price_cents=price)
            for sku, (on_hand, price) in catalog.items()
        }
        self._orders: dict[str, _Order] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._next_id = 1

    async def _abandon_work(self) -> None:
        for worker in list(self._workers.values()):
            worker.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def __aenter__(self) -> OrdersService:
        """Start the service on a free local port."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop the service."""
        await self.stop()

    def _dispatch(self, request: Mapping[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"pong": True}
        if op == "restock":
            return self._restock(request)
        if op == "inventory":
            return self._stock_report(_text(request, "sku"))
        if op == "submit":
            return self._submit(request)
        if op == "status":
            return _report(self._order(_text(request, "id")))
        if op == "cancel":
            return self._cancel(self._order(_text(request, "id")))
        if op == "orders":
            customer = _text(request, "customer")
            return {"ids": [o.id for o in self._orders.values() if o.customer == customer]}
        raise RequestRejected(f"unknown op {op!r}")

    def _restock(self, request: Mapping[str, Any]) -> dict[str, Any]:
        sku = _text(request, "sku")
        quantity = _count(request, "quantity")
        price = request.get("price_cents")
        stock = self._stock.get(sku)
        if stock is None:
            if not isinstance(price, int) or isinstance(price, bool) or price <= 0:
                raise RequestRejected(f"new SKU {sku!r} needs a positive price_cents")
            stock = self._stock[sku] = _Stock(on_hand=0, reserved=0, price_cents=price)
        elif price is not None:
            raise RequestRejected(f"SKU {sku!r} already has a price")
        stock.on_hand += quantity
        return self._stock_report(sku)

    def _stock_report(self, sku: str) -> dict[str, Any]:
        stock = self._stock.get(sku)
        if stock is None:
            raise RequestRejected(f"unknown SKU {sku!r}")
        return {
            "sku": sku,
            "on_hand": stock.on_hand,
            "reserved": stock.reserved,
            "price_cents": stock.price_cents,
        }

    def _submit(self, request: Mapping[str, Any]) -> dict[str, Any]:
        customer = _text(request, "customer")
        raw_items = request.get("items")
        if not isinstance(raw_items, dict) or not raw_items:
            raise RequestRejected("an order needs at least one item")
        items = {str(sku): _count(raw_items, sku) for sku in raw_items}
        for sku, quantity in items.items():
            stock = self._stock.get(sku)
            if stock is None:
                raise RequestRejected(f"unknown SKU {sku!r}")
            if stock.on_hand - stock.reserved < quantity:
                raise RequestRejected(f"insufficient stock for {sku!r}")
        # Checked every line before touching any, so a rejected order
        # reserves nothing.
        for sku, quantity in items.items():
            self._stock[sku].reserved += quantity
        loop = asyncio.get_running_loop()
        order = _Order(
            id=f"ord-{self._next_id:06d}",
            customer=customer,
            items=items,
            total_cents=sum(self._stock[s].price_cents * q for s, q in items.items()),
            submitted_at=loop.time(),
        )
        self._next_id += 1
        self._orders[order.id] = order
        self._enter(order, "received")
        worker = loop.create_task(self._process(order), name=f"process {order.id}")
        self._workers[order.id] = worker
        worker.add_done_callback(lambda _: self._workers.pop(order.id, None))
        return {"id": order.id}

    async def _process(self, order: _Order) -> None:
        to_paid, to_shipped = processing_delays(order.customer, order.items)
        await asyncio.sleep(to_paid)
        if order.total_cents > PAYMENT_LIMIT_CENTS:
            self._release(order)
            self._enter(order, "payment_failed")
            return
        self._enter(order, "paid")
        await asyncio.sleep(to_shipped)
        for sku, quantity in order.items.items():
            stock = self._stock[sku]
            stock.reserved -= quantity
            stock.on_hand -= quantity
        self._enter(order, "shipped")

    def _cancel(self, order: _Order) -> dict[str, Any]:
        if order.state not in _CANCELLABLE:
            raise RequestRejected(f"order {order.id} is {order.state} and cannot be cancelled")
        worker = self._workers.pop(order.id, None)
        if worker is not None:
            worker.cancel()
        self._release(order)
        self._enter(order, "cancelled")
        return _report(order)

    def _release(self, order: _Order) -> None:
        for sku, quantity in order.items.items():
            self._stock[sku].reserved -= quantity

    def _enter(self, order: _Order, state: OrderState) -> None:
        order.state = state
        elapsed = asyncio.get_running_loop().time() - order.submitted_at
        order.history.append((state, round(elapsed, 3)))

    def _order(self, order_id: str) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            raise RequestRejected(f"unknown order {order_id!r}")
        return order


def _text(request: Mapping[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise RequestRejected(f"{key!r} must be a non-empty string")
    return value


def _count(request: Mapping[str, Any], key: str) -> int:
    value = request.get(key)
    # bool is an int subclass, and `true` units of a widget is not an order.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise RequestRejected(f"{key!r} must be a positive integer")
    return value


def _report(order: _Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "customer": order.customer,
        "state": order.state,
        "total_cents": order.total_cents,
        "history": [list(entry) for entry in order.history],
    }


class OrdersClient(LineClient):
    """A client for :class:`OrdersService` over one TCP connection (see
    :class:`line_protocol.LineClient`)."""

    async def ping(self) -> bool:
        """Return True if the service answers."""
        answer = await self.request("ping")
        return bool(answer.get("pong"))

    async def restock(self, sku: str, quantity: int, price_cents: int | None = None) -> StockLevel:
        """Add units of ``sku`` to the warehouse; a new SKU needs a price."""
        fields: dict[str, object] = {"sku": sku, "quantity": quantity}
        if price_cents is not None:
            fields["price_cents"] = price_cents
        return _stock_level(await self.request("restock", **fields))

    async def inventory(self, sku: str) -> StockLevel:
        """Return the current stock of ``sku``."""
        return _stock_level(await self.request("inventory", sku=sku))

    async def submit(self, customer: str, items: Mapping[str, int]) -> str:
        """Place an order and return its id."""
        answer = await self.request("submit", customer=customer, items=dict(items))
        return str(answer["id"])

    async def status(self, order_id: str) -> OrderStatus:
        """Return the current status of an order."""
        return _order_status(await self.request("status", id=order_id))

    async def reached(self, order_id: str, state: OrderState) -> bool:
        """Return True once the order is in ``state``; handy as a polling predicate."""
        return (await self.status(order_id)).state == state

    async def cancel(self, order_id: str) -> OrderStatus:
        """Cancel an order that has not shipped yet and return its new status."""
        return _order_status(await self.request("cancel", id=order_id))

    async def orders(self, customer: str) -> list[str]:
        """Return the ids of a customer's orders, oldest first."""
        answer = await self.request("orders", customer=customer)
        return [str(order_id) for order_id in answer["ids"]]


def _stock_level(answer: Mapping[str, Any]) -> StockLevel:
    return StockLevel(
        sku=answer["sku"],
        on_hand=answer["on_hand"],
        reserved=answer["reserved"],
        price_cents=answer["price_cents"],
    )


def _order_status(answer: Mapping[str, Any]) -> OrderStatus:
    return OrderStatus(
        id=answer["id"],
        customer=answer["customer"],
        state=answer["state"],
        total_cents=answer["total_cents"],
        history=tuple((state, offset) for state, offset in answer["history"]),
    )
