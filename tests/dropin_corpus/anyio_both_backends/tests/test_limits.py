import sys
import threading
import time
from functools import partial

import anyio
import pytest

from resilient import RateLimiter, TokenBucket, gather_limited, run_in_threads

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


def test_bucket_starts_full():
    bucket = TokenBucket(rate=10, capacity=3, now=100.0)
    assert [bucket.try_take(100.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_over_time():
    bucket = TokenBucket(rate=10, capacity=2, now=0.0)
    assert bucket.try_take(0.0) and bucket.try_take(0.0)
    assert bucket.wait_time(0.0) == pytest.approx(0.1)
    assert bucket.wait_time(0.05) == pytest.approx(0.05)
    assert bucket.try_take(0.1)
    assert not bucket.try_take(0.1)


async def test_limiter_spaces_out_calls():
    limiter = RateLimiter(rate=20)  # one every 50 ms
    stamps = []
    for _ in range(5):
        async with limiter:
            stamps.append(anyio.current_time())
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert all(gap >= 0.045 for gap in gaps), gaps
    assert stamps[-1] - stamps[0] < 1.0


async def test_limiter_allows_a_burst_then_waits():
    limiter = RateLimiter(rate=10, capacity=3)
    start = anyio.current_time()
    for _ in range(3):
        await limiter.acquire()
    assert anyio.current_time() - start < 0.08
    await limiter.acquire()
    assert anyio.current_time() - start >= 0.09


async def test_waiters_are_served_in_arrival_order():
    limiter = RateLimiter(rate=25)
    order = []

    async def worker(name):
        await limiter.acquire()
        order.append(name)

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for name in "abcd":
            tg.start_soon(worker, name)
            await anyio.sleep(0.005)
    assert order == ["a", "b", "c", "d"]
    assert anyio.current_time() - start >= 0.11


def test_bucket_rejects_bad_settings():
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, capacity=0)


async def test_gather_limited_keeps_order_and_limit():
    running = 0
    peak = 0

    def job(n):
        async def run():
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await anyio.sleep(0.03 * (5 - n))
            running -= 1
            return n * n

        return run

    results = await gather_limited([job(n) for n in range(5)], limit=2)
    assert results == [0, 1, 4, 9, 16]
    assert peak == 2


async def test_gather_limited_propagates_errors():
    async def ok():
        await anyio.sleep(0.2)
        return "ok"

    async def broken():
        await anyio.sleep(0.05)
        raise KeyError("missing")

    with pytest.raises(ExceptionGroup) as info:
        await gather_limited([ok, broken, ok], limit=3)
    assert info.group_contains(KeyError)


async def test_blocking_work_runs_in_threads():
    main_thread = threading.get_ident()
    seen = set()

    def blocking(n):
        time.sleep(0.05)
        seen.add(threading.get_ident())
        return n * 10

    results = await run_in_threads([partial(blocking, n) for n in range(4)], limit=2)
    assert results == [0, 10, 20, 30]
    assert seen and main_thread not in seen


async def test_thread_limit_is_respected():
    lock = threading.Lock()
    active = 0
    peak = 0

    def blocking():
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.04)
        with lock:
            active -= 1

    await run_in_threads([blocking] * 6, limit=3)
    assert peak <= 3
    # the event loop stayed responsive while the threads worked
    assert await anyio.to_thread.run_sync(lambda: "pong") == "pong"
