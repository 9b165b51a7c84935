"""The system the examples of the docs test against, small enough to run anywhere.

The pages show tests of "a running service": an order service that ships
what it is sent after a while, an event service that loses an event of a
kind it is busy with, a pool of browsers. An example that names
``with=docs_service`` in its annotation (see "Executed examples" in
``docs/design.md``) runs with this module beside it and every name in
``__all__`` imported, so the examples can use ``start_service()``,
and the fixtures below without showing where they come from.

Everything runs in the test process on the session's loop, with timers
rather than tasks (a task a test starts and leaves running would be stopped
as a stray). Times are short, so that the examples run in a fraction of a
second.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

__all__ = [
    "Browser",
    "BrowserPool",
    "Connection",
    "EventStream",
    "EventsService",
    "OrdersService",
    "browser",
    "client",
    "db",
    "event_id",
    "events",
    "service",
    "start_events_service",
    "start_service",
]


#: Seconds from an order's submission to its payment, and to its shipping.
PAID_AFTER = 0.05
SHIPPED_AFTER = 0.15


class OrdersService:
    """Takes orders, which are paid and then shipped after a while."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._timers: list[asyncio.TimerHandle] = []
        self.running = True

    def connect(self) -> Connection:
        """A connection, to be used as ``async with service.connect() as c:``."""
        return Connection(self)

    async def restart(self) -> None:
        """Stop taking requests for a moment; a request meanwhile fails."""
        self.running = False
        await asyncio.sleep(0.1)
        self.running = True

    async def stop(self) -> None:
        self.running = False
        for timer in self._timers:
            timer.cancel()

    def _submit(self, sku: str, quantity: int) -> str:
        order = f"order-{next(self._ids)}-{sku}-{quantity}"
        self._states[order] = "received"
        loop = asyncio.get_running_loop()
        for delay, state in ((PAID_AFTER, "paid"), (SHIPPED_AFTER, "shipped")):
            self._timers.append(loop.call_later(delay, self._states.__setitem__, order, state))
        return order

    def _state(self, order: str) -> str:
        return self._states[order]


class Connection:
    """One client's connection to an :class:`OrdersService`."""

    def __init__(self, service: OrdersService) -> None:
        self._service = service
        self.closed = False

    async def __aenter__(self) -> Connection:
        await self._request()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _request(self) -> None:
        await asyncio.sleep(0.01)
        if self.closed:
            raise ConnectionError("the connection is closed")
        if not self._service.running:
            raise ConnectionError("the service is not running")

    async def submit(self, sku: str, quantity: int = 1) -> str:
        """Place an order; returns its id."""
        await self._request()
        return self._service._submit(sku, quantity)

    async def state(self, order: str) -> str:
        """``received``, ``paid`` or ``shipped``."""
        await self._request()
        return self._service._state(order)

    async def is_shipped(self, order: str) -> bool:
        return await self.state(order) == "shipped"

    async def ping(self) -> str:
        await self._request()
        return "pong"

    async def close(self) -> None:
        self.closed = True


async def start_service() -> OrdersService:
    """Start an order service."""
    await asyncio.sleep(0.01)
    return OrdersService()


class EventsService:
    """Processes published events, and loses one that arrives while another
    of its kind is in processing (as if it were a redelivery of that one)."""

    PROCESSING_SECONDS = 0.2

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._processed: dict[str, list[str]] = {}

    async def publish(self, kind: str, event_id: str) -> None:
        await asyncio.sleep(0.01)
        if kind in self._busy:
            return  # the flaw: taken for a redelivery, and dropped
        self._busy.add(kind)
        asyncio.get_running_loop().call_later(self.PROCESSING_SECONDS, self._done, kind, event_id)

    def _done(self, kind: str, event_id: str) -> None:
        self._busy.discard(kind)
        self._processed.setdefault(kind, []).append(event_id)

    async def has_processed(self, kind: str, event_id: str) -> bool:
        await asyncio.sleep(0)
        return event_id in self._processed.get(kind, [])

    def stream(self, kind: str) -> EventStream:
        """The events of one kind."""
        return EventStream(self, kind)


class EventStream:
    """The events of one kind of an :class:`EventsService`."""

    def __init__(self, service: EventsService, kind: str) -> None:
        self._service = service
        self.kind = kind

    async def publish(self, event_id: str) -> None:
        await self._service.publish(self.kind, event_id)

    async def has_processed(self, event_id: str) -> bool:
        return await self._service.has_processed(self.kind, event_id)


async def start_events_service() -> EventsService:
    """Start an event service."""
    await asyncio.sleep(0.01)
    return EventsService()


class Browser:
    """A browser of a :class:`BrowserPool`; one test drives it at a time."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.in_use = False

    async def open(self, path: str) -> str:
        await asyncio.sleep(0.05)
        return f"<title>{path}</title>"


class BrowserPool:
    """A fixed number of browsers, which cost too much to start per test."""

    def __init__(self, size: int) -> None:
        self._free = [Browser(number) for number in range(size)]

    @asynccontextmanager
    async def take(self) -> AsyncIterator[Browser]:
        """A free browser for the block. There is no waiting for one: the
        tests that use the pool must never be more than its size."""
        if not self._free:
            raise RuntimeError("every browser of the pool is in use")
        browser = self._free.pop()
        try:
            yield browser
        finally:
            self._free.append(browser)

    async def close(self) -> None:
        await asyncio.sleep(0)


@pytest.fixture(scope="session")
async def service() -> AsyncIterator[OrdersService]:
    """An order service for the whole session."""
    server = await start_service()
    yield server
    await server.stop()


@pytest.fixture
async def client(service: OrdersService) -> AsyncIterator[Connection]:
    """A connection of the test's own."""
    async with service.connect() as connection:
        yield connection


@pytest.fixture(scope="session")
async def events() -> EventsService:
    """An event service for the whole session."""
    return await start_events_service()


@pytest.fixture
def event_id(request: pytest.FixtureRequest) -> str:
    """An event id of the test's own."""
    return f"evt/{request.node.name}"


@pytest.fixture
async def browser() -> Browser:
    """A browser, for the examples that only name one."""
    return Browser(0)


@pytest.fixture
async def db() -> str:
    """A database, for the examples that only name one."""
    return "db"
