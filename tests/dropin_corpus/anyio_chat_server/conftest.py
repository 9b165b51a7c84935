import uuid
from contextlib import AsyncExitStack

import anyio
import pytest

import chatroom
from helpers import wait_until


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
async def chat_server(anyio_backend):
    """One server for the whole run, on an ephemeral loopback port."""
    server = chatroom.ChatServer(history_size=5)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve, listener)
        yield server
        tg.cancel_scope.cancel()


@pytest.fixture(autouse=True)
def default_policy():
    """Tests may ban words or reserve nicks; start every test from the defaults."""
    chatroom.reset_policy()
    yield
    chatroom.reset_policy()


@pytest.fixture
def unique_name():
    """Nicknames and rooms must not collide with other tests on the shared server."""

    def make(prefix):
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
async def connect(chat_server):
    """Open connections to the server; all of them are closed after the test."""
    async with AsyncExitStack() as stack:

        async def open_client(nick=None):
            stream = await anyio.connect_tcp(*chat_server.address)
            client = chatroom.ChatClient(stream)
            stack.push_async_callback(client.aclose)
            greeting = await client.receive()
            assert greeting == "WELCOME chatroom"
            if nick is not None:
                assert await client.request(f"NICK {nick}") == f"OK {nick}"
                client.nick = nick
                await wait_until(lambda: nick in chat_server.clients)
            return client

        yield open_client


@pytest.fixture
async def client(connect, unique_name):
    return await connect(unique_name("user"))


@pytest.fixture
async def room(client, unique_name):
    """A fresh room that `client` has joined."""
    name = "#" + unique_name("room").replace("room-", "r")
    assert await client.request(f"JOIN {name}") == f"JOINED {name}"
    return name
