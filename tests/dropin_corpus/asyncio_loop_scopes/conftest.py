import pytest_asyncio

from pubsub import Broker


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def broker():
    b = Broker(latency=0.05)
    await b.start()
    yield b
    await b.close()
