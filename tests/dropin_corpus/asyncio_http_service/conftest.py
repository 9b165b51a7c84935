import asyncio
import os

import pytest
import pytest_asyncio
from pytest_asyncio import is_async_test

import inventory


def pytest_collection_modifyitems(items):
    # Every async test talks to the one server the session starts, so they
    # all run in the session's loop.
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if is_async_test(item):
            item.add_marker(session_loop, append=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server():
    srv = inventory.InventoryServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def client(server):
    conn = await inventory.InventoryClient.connect(server.host, server.port)
    yield conn
    await conn.close()


@pytest_asyncio.fixture(loop_scope="session")
async def second_client(server):
    conn = await inventory.InventoryClient.connect(server.host, server.port)
    yield conn
    await conn.close()


@pytest.fixture(autouse=True)
def _fresh_parser_cache():
    # The request parser is memoised for the life of the process; give every
    # test a cold cache, the way a freshly started server has one.
    inventory.parse_request_line.cache_clear()


@pytest_asyncio.fixture(loop_scope="session")
async def metrics_sink():
    """The optional metrics collector, when one runs on this machine."""
    port = int(os.environ.get("INVENTORY_METRICS_PORT", "1"))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        pytest.skip(f"no metrics collector on 127.0.0.1:{port}")
    yield reader, writer
    writer.close()
    await writer.wait_closed()
