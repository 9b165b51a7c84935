import asyncio

import pytest

from instrumented import InstrumentedEventLoop


@pytest.mark.asyncio
async def test_loop_comes_from_the_factory():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, InstrumentedEventLoop)


@pytest.mark.asyncio
async def test_sleep_on_factory_loop():
    loop = asyncio.get_running_loop()
    before = loop.callbacks_scheduled
    await asyncio.sleep(0.1)
    assert loop.callbacks_scheduled > before
