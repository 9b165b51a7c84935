import logging

import anyio
import pytest

from helpers import wait_until

pytestmark = pytest.mark.anyio


def relay_records(caplog, nick):
    return [
        record
        for record in caplog.records
        if record.name == "chatroom" and f"from={nick}:" in record.getMessage()
    ]


async def test_relayed_message_is_logged(caplog, client, room):
    caplog.set_level(logging.INFO, logger="chatroom")
    await client.send(f"SAY {room} logged line")
    await client.receive_until(lambda l: l.endswith("logged line"))
    [record] = relay_records(caplog, client.nick)
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"relay room={room} from={client.nick}: logged line"


async def test_dropped_message_is_logged_as_warning(caplog, client, room):
    await client.send(f"SAY {room} spam spam")
    assert await client.receive_until(lambda l: l.startswith("ERR")) == "ERR banned"
    await wait_until(
        lambda: any(client.nick in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    )
    assert not relay_records(caplog, client.nick)


async def test_nick_change_is_logged(caplog, connect, unique_name):
    caplog.set_level(logging.INFO, logger="chatroom")
    nick = unique_name("renamed")
    user = await connect()
    assert await user.request(f"NICK {nick}") == f"OK {nick}"
    await wait_until(lambda: any(f"is now known as {nick}" in m for m in caplog.messages))


@pytest.mark.parametrize("count", [1, 3])
async def test_each_message_is_logged_once(caplog, client, room, count):
    caplog.set_level(logging.INFO, logger="chatroom")
    for n in range(count):
        await client.send(f"SAY {room} note {n}")
        await anyio.sleep(0.05)
    await client.receive_until(lambda l: l.endswith(f"note {count - 1}"))
    assert len(relay_records(caplog, client.nick)) == count


async def test_disconnect_is_logged(caplog, chat_server, connect, unique_name):
    with caplog.at_level(logging.INFO, logger="chatroom"):
        nick = unique_name("leaver")
        user = await connect(nick)
        await user.aclose()
        await wait_until(lambda: nick not in chat_server.clients)
        await wait_until(lambda: f"connection to {nick} closed" in caplog.text)
