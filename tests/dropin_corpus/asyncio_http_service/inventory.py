"""A small line-oriented inventory service.

Each request is one line, ``METHOD PATH [JSON-BODY]``, and each response is
one line, ``STATUS JSON-BODY``. A connection may carry any number of
requests. Writes are visible to ``GET /items/<id>`` at once; the search index
catches up a little later, like the real one does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger("inventory.server")

METHODS = frozenset({"GET", "PUT", "POST", "DELETE"})

#: Requests served since import, keyed by ``"METHOD PATH"``.
request_counts: Counter[str] = Counter()

#: Seconds between a write and the search index reflecting it.
INDEX_DELAY = 0.15

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    501: "Not Implemented",
}


class ProtocolError(ValueError):
    """A request or response line that does not follow the protocol."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any] | None = None

    @property
    def target(self) -> str:
        return f"{self.method} {self.path}"


@lru_cache(maxsize=512)
def parse_request_line(line: str) -> tuple[str, str, str | None]:
    """Split a request line into method, path and raw body."""
    line = line.strip()
    if not line:
        raise ProtocolError("empty request line")
    parts = line.split(" ", 2)
    if len(parts) < 2:
        raise ProtocolError(f"missing path in {line!r}")
    method, path = parts[0], parts[1]
    if method not in METHODS:
        raise ProtocolError(f"unknown method {method!r}")
    if not path.startswith("/"):
        raise ProtocolError(f"path must start with '/': {path!r}")
    return method, path, parts[2] if len(parts) == 3 else None


def parse_request(line: str) -> Request:
    method, path, raw_body = parse_request_line(line)
    body = None
    if raw_body is not None:
        try:
            body = json.loads(raw_body)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"body is not JSON: {exc.msg}") from None
        if not isinstance(body, dict):
            raise ProtocolError("body must be a JSON object")
    return Request(method, path, body)


def format_request(method: str, path: str, body: dict[str, Any] | None = None) -> str:
    line = f"{method} {path}"
    if body is not None:
        line += " " + json.dumps(body, separators=(",", ":"), sort_keys=True)
    return line + "\n"


def format_response(status: int, body: Any = None) -> str:
    return f"{status} {json.dumps(body, separators=(',', ':'), sort_keys=True)}\n"


def parse_response(line: str) -> tuple[int, Any]:
    status_text, _, body_text = line.strip().partition(" ")
    if not status_text.isdigit() or len(status_text) != 3:
        raise ProtocolError(f"bad status in {line!r}")
    try:
        body = json.loads(body_text) if body_text else None
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"response body is not JSON: {exc.msg}") from None
    return int(status_text), body


_ITEM = re.compile(r"^/items/(?P<id>\d+)$")
_RESERVE = re.compile(r"^/items/(?P<id>\d+)/reserve$")


class InventoryServer:
    """Serves the inventory protocol on a TCP port."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, index_delay: float = INDEX_DELAY
    ) -> None:
        self.host = host
        self.port = port
        self.index_delay = index_delay
        self.items: dict[int, dict[str, Any]] = {}
        self.reservations: dict[int, int] = {}
        self.config_generation = 0
        self._index: dict[int, str] = {}
        self._server: asyncio.Server | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        logger.info("stopped")

    def reload(self) -> None:
        self.config_generation += 1
        logger.info("configuration reloaded (generation %d)", self.config_generation)

    def _later(self, delay: float, action: Any, *args: Any) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            action(*args)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = parse_request(line.decode())
                except ProtocolError as exc:
                    logger.warning("bad request: %s", exc)
                    writer.write(format_response(400, {"error": str(exc)}).encode())
                else:
                    status, body = await self.handle(request)
                    request_counts[request.target] += 1
                    logger.info("%s -> %d %s", request.target, status, REASONS.get(status, ""))
                    writer.write(format_response(status, body).encode())
                await writer.drain()
        except ConnectionResetError:
            pass
        finally:
            writer.close()

    async def handle(self, request: Request) -> tuple[int, Any]:
        url = urlsplit(request.path)
        path = url.path
        if path == "/health":
            return 200, {"status": "ok", "items": len(self.items)}
        if path == "/search" and request.method == "GET":
            term = parse_qs(url.query).get("q", [""])[0].lower()
            return 200, sorted(i for i, name in self._index.items() if term in name.lower())
        if path == "/slow" and request.method == "GET":
            millis = int(parse_qs(url.query).get("ms", ["100"])[0])
            await asyncio.sleep(millis / 1000)
            return 200, {"waited_ms": millis}
        if path == "/bulk":
            return 501, {"error": "bulk import is not implemented"}
        if match := _RESERVE.match(path):
            if request.method != "POST":
                return 405, {"error": "use POST"}
            return self._reserve(int(match["id"]), request.body or {})
        if match := _ITEM.match(path):
            return self._item(request.method, int(match["id"]), request.body)
        return 404, {"error": f"no route for {path}"}

    def _item(self, method: str, item_id: int, body: dict[str, Any] | None) -> tuple[int, Any]:
        if method == "GET":
            if item_id not in self.items:
                return 404, {"error": f"no item {item_id}"}
            return 200, self.items[item_id]
        if method == "PUT":
            if not body or "name" not in body:
                return 400, {"error": "an item needs a name"}
            created = item_id not in self.items
            item = {"id": item_id, "name": body["name"], "qty": int(body.get("qty", 0))}
            self.items[item_id] = item
            self._later(self.index_delay, self._index.__setitem__, item_id, item["name"])
            return (201 if created else 200), item
        if method == "DELETE":
            if self.items.pop(item_id, None) is None:
                return 404, {"error": f"no item {item_id}"}
            self.reservations.pop(item_id, None)
            self._later(self.index_delay, self._index.pop, item_id, None)
            return 204, None
        return 405, {"error": f"{method} not allowed on items"}

    def _reserve(self, item_id: int, body: dict[str, Any]) -> tuple[int, Any]:
        item = self.items.get(item_id)
        if item is None:
            return 404, {"error": f"no item {item_id}"}
        qty = int(body.get("qty", 1))
        ttl = float(body.get("ttl", 1.0))
        held = self.reservations.get(item_id, 0)
        if held + qty > item["qty"]:
            return 409, {"error": "not enough stock", "available": item["qty"] - held}
        self.reservations[item_id] = held + qty
        self._later(ttl, self._release, item_id, qty)
        return 200, {"id": item_id, "reserved": held + qty}

    def _release(self, item_id: int, qty: int) -> None:
        left = self.reservations.get(item_id, 0) - qty
        if left > 0:
            self.reservations[item_id] = left
        else:
            self.reservations.pop(item_id, None)
        logger.info("reservation of %d on item %d expired", qty, item_id)


class InventoryClient:
    """One connection to an :class:`InventoryServer`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, host: str, port: int) -> InventoryClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        async with self._lock:
            self._writer.write(format_request(method, path, body).encode())
            await self._writer.drain()
            line = await self._reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        return parse_response(line.decode())

    async def send_raw(self, line: str) -> tuple[int, Any]:
        async with self._lock:
            self._writer.write(line.encode())
            await self._writer.drain()
            return parse_response((await self._reader.readline()).decode())

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.request("GET", path)

    async def put(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return await self.request("PUT", path, body)

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionResetError:
            pass
