import pytest
import pytest_asyncio

import inventory


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
    yield
