"""In-process publish/subscribe broker and a small connection pool.

Both are bound to the event loop they were created on, like most asyncio
client libraries: using them from another loop raises ``RuntimeError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any


class LoopBound:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()

    def _check_loop(self) -> None:
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError(f"{type(self).__name__} is attached to a different event loop")


@dataclass(frozen=True)
class Message:
    topic: str
    payload: Any
    sequence: int


class Subscription:
    def __init__(self, broker: Broker, pattern: str) -> None:
        self.broker = broker
        self.pattern = pattern
        self.queue: asyncio.Queue[Message] = asyncio.Queue()

    def matches(self, topic: str) -> bool:
        return fnmatch.fnmatchcase(topic, self.pattern)

    async def next(self, timeout: float = 1.0) -> Message:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def drain(self, quiet: float = 0.3) -> list[Message]:
        """Everything delivered until nothing arrives for ``quiet`` seconds."""
        messages = []
        while True:
            try:
                messages.append(await asyncio.wait_for(self.queue.get(), quiet))
            except asyncio.TimeoutError:
                return messages

    def close(self) -> None:
        self.broker._subscriptions.discard(self)


class Broker(LoopBound):
    """Delivers published messages to matching subscriptions, in order,
    after a small delivery latency."""

    def __init__(self, latency: float = 0.05) -> None:
        super().__init__()
        self.latency = latency
        self.published = 0
        self.delivered: defaultdict[str, int] = defaultdict(int)
        self._subscriptions: set[Subscription] = set()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._check_loop()
        self._dispatcher = asyncio.create_task(self._dispatch())

    async def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None

    def subscribe(self, pattern: str) -> Subscription:
        self._check_loop()
        subscription = Subscription(self, pattern)
        self._subscriptions.add(subscription)
        return subscription

    @contextlib.asynccontextmanager
    async def subscription(self, pattern: str) -> AsyncIterator[Subscription]:
        sub = self.subscribe(pattern)
        try:
            yield sub
        finally:
            sub.close()

    async def publish(self, topic: str, payload: Any) -> int:
        self._check_loop()
        if self._dispatcher is None:
            raise RuntimeError("broker is not running")
        self.published += 1
        await self._outbox.put(Message(topic, payload, self.published))
        return self.published

    async def _dispatch(self) -> None:
        while True:
            message = await self._outbox.get()
            await asyncio.sleep(self.latency)
            for sub in list(self._subscriptions):
                if sub.matches(message.topic):
                    sub.queue.put_nowait(message)
                    self.delivered[message.topic] += 1


class Pool(LoopBound):
    """A fixed-size pool of fake database connections."""

    def __init__(self, size: int = 3, query_time: float = 0.1) -> None:
        super().__init__()
        self.size = size
        self.query_time = query_time
        self.queries = 0
        self._free: asyncio.Queue[int] = asyncio.Queue()
        for conn_id in range(size):
            self._free.put_nowait(conn_id)
        self.closed = False

    @property
    def available(self) -> int:
        return self._free.qsize()

    @contextlib.asynccontextmanager
    async def acquire(self, timeout: float = 2.0) -> AsyncIterator[Connection]:
        self._check_loop()
        if self.closed:
            raise RuntimeError("pool is closed")
        conn_id = await asyncio.wait_for(self._free.get(), timeout)
        try:
            yield Connection(self, conn_id)
        finally:
            self._free.put_nowait(conn_id)

    async def close(self) -> None:
        self._check_loop()
        for _ in range(self.size):
            await asyncio.wait_for(self._free.get(), 5)
        self.closed = True


class Connection:
    def __init__(self, pool: Pool, conn_id: int) -> None:
        self.pool = pool
        self.id = conn_id

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        self.pool._check_loop()
        await asyncio.sleep(self.pool.query_time)
        self.pool.queries += 1
        if not sql.lstrip().upper().startswith("SELECT"):
            raise ValueError("only SELECT is supported")
        return [args]
