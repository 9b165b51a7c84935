"""The wire protocol the example services share, and a client for it.

One JSON object per line in each direction: the client sends a request such
as ``{"op": "ping"}`` and reads one answer, either ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``. Only the standard library is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any, TypeVar, cast

__all__ = [
    "LineClient",
    "ProtocolError",
    "RequestRejected",
    "decode_message",
    "encode_message",
]


class ProtocolError(ValueError):
    """A line on the wire is not a JSON object."""


class RequestRejected(Exception):
    """The service refused a request; the message is the service's reason."""


def encode_message(message: Mapping[str, Any]) -> bytes:
    """Encode one protocol message as a single newline-terminated line."""
    # Compact separators keep every message on one line whatever it holds;
    # sorted keys make the bytes stable, which helps when reading captures.
    text = json.dumps(dict(message), separators=(",", ":"), sort_keys=True)
    return text.encode() + b"\n"


def decode_message(line: bytes) -> dict[str, Any]:
    """Decode one line received from the wire into a message.

    Raises:
        ProtocolError: if the line is not valid JSON or not a JSON object.
    """
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return cast("dict[str, Any]", message)


ClientT = TypeVar("ClientT", bound="LineClient")


class LineClient:
    """A client over one TCP connection.

    Requests on one client are answered in order, so callers may share a
    client between tasks; each request waits for the previous one's answer.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wrap an open connection; most callers want :meth:`connect` instead."""
        self._reader = reader
        self._writer = writer
        self._turn = asyncio.Lock()

    @classmethod
    async def connect(cls: type[ClientT], host: str, port: int) -> ClientT:
        """Open a connection to the service at ``host``:``port``."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def close(self) -> None:
        """Close the connection."""
        self._writer.close()
        # If the server closed first the connection is just as closed.
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def request(self, op: str, **fields: object) -> dict[str, Any]:
        """Send one request and return the service's answer.

        Raises:
            RequestRejected: if the service refused the request.
            ConnectionError: if the service closed the connection.
        """
        # The protocol has no request ids, so a second request must not be
        # written before the answer to the first one has been read.
        async with self._turn:
            self._writer.write(encode_message({"op": op, **fields}))
            await self._writer.drain()
            line = await self._reader.readline()
        if not line:
            raise ConnectionError("the service closed the connection")
        answer = decode_message(line)
        if not answer.get("ok"):
            raise RequestRejected(str(answer.get("error")))
        return answer


class LineServer:
    """A TCP server for the protocol: one task per connection reads
    requests and writes answers; subclasses answer in :meth:`_dispatch`."""

    def __init__(self) -> None:
        """Create a stopped server."""
        self._connections: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._address: tuple[str, int] | None = None

    @property
    def host(self) -> str:
        """The address the service listens on."""
        return self._bound()[0]

    @property
    def port(self) -> int:
        """The TCP port the service listens on."""
        return self._bound()[1]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start listening; port 0 lets the OS pick a free port."""
        if self._server is not None:
            raise RuntimeError("the service is already running")
        self._server = await asyncio.start_server(self._serve, host, port)
        sockname = self._server.sockets[0].getsockname()
        self._address = (sockname[0], sockname[1])

    async def stop(self) -> None:
        """Stop listening, drop open connections and abandon work in progress."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # A client that forgot to close would otherwise keep wait_closed()
        # waiting on newer Pythons, and its handler task alive on older ones.
        for writer in list(self._connections):
            writer.close()
        await self._abandon_work()
        await server.wait_closed()

    async def _abandon_work(self) -> None:
        """Cancel the service's background work; called by :meth:`stop`."""

    def _dispatch(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one request (the fields after ``"ok": true``).

        Raises:
            RequestRejected: to answer with ``"ok": false`` and the reason.
        """
        raise NotImplementedError

    def _bound(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the service has not been started")
        return self._address

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while line := await reader.readline():
                writer.write(encode_message(self._respond(line)))
                await writer.drain()
        except ConnectionError:
            pass  # the client went away mid-request; nothing left to answer
        finally:
            self._connections.discard(writer)
            writer.close()

    def _respond(self, line: bytes) -> dict[str, Any]:
        try:
            return {"ok": True, **self._dispatch(decode_message(line))}
        except (ProtocolError, RequestRejected) as exc:
            return {"ok": False, "error": str(exc)}
