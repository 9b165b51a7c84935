"""resilient: rate limiting, bounded concurrency and retries for anyio code.

Works on every backend anyio supports.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio

T = TypeVar("T")
logger = logging.getLogger("resilient")

__all__ = [
    "RateLimiter",
    "RetryError",
    "SingleFlight",
    "TokenBucket",
    "fetch_line",
    "gather_limited",
    "retry",
    "run_in_threads",
    "with_fallback",
]


class TokenBucket:
    """The bookkeeping of a token bucket; no I/O, the caller passes the time.

    Holds at most ``capacity`` tokens and gains ``rate`` tokens per second.
    """

    def __init__(self, rate: float, capacity: int = 1, *, now: float = 0.0) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        self.rate = rate
        self.capacity = capacity
        self.tokens = float(capacity)
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.rate)
        self.updated = now

    def try_take(self, now: float, n: int = 1) -> bool:
        self.refill(now)
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def wait_time(self, now: float, n: int = 1) -> float:
        """Seconds from ``now`` until ``n`` tokens are available."""
        self.refill(now)
        missing = n - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate


class RateLimiter:
    """At most ``rate`` acquisitions per second (bursts up to ``capacity``).

    Waiters are served in arrival order.
    """

    def __init__(self, rate: float, capacity: int = 1) -> None:
        self._rate = rate
        self._capacity = capacity
        self._bucket: TokenBucket | None = None
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            if self._bucket is None:
                self._bucket = TokenBucket(self._rate, self._capacity, now=anyio.current_time())
            while not self._bucket.try_take(anyio.current_time()):
                await anyio.sleep(self._bucket.wait_time(anyio.current_time()))

    async def __aenter__(self) -> RateLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class RetryError(Exception):
    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last!r}")
        self.attempts = attempts
        self.last = last


async def retry(
    func: Callable[..., Awaitable[T]],
    *args: Any,
    attempts: int = 3,
    delay: float = 0.05,
    backoff: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = (OSError,),
    attempt_timeout: float | None = None,
) -> T:
    """Call ``func(*args)`` until it succeeds, at most ``attempts`` times.

    Exceptions in ``retry_on`` and attempts that take longer than
    ``attempt_timeout`` are retried after ``delay``, then ``delay * backoff``...
    """
    wait = delay
    last: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            with anyio.fail_after(attempt_timeout):
                return await func(*args)
        except (*retry_on, TimeoutError) as exc:
            last = exc
            logger.info("attempt %d of %d failed: %r", attempt, attempts, exc)
        if attempt < attempts:
            await anyio.sleep(wait)
            wait *= backoff
    assert last is not None
    raise RetryError(attempts, last) from last


async def with_fallback(func: Callable[[], Awaitable[T]], timeout: float, fallback: T) -> T:
    """``await func()``, or ``fallback`` if it takes longer than ``timeout``."""
    with anyio.move_on_after(timeout):
        return await func()
    return fallback


async def gather_limited(funcs: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run every function, at most ``limit`` at a time; results in input order."""
    limiter = anyio.CapacityLimiter(limit)
    results: list[Any] = [None] * len(funcs)

    async def run(index: int, func: Callable[[], Awaitable[T]]) -> None:
        async with limiter:
            results[index] = await func()

    async with anyio.create_task_group() as tg:
        for index, func in enumerate(funcs):
            tg.start_soon(run, index, func)
    return results


async def run_in_threads(funcs: Sequence[Callable[[], T]], limit: int) -> list[T]:
    """Run blocking functions in worker threads, at most ``limit`` at a time."""
    limiter = anyio.CapacityLimiter(limit)

    async def call(func: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(func, limiter=limiter)

    return await gather_limited([lambda f=func: call(f) for func in funcs], len(funcs) or 1)


@dataclass(eq=False)
class _Call(Generic[T]):
    done: anyio.Event = field(default_factory=anyio.Event)
    result: Any = None
    error: BaseException | None = None


class SingleFlight:
    """Collapse concurrent calls for the same key into one call.

    The first caller for a key runs the function; callers that arrive while
    it runs wait for it and share its result (or its exception).
    """

    def __init__(self) -> None:
        self._calls: dict[str, _Call[Any]] = {}
        self.calls_made = 0

    def in_flight(self, key: str) -> bool:
        return key in self._calls

    async def do(self, key: str, func: Callable[[], Awaitable[T]]) -> T:
        call = self._calls.get(key)
        if call is not None:
            await call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result
        call = self._calls[key] = _Call()
        self.calls_made += 1
        try:
            call.result = await func()
        except Exception as exc:
            call.error = exc
            raise
        finally:
            del self._calls[key]
            call.done.set()
        return call.result


async def fetch_line(host: str, port: int, request: str, *, max_bytes: int = 65536) -> str:
    """Send one request line to a line-oriented TCP service and read the reply line.

    A connection closed before the reply raises ``ConnectionResetError``.
    """
    from anyio.streams.buffered import BufferedByteReceiveStream

    async with await anyio.connect_tcp(host, port) as stream:
        await stream.send(request.encode() + b"\n")
        buffered = BufferedByteReceiveStream(stream)
        try:
            reply = await buffered.receive_until(b"\n", max_bytes)
        except (anyio.EndOfStream, anyio.IncompleteRead) as exc:
            raise ConnectionResetError(f"{host}:{port} closed the connection") from exc
        return reply.decode()
