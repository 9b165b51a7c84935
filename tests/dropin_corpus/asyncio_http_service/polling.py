"""Waiting helpers shared by the tests."""

import asyncio


async def wait_for(predicate, timeout=2.0, interval=0.05):
    """Poll an async predicate until it returns something truthy, and return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
