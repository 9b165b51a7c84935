from collections import defaultdict

import anyio
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


class FlakyUpstream:
    """A line-based key/value service whose failures the tests script.

    ``GET <key>`` answers ``VALUE <key> <n>`` where n counts the answered
    requests for that key. ``fail(key, times)`` makes the next requests for
    ``key`` get their connection dropped; ``slow(key, seconds)`` delays them.
    """

    def __init__(self):
        self.host = "127.0.0.1"
        self.port = None
        self.requests = defaultdict(int)
        self.answered = defaultdict(int)
        self._failures = defaultdict(int)
        self._delays = {}

    def fail(self, key, times):
        self._failures[key] = times

    def slow(self, key, seconds):
        self._delays[key] = seconds

    async def handle(self, stream):
        async with stream:
            try:
                line = await BufferedByteReceiveStream(stream).receive_until(b"\n", 1024)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                return
            verb, _, key = line.decode().partition(" ")
            self.requests[key] += 1
            if self._failures[key] > 0:
                self._failures[key] -= 1
                return
            await anyio.sleep(self._delays.get(key, 0))
            self.answered[key] += 1
            try:
                await stream.send(f"VALUE {key} {self.answered[key]}\n".encode())
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass


@pytest.fixture(scope="module")
async def upstream(anyio_backend):
    service = FlakyUpstream()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    service.port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, service.handle)
        yield service
        tg.cancel_scope.cancel()
