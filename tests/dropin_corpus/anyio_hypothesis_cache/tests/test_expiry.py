"""Expiry against the real clock, and loading behaviour."""

import anyio
import pytest

from ttlcache import MISSING, CacheStats, TTLCache, parse_ttl

pytestmark = pytest.mark.anyio


async def wait_for(predicate, *, timeout=3.0):
    with anyio.fail_after(timeout):
        while not await predicate():
            await anyio.sleep(0.05)


@pytest.mark.timeout(5)
async def test_entry_expires_after_its_ttl():
    cache = TTLCache(ttl="200ms")
    await cache.set("session", {"user": 7})
    stored_at = anyio.current_time()

    async def gone():
        return await cache.get("session", MISSING) is MISSING

    assert not await gone()
    await wait_for(gone)
    assert anyio.current_time() - stored_at >= 0.2


async def test_per_entry_ttl_overrides_the_default():
    cache = TTLCache(ttl=30)
    await cache.set("short", 1, ttl=0.15)
    await cache.set("long", 2)

    async def short_gone():
        return "short" not in cache

    await wait_for(short_gone)
    assert await cache.get("long") == 2


@pytest.mark.parametrize("ttl", ["100ms", 0.1])
async def test_reload_after_expiry(ttl):
    cache = TTLCache(ttl=ttl)
    loads = []

    async def loader():
        loads.append(anyio.current_time())
        return len(loads)

    assert await cache.get_or_load("config", loader) == 1
    assert await cache.get_or_load("config", loader) == 1
    await anyio.sleep(0.15)
    assert await cache.get_or_load("config", loader) == 2


@pytest.mark.timeout(5)
async def test_janitor_purges_in_the_background():
    cache = TTLCache(ttl=0.1)
    for n in range(5):
        await cache.set(n, n * n)
    async with anyio.create_task_group() as tg:
        tg.start_soon(cache.run_janitor, 0.05)

        async def purged():
            return cache.stats.expirations == 5

        await wait_for(purged)
        tg.cancel_scope.cancel()
    assert cache.stats.misses == 0


def test_hit_ratio():
    assert CacheStats().hit_ratio == 0.0
    assert CacheStats(hits=3, misses=1).hit_ratio == 0.75


async def test_waiters_do_not_start_a_second_load():
    cache = TTLCache(ttl=10)
    started = anyio.Event()
    loads = 0

    async def slow_loader():
        nonlocal loads
        loads += 1
        started.set()
        await anyio.sleep(0.2)
        return "report"

    results = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _append(results, cache.get_or_load("r", slow_loader)))
        await started.wait()
        for _ in range(3):
            tg.start_soon(lambda: _append(results, cache.get_or_load("r", slow_loader)))
    assert results == ["report"] * 4
    assert loads == 1


async def _append(results, awaitable):
    results.append(await awaitable)


@pytest.mark.timeout(5)
async def test_failed_load_is_not_cached_and_waiters_retry():
    cache = TTLCache(ttl=10)
    attempts = 0
    first_started = anyio.Event()

    async def flaky_loader():
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            first_started.set()
            await anyio.sleep(0.1)
            raise ConnectionError("backend down")
        await anyio.sleep(0.05)
        return "fresh"

    outcomes = []

    async def first():
        with pytest.raises(ConnectionError):
            await cache.get_or_load("k", flaky_loader)
        outcomes.append("failed")

    async def second():
        outcomes.append(await cache.get_or_load("k", flaky_loader))

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await first_started.wait()
        tg.start_soon(second)
    assert sorted(outcomes) == ["failed", "fresh"]
    assert attempts == 2
    assert await cache.get("k") == "fresh"


class Profiles:
    """Stands in for the service the application caches."""

    def __init__(self):
        self.cache = TTLCache(ttl="5m", maxsize=2)

    async def fetch(self, user_id):
        raise AssertionError("the test replaces this")

    async def profile(self, user_id):
        return await self.cache.get_or_load(("profile", user_id), lambda: self.fetch(user_id))


async def test_profiles_are_served_from_cache(monkeypatch, clock):
    profiles = Profiles()
    monkeypatch.setattr(profiles.cache, "clock", clock)
    fetched = []

    async def fake_fetch(user_id):
        fetched.append(user_id)
        await anyio.sleep(0.05)
        return {"id": user_id}

    monkeypatch.setattr(profiles, "fetch", fake_fetch)
    assert await profiles.profile(1) == {"id": 1}
    assert await profiles.profile(1) == {"id": 1}
    clock.advance(parse_ttl("5m"))
    assert await profiles.profile(1) == {"id": 1}
    assert fetched == [1, 1]
    assert profiles.cache.stats.hits == 1


@pytest.mark.timeout(5)
async def test_eviction_keeps_recently_used_profiles(monkeypatch, clock):
    profiles = Profiles()
    monkeypatch.setattr(profiles.cache, "clock", clock)

    async def fake_fetch(user_id):
        await anyio.sleep(0.03)
        return {"id": user_id}

    monkeypatch.setattr(profiles, "fetch", fake_fetch)
    for user_id in (1, 2, 1, 3):
        await profiles.profile(user_id)
    assert ("profile", 1) in profiles.cache
    assert ("profile", 2) not in profiles.cache


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1.5h", 5400.0), (12, 12.0)],
)
def test_parse_ttl(text, seconds):
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "-1s", "1w"])
def test_parse_ttl_rejects(text):
    with pytest.raises(ValueError):
        parse_ttl(text)


@pytest.mark.xfail(reason="maxsize=0 should disable caching, not raise", raises=ValueError, strict=True)
def test_zero_maxsize_disables_caching():
    TTLCache(ttl=1, maxsize=0)


@pytest.mark.skip(reason="shared (multi-process) backend not implemented yet")
async def test_shared_backend_roundtrip():
    raise NotImplementedError
