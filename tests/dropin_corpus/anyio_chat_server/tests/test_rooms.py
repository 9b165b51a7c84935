import anyio
import pytest

import chatroom
from helpers import collect, nothing_arrives, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
async def member(connect, unique_name, room):
    """A second user in the same room as `client`."""
    other = await connect(unique_name("member"))
    assert await other.request(f"JOIN {room}") == f"JOINED {room}"
    return other


@pytest.fixture
async def inbox(member):
    """Everything the server pushes to `member`, read in the background."""
    send, receive = anyio.create_memory_object_stream[str](100)
    async with anyio.create_task_group() as tg:
        tg.start_soon(member.pump, send)
        async with receive:
            yield receive
        tg.cancel_scope.cancel()


class TestJoin:
    async def test_join_is_announced_to_members(self, client, room, connect, unique_name):
        newcomer = await connect(unique_name("late"))
        await newcomer.send(f"JOIN {room}")
        line = await client.receive_until(lambda l: l.startswith("*"))
        assert line == f"* {newcomer.nick} joined {room}"

    async def test_who_lists_members(self, client, room, member):
        await client.send(f"WHO {room}")
        # the join announcement for `member` may come first
        reply = await client.receive_until(lambda l: l.startswith("MEMBERS"))
        assert reply == f"MEMBERS {room} {client.nick},{member.nick}"

    async def test_who_lists_members_alphabetically(self, chat_server, connect, unique_name):
        suffix = unique_name("x").split("-")[1]
        room = f"#abc-{suffix}"
        zoe = await connect(f"zoe-{suffix}")
        amy = await connect(f"amy-{suffix}")
        for user in (zoe, amy):
            assert await user.request(f"JOIN {room}") == f"JOINED {room}"
        await wait_until(lambda: len(chat_server.rooms.get(room, ())) == 2)
        await zoe.send(f"WHO {room}")
        reply = await zoe.receive_until(lambda l: l.startswith("MEMBERS"))
        assert reply == f"MEMBERS {room} amy-{suffix},zoe-{suffix}"

    @pytest.mark.parametrize("bad_room", ["lobby", "#UPPER"])
    async def test_bad_room_names(self, client, bad_room):
        assert await client.request(f"JOIN {bad_room}") == "ERR bad-room"


class TestMessages:
    async def test_message_reaches_other_members(self, client, room, inbox):
        await client.send(f"SAY {room} hello everyone")
        [line] = await collect(inbox, 1)
        assert line == f"<{client.nick}@{room}> hello everyone"

    async def test_messages_keep_their_order(self, client, room, inbox):
        for n in range(5):
            await client.send(f"SAY {room} message {n}")
            await anyio.sleep(0.02)
        lines = await collect(inbox, 5)
        assert [line.rsplit(" ", 1)[1] for line in lines] == ["0", "1", "2", "3", "4"]

    async def test_other_rooms_hear_nothing(self, client, room, connect, unique_name):
        outsider = await connect(unique_name("outsider"))
        elsewhere = "#" + unique_name("else").replace("-", "")
        assert await outsider.request(f"JOIN {elsewhere}") == f"JOINED {elsewhere}"
        await client.send(f"SAY {room} private")
        send, receive = anyio.create_memory_object_stream[str](10)
        async with anyio.create_task_group() as tg:
            tg.start_soon(outsider.pump, send)
            assert await nothing_arrives(receive, within=0.25)
            tg.cancel_scope.cancel()

    async def test_banned_words_are_dropped(self, client, room, inbox):
        await client.send(f"SAY {room} buy cheap SPAM now")
        assert await client.receive_until(lambda l: l.startswith("ERR")) == "ERR banned"
        assert await nothing_arrives(inbox, within=0.2)

    async def test_history_keeps_the_last_messages(self, chat_server, client, room):
        for n in range(7):
            await client.send(f"SAY {room} m{n}")
        await wait_until(lambda: len(chat_server.history.get(room, ())) == 5)
        await client.receive_until(lambda l: l.endswith("m6"))
        newcomer_lines = []
        await client.send(f"HISTORY {room}")
        header = await client.receive_until(lambda l: l.startswith("HISTORY"))
        assert header == f"HISTORY {room} 5"
        for _ in range(5):
            newcomer_lines.append(await client.receive())
        assert [line.split()[-1] for line in newcomer_lines] == ["m2", "m3", "m4", "m5", "m6"]

    async def test_part_announces_and_stops_delivery(self, client, room, member, inbox):
        await client.send(f"PART {room}")
        assert await client.receive_until(lambda l: l.startswith("LEFT")) == f"LEFT {room}"
        [line] = await collect(inbox, 1)
        assert line == f"* {client.nick} left {room}"
        await member.send(f"SAY {room} still here?")
        assert (await collect(inbox, 1))[0].endswith("still here?")
        assert await client.request("PING") == "PONG"


def test_policy_defaults():
    assert chatroom.is_allowed("a perfectly fine sentence")
    assert not chatroom.is_allowed("Spam, spam, spam")


def test_ban_word_is_case_insensitive():
    chatroom.ban_word("  Durian ")
    assert not chatroom.is_allowed("who brought the durian?")


def test_reserved_nicks():
    chatroom.reserve_nick("operator")
    assert not chatroom.valid_nick("operator")
    assert chatroom.valid_nick("operator2")
