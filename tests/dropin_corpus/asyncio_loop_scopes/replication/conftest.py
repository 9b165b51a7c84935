import asyncio

import pytest_asyncio

from pubsub import Broker


class Replica:
    """Follows a primary broker and keeps the last value of every key."""

    def __init__(self, primary: Broker) -> None:
        self.primary = primary
        self.state: dict[str, object] = {}
        self._subscription = primary.subscribe("kv.*")
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            message = await self._subscription.queue.get()
            self.state[message.topic.removeprefix("kv.")] = message.payload

    async def wait_for(self, key: str, value: object, timeout: float = 2.0) -> None:
        async def poll() -> None:
            while self.state.get(key) != value:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), timeout)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._subscription.close()


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def primary():
    broker = Broker(latency=0.1)
    await broker.start()
    yield broker
    await broker.close()


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def replica(primary):
    follower = Replica(primary)
    yield follower
    await follower.close()
