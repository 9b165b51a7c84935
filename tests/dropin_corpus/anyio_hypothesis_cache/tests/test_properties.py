"""Properties of the cache that must hold for any sequence of operations."""

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttlcache import TTLCache, parse_ttl

pytestmark = pytest.mark.anyio

keys = st.one_of(st.integers(-5, 5), st.text(min_size=1, max_size=3))


class ManualClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@given(st.lists(st.tuples(keys, st.integers()), max_size=30))
@settings(max_examples=20, deadline=None)
async def test_get_returns_the_last_value_set(operations):
    cache = TTLCache(ttl=60, maxsize=1000)
    expected = {}
    for key, value in operations:
        await cache.set(key, value)
        expected[key] = value
    for key, value in expected.items():
        assert await cache.get(key) == value
    assert len(cache) == len(expected)


@given(st.lists(st.integers(), min_size=1, max_size=40, unique=True), st.integers(1, 10))
@settings(max_examples=20, deadline=None)
async def test_least_recently_used_entries_are_evicted(inserted, maxsize):
    cache = TTLCache(ttl=60, maxsize=maxsize)
    for key in inserted:
        await cache.set(key, str(key))
    assert len(cache) == min(len(inserted), maxsize)
    assert all(key in cache for key in inserted[-maxsize:])
    assert not any(key in cache for key in inserted[:-maxsize])
    assert cache.stats.evictions == max(0, len(inserted) - maxsize)


@given(ttl=st.floats(0.001, 1e6), elapsed=st.floats(0, 2e6))
@settings(max_examples=20, deadline=None)
async def test_an_entry_lives_exactly_its_ttl(ttl, elapsed):
    clock = ManualClock()
    cache = TTLCache(ttl=ttl, clock=clock)
    await cache.set("key", "value")
    clock.now += elapsed
    assert (await cache.get("key") == "value") == (elapsed < ttl)


def test_parse_ttl_units():
    assert parse_ttl("250ms") == pytest.approx(0.25)
    assert parse_ttl("2h") == 7200


@given(st.integers(2, 12), st.floats(0, 0.02))
@settings(max_examples=20, deadline=None)
async def test_concurrent_callers_share_one_load(callers, delay):
    cache = TTLCache(ttl=60)
    loads = 0

    async def loader():
        nonlocal loads
        loads += 1
        await anyio.sleep(delay)
        return "loaded"

    results = []

    async def caller():
        results.append(await cache.get_or_load("key", loader))

    async with anyio.create_task_group() as tg:
        for _ in range(callers):
            tg.start_soon(caller)
    assert loads == 1
    assert results == ["loaded"] * callers
    assert cache.stats.loads == 1


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_parse_ttl_scales_by_unit(amount, unit):
    seconds = parse_ttl(f"{amount}{unit}")
    assert seconds == pytest.approx(amount * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit])
    assert parse_ttl(f" {amount} {unit} ") == seconds
