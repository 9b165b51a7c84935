import pytest_asyncio

from pubsub import Broker


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=[0.0, 0.05], ids=["instant", "delayed"]
)
async def broker(request):
    b = Broker(latency=request.param)
    await b.start()
    yield b
    await b.close()
