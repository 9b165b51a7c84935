import anyio
import pytest

import chatroom
from chatroom import Command, ProtocolError, parse_command

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("PING", Command("PING")),
        ("NICK alice", Command("NICK", ("alice",))),
        ("SAY #lobby hello there, world", Command("SAY", ("#lobby", "hello there, world"))),
    ],
)
def test_parse_command(line, expected):
    assert parse_command(line) == expected


@pytest.mark.parametrize("line", ["   ", "FLY away", "SAY #lobby"])
def test_parse_command_rejects(line):
    with pytest.raises(ProtocolError):
        parse_command(line)


async def test_ping(client):
    assert await client.request("PING") == "PONG"


async def test_echo_keeps_spaces_and_unicode(client):
    text = "héllo   wörld  ✓"
    assert await client.request(f"ECHO {text}") == f"ECHO {text}"


def test_format_message():
    assert chatroom.format_message("bob", "#x", "hi") == "<bob@#x> hi"


async def test_unknown_command_keeps_connection_open(client):
    assert await client.request("DANCE") == "ERR unknown command DANCE"
    assert await client.request("PING") == "PONG"


@pytest.mark.parametrize("nick", ["9lives", "admin"])
async def test_bad_nicks_are_refused(connect, nick):
    anonymous = await connect()
    assert await anonymous.request(f"NICK {nick}") == "ERR bad-nick"


async def test_nick_taken(connect, client):
    other = await connect()
    assert await other.request(f"NICK {client.nick}") == "ERR nick-taken"


@pytest.mark.xfail(reason="nicknames are compared case-sensitively (issue #17)")
async def test_nick_taken_ignores_case(connect, client):
    other = await connect()
    assert await other.request(f"NICK {client.nick.upper()}") == "ERR nick-taken"


async def test_quit_says_bye_and_frees_the_nick(chat_server, client):
    assert await client.request("QUIT") == "BYE"
    with pytest.raises((anyio.EndOfStream, anyio.IncompleteRead)):
        await client.receive()
    await wait_for_departure(chat_server, client.nick)


async def test_idle_connections_are_closed(client):
    assert await client.request("IDLE 0.2") == "OK idle"
    with anyio.fail_after(2):
        assert await client.receive() == "BYE idle"


async def wait_for_departure(server, nick):
    with anyio.fail_after(2):
        while nick in server.clients:
            await anyio.sleep(0.05)


@pytest.mark.skip(reason="TLS listener not implemented yet")
async def test_tls_handshake(chat_server):
    raise NotImplementedError
