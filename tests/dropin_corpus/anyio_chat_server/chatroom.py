"""chatroom: a small line-based chat server (and client) built on anyio.

One command per line, UTF-8, newline terminated::

    NICK <name>        -> OK <name>        | ERR nick-taken | ERR bad-nick
    JOIN <room>        -> JOINED <room>    (members see "* <name> joined <room>")
    PART <room>        -> LEFT <room>
    SAY <room> <text>  -> every member, sender included, gets "<name@room> text"
                          (room messages are sent out in batches)
    WHO <room>         -> MEMBERS <room> name,name,...
    HISTORY <room>     -> HISTORY <room> <n>, then the last n messages
    ECHO <text>        -> ECHO <text>
    PING               -> PONG
    IDLE <seconds>     -> OK idle; the connection is closed ("BYE idle") after
                          that long without a command
    QUIT               -> BYE

Anything the server sends to a client goes through the client's outbox (a
memory object stream) and a writer task, so slow readers never block a room.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass, field

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

logger = logging.getLogger("chatroom")

ENCODING = "utf-8"
MAX_LINE = 4096
NICK_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
ROOM_PATTERN = re.compile(r"^#[a-z0-9_-]{1,32}$")

DEFAULT_BANNED_WORDS = frozenset({"spam"})
DEFAULT_RESERVED_NICKS = frozenset({"admin", "server", "root"})

#: Words the server refuses to relay.  Operators extend it at runtime.
banned_words: set[str] = set(DEFAULT_BANNED_WORDS)
#: Nicknames nobody may take.
reserved_nicks: set[str] = set(DEFAULT_RESERVED_NICKS)


def ban_word(word: str) -> None:
    banned_words.add(word.strip().lower())


def reserve_nick(nick: str) -> None:
    reserved_nicks.add(nick)


def reset_policy() -> None:
    """Back to the shipped defaults (used on reload and by the tests)."""
    banned_words.clear()
    banned_words.update(DEFAULT_BANNED_WORDS)
    reserved_nicks.clear()
    reserved_nicks.update(DEFAULT_RESERVED_NICKS)


def is_allowed(text: str) -> bool:
    words = re.findall(r"[\w']+", text.lower())
    return not any(word in banned_words for word in words)


def valid_nick(nick: str) -> bool:
    return bool(NICK_PATTERN.match(nick)) and nick not in reserved_nicks


def valid_room(room: str) -> bool:
    return bool(ROOM_PATTERN.match(room))


@dataclass(frozen=True)
class Command:
    verb: str
    args: tuple[str, ...] = ()


_DISCONNECTED = (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError)


class ProtocolError(ValueError):
    pass


_ARITY = {
    "NICK": 1,
    "JOIN": 1,
    "PART": 1,
    "WHO": 1,
    "HISTORY": 1,
    "SAY": 2,
    "ECHO": 1,
    "IDLE": 1,
    "PING": 0,
    "QUIT": 0,
}


def parse_command(line: str) -> Command:
    """Split one protocol line into a verb and its arguments.

    The last argument takes the rest of the line, spaces included.
    """
    line = line.rstrip("\r\n")
    if not line.strip():
        raise ProtocolError("empty line")
    verb, _, rest = line.lstrip().partition(" ")
    verb = verb.upper()
    if verb not in _ARITY:
        raise ProtocolError(f"unknown command {verb}")
    arity = _ARITY[verb]
    if arity == 0:
        return Command(verb)
    args = rest.split(" ", arity - 1) if rest else []
    if len(args) != arity or not all(args):
        raise ProtocolError(f"{verb} takes {arity} argument(s)")
    return Command(verb, tuple(args))


def format_message(nick: str, room: str, text: str) -> str:
    return f"<{nick}@{room}> {text}"


@dataclass(eq=False)
class Connection:
    stream: SocketStream
    outbox: MemoryObjectSendStream[str]
    peer: str
    nick: str | None = None
    rooms: set[str] = field(default_factory=set)
    idle_timeout: float | None = None

    @property
    def label(self) -> str:
        return self.nick or self.peer


class ChatServer:
    def __init__(self, *, history_size: int = 20, flush_interval: float = 0.1) -> None:
        self.history_size = history_size
        self.flush_interval = flush_interval
        self._pending: dict[str, list[tuple[str, str, str]]] = {}
        self.clients: dict[str, Connection] = {}
        self.rooms: dict[str, dict[str, None]] = {}
        self.history: dict[str, deque[str]] = {}
        self.address: tuple[str, int] | None = None

    # -- lifecycle ---------------------------------------------------------

    async def serve(
        self,
        listener: SocketListener,
        *,
        task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        host = listener.extra(SocketAttribute.local_address)[0]
        port = listener.extra(SocketAttribute.local_port)
        self.address = (host, port)
        logger.info("listening on %s:%d", host, port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(self._flush_forever)
            task_status.started(self.address)
            await listener.serve(self.handle, task_group=tg)

    async def _flush_forever(self) -> None:
        """Room messages go out in batches, every ``flush_interval`` seconds."""
        while True:
            await anyio.sleep(self.flush_interval)
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for room, messages in pending.items():
            for nick, text, line in messages:
                logger.info("relay room=%s from=%s: %s", room, nick, text)
                await self._broadcast(room, line)

    async def handle(self, stream: SocketStream) -> None:
        host, port = stream.extra(SocketAttribute.remote_address)[:2]
        send, receive = anyio.create_memory_object_stream[str](64)
        conn = Connection(stream, send, peer=f"{host}:{port}")
        logger.info("connection from %s", conn.peer)
        try:
            async with stream, anyio.create_task_group() as tg:
                tg.start_soon(self._writer, stream, receive)
                try:
                    await self._reader(conn)
                except _DISCONNECTED:
                    logger.info("connection to %s lost", conn.label)
                finally:
                    send.close()
        finally:
            self._forget(conn)
        logger.info("connection to %s closed", conn.label)

    async def _writer(
        self, stream: SocketStream, outbox: MemoryObjectReceiveStream[str]
    ) -> None:
        async with outbox:
            try:
                async for line in outbox:
                    await stream.send(line.encode(ENCODING) + b"\n")
            except _DISCONNECTED:
                pass

    async def _reader(self, conn: Connection) -> None:
        lines = BufferedByteReceiveStream(conn.stream)
        await conn.outbox.send("WELCOME chatroom")
        while True:
            with anyio.move_on_after(conn.idle_timeout) as idle:
                try:
                    raw = await lines.receive_until(b"\n", MAX_LINE)
                except (anyio.IncompleteRead, anyio.EndOfStream):
                    return
                except anyio.DelimiterNotFound:
                    logger.warning("line too long from %s", conn.label)
                    await conn.outbox.send("ERR line-too-long")
                    return
            if idle.cancelled_caught:
                logger.info("closing idle connection %s", conn.label)
                await conn.outbox.send("BYE idle")
                return
            line = raw.decode(ENCODING, errors="replace").rstrip("\r")
            if not await self._dispatch(conn, line):
                return

    def _forget(self, conn: Connection) -> None:
        for room in conn.rooms:
            self.rooms.get(room, {}).pop(conn.nick or "", None)
        if conn.nick and self.clients.get(conn.nick) is conn:
            del self.clients[conn.nick]

    # -- commands ----------------------------------------------------------

    async def _dispatch(self, conn: Connection, line: str) -> bool:
        """Handle one line; False once the connection should close."""
        try:
            command = parse_command(line)
        except ProtocolError as exc:
            await conn.outbox.send(f"ERR {exc}")
            return True
        verb, args = command.verb, command.args
        if verb == "QUIT":
            await conn.outbox.send("BYE")
            return False
        if verb == "PING":
            await conn.outbox.send("PONG")
        elif verb == "ECHO":
            await conn.outbox.send(f"ECHO {args[0]}")
        elif verb == "IDLE":
            try:
                conn.idle_timeout = float(args[0])
            except ValueError:
                await conn.outbox.send("ERR bad-timeout")
            else:
                await conn.outbox.send("OK idle")
        elif verb == "NICK":
            await self._nick(conn, args[0])
        elif conn.nick is None:
            await conn.outbox.send("ERR no-nick")
        elif verb == "JOIN":
            await self._join(conn, args[0])
        elif verb == "PART":
            await self._part(conn, args[0])
        elif verb == "WHO":
            members = ",".join(self.rooms.get(args[0], {}))
            await conn.outbox.send(f"MEMBERS {args[0]} {members}".rstrip())
        elif verb == "HISTORY":
            past = list(self.history.get(args[0], ()))
            await conn.outbox.send(f"HISTORY {args[0]} {len(past)}")
            for message in past:
                await conn.outbox.send(message)
        elif verb == "SAY":
            await self._say(conn, *args)
        return True

    async def _nick(self, conn: Connection, nick: str) -> None:
        if not valid_nick(nick):
            await conn.outbox.send("ERR bad-nick")
        elif nick in self.clients and self.clients[nick] is not conn:
            await conn.outbox.send("ERR nick-taken")
        else:
            if conn.nick is not None:
                self.clients.pop(conn.nick, None)
            conn.nick = nick
            self.clients[nick] = conn
            logger.info("%s is now known as %s", conn.peer, nick)
            await conn.outbox.send(f"OK {nick}")

    async def _join(self, conn: Connection, room: str) -> None:
        if not valid_room(room):
            await conn.outbox.send("ERR bad-room")
            return
        assert conn.nick is not None
        members = self.rooms.setdefault(room, {})
        members[conn.nick] = None
        conn.rooms.add(room)
        await conn.outbox.send(f"JOINED {room}")
        await self._broadcast(room, f"* {conn.nick} joined {room}", skip=conn.nick)

    async def _part(self, conn: Connection, room: str) -> None:
        assert conn.nick is not None
        self.rooms.get(room, {}).pop(conn.nick, None)
        conn.rooms.discard(room)
        await conn.outbox.send(f"LEFT {room}")
        await self._broadcast(room, f"* {conn.nick} left {room}")

    async def _say(self, conn: Connection, room: str, text: str) -> None:
        assert conn.nick is not None
        if room not in conn.rooms:
            await conn.outbox.send("ERR not-in-room")
            return
        if not is_allowed(text):
            logger.warning("dropped message from %s in %s: banned word", conn.nick, room)
            await conn.outbox.send("ERR banned")
            return
        message = format_message(conn.nick, room, text)
        self.history.setdefault(room, deque(maxlen=self.history_size)).append(message)
        self._pending.setdefault(room, []).append((conn.nick, text, message))

    async def _broadcast(self, room: str, line: str, *, skip: str | None = None) -> None:
        for nick in list(self.rooms.get(room, {})):
            target = self.clients.get(nick)
            if target is None or nick == skip:
                continue
            try:
                await target.outbox.send(line)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass


class ChatClient:
    """A thin client: send a command, read lines back."""

    def __init__(self, stream: SocketStream, nick: str | None = None) -> None:
        self.stream = stream
        self.nick = nick
        self._lines = BufferedByteReceiveStream(stream)

    async def send(self, line: str) -> None:
        await self.stream.send(line.encode(ENCODING) + b"\n")

    async def receive(self) -> str:
        raw = await self._lines.receive_until(b"\n", MAX_LINE)
        return raw.decode(ENCODING)

    async def request(self, line: str) -> str:
        await self.send(line)
        return await self.receive()

    async def receive_until(self, predicate, *, timeout: float = 2.0) -> str:
        """Skip lines until one matches ``predicate``; fail after ``timeout``."""
        with anyio.fail_after(timeout):
            while True:
                line = await self.receive()
                if predicate(line):
                    return line

    async def pump(self, sink: MemoryObjectSendStream[str]) -> None:
        """Forward every incoming line into ``sink`` until the server hangs up."""
        async with sink:
            while True:
                try:
                    line = await self.receive()
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
                    return
                await sink.send(line)

    async def aclose(self) -> None:
        await self.stream.aclose()
