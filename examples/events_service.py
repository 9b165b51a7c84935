"""A small event-processing service with a flaw that the example tests must respect.

Publishers send events over TCP, one JSON object per line, such as
``{"op": "publish", "kind": "invoice", "id": "inv-17", "data": {...}}``, and
get one JSON object per line back, ``{"ok": true, ...}`` or ``{"ok": false,
"error": "..."}``. Processing an event takes :data:`PROCESSING_SECONDS` in
the background; ``processed`` lists the events of one kind that are done.

Delivery is at least once, so the service drops redeliveries: an event
whose id it has seen before only counts one more delivery. The flaw is that
it also remembers the *kind* of the event it is processing, and takes any
other event of that kind that arrives meanwhile for a redelivery as well.
That event is lost, and since publishers are only told "accepted", nobody
notices until something waits for it in vain. Events of different kinds are
processed independently.

Such a service is common in a shared test environment, and the tests cannot
fix it: what they can do is never publish two events of one kind at the
same time. ``test_events.py`` shows how to declare that.

Only the standard library is used. :class:`EventsService` is the server and
:class:`EventsClient` a matching client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from line_protocol import LineClient, LineServer, RequestRejected

__all__ = [
    "PROCESSING_SECONDS",
    "EventState",
    "EventStatus",
    "EventStream",
    "EventsClient",
    "EventsService",
    "RequestRejected",
]

PROCESSING_SECONDS = 0.4
"""How long the service takes to process one event."""

EventState = Literal["processing", "processed"]


@dataclass(frozen=True)
class EventStatus:
    """What the service knows about one event it accepted."""

    id: str
    kind: str
    state: EventState
    deliveries: int
    """How often the event was published; only the first delivery is processed."""


@dataclass
class _Event:
    id: str
    kind: str
    data: dict[str, Any]
    state: EventState = "processing"
    deliveries: int = 1


@dataclass
class _Ledger:
    """Every event the service kept, and the kinds it is busy with."""

    events: dict[str, _Event] = field(default_factory=dict)
    processed: dict[str, list[str]] = field(default_factory=dict)
    busy_kinds: set[str] = field(default_factory=set)


class EventsService(LineServer):
    """The event-processing server.

    Start it with :meth:`start`, read :attr:`host` and :attr:`port` to
    connect, and :meth:`stop` it when done.
    """

    def __init__(self, processing_seconds: float = PROCESSING_SECONDS) -> None:
        """Create a stopped service that takes ``processing_seconds`` per event."""
        super().__init__()
        self._processing_seconds = processing_seconds
        self._ledger = _Ledger()
        self._workers: set[asyncio.Task[None]] = set()

    async def _abandon_work(self) -> None:
        for worker in list(self._workers):
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def _dispatch(self, request: Mapping[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"pong": True}
        if op == "publish":
            self._publish(request)
            return {"accepted": True}
        if op == "processed":
            kind = _text(request, "kind")
            return {"ids": list(self._ledger.processed.get(kind, ()))}
        if op == "status":
            event = self._ledger.events.get(_text(request, "id"))
            if event is None:
                raise RequestRejected(f"no event {request['id']!r}")
            return _report(event)
        raise RequestRejected(f"unknown op {op!r}")

    def _publish(self, request: Mapping[str, Any]) -> None:
        kind = _text(request, "kind")
        event_id = _text(request, "id")
        data = request.get("data", {})
        if not isinstance(data, dict):
            raise RequestRejected("'data' must be a JSON object")
        ledger = self._ledger
        known = ledger.events.get(event_id)
        if known is not None:
            known.deliveries += 1
            return
        if kind in ledger.busy_kinds:
            # The flaw: a different event of a kind in processing is taken
            # for a redelivery and dropped, and the publisher is not told.
            return
        event = ledger.events[event_id] = _Event(event_id, kind, data)
        ledger.busy_kinds.add(kind)
        worker = asyncio.get_running_loop().create_task(
            self._process(event), name=f"process {kind} {event_id}"
        )
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _process(self, event: _Event) -> None:
        await asyncio.sleep(self._processing_seconds)
        # Done and no longer busy in one step: whoever sees the event
        # processed may publish the next one of its kind.
        event.state = "processed"
        self._ledger.processed.setdefault(event.kind, []).append(event.id)
        self._ledger.busy_kinds.discard(event.kind)


def _text(request: Mapping[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise RequestRejected(f"{key!r} must be a non-empty string")
    return value


def _report(event: _Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "state": event.state,
        "deliveries": event.deliveries,
    }


class EventsClient(LineClient):
    """A client for :class:`EventsService` over one TCP connection (see
    :class:`line_protocol.LineClient`)."""

    async def publish(
        self, kind: str, event_id: str, data: Mapping[str, Any] | None = None
    ) -> None:
        """Publish one event; the service acknowledges every event it can read."""
        await self.request("publish", kind=kind, id=event_id, data=dict(data or {}))

    async def processed(self, kind: str) -> list[str]:
        """The ids of the processed events of ``kind``, in the order they finished."""
        answer = await self.request("processed", kind=kind)
        return [str(event_id) for event_id in answer["ids"]]

    async def has_processed(self, kind: str, event_id: str) -> bool:
        """Whether the event is processed; handy as a polling predicate."""
        return event_id in await self.processed(kind)

    async def status(self, event_id: str) -> EventStatus:
        """What the service knows about an event it kept.

        Raises:
            RequestRejected: if it kept no event with that id (also when it
                dropped one).
        """
        answer = await self.request("status", id=event_id)
        return EventStatus(
            id=answer["id"],
            kind=answer["kind"],
            state=answer["state"],
            deliveries=answer["deliveries"],
        )

    def stream(self, kind: str) -> EventStream:
        """The events of ``kind``, through this client."""
        return EventStream(self, kind)


@dataclass(frozen=True)
class EventStream:
    """Publishing and watching the events of one kind."""

    client: EventsClient
    kind: str

    async def publish(self, event_id: str, data: Mapping[str, Any] | None = None) -> None:
        """Publish one event of this kind."""
        await self.client.publish(self.kind, event_id, data)

    async def has_processed(self, event_id: str) -> bool:
        """Whether the event is processed; handy as a polling predicate."""
        return await self.client.has_processed(self.kind, event_id)
