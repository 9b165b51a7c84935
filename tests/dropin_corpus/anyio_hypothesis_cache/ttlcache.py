"""ttlcache: an in-process async cache with per-entry expiry.

    cache = TTLCache(ttl=30, maxsize=1000)
    user = await cache.get_or_load(("user", 42), lambda: fetch_user(42))

Entries expire ``ttl`` seconds after they were stored; when the cache is
full the least recently used entry is evicted. Concurrent ``get_or_load``
calls for the same key share one load.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.lowlevel import checkpoint

__all__ = ["CacheStats", "TTLCache", "parse_ttl", "MISSING"]

MISSING: Any = object()

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_ttl(text: str | float | int) -> float:
    """``"500ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"`` or a number of seconds."""
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("ttl must not be negative")
        return float(text)
    match = _TTL.match(text)
    if not match:
        raise ValueError(f"bad ttl {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    loads: int = 0
    evictions: int = 0
    expirations: int = 0

    @property
    def hit_ratio(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


@dataclass
class _Entry:
    value: Any
    expires_at: float


class TTLCache:
    def __init__(
        self,
        ttl: float | str,
        maxsize: int = 128,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.ttl = parse_ttl(ttl)
        self.maxsize = maxsize
        self.clock = clock
        self.stats = CacheStats()
        self._data: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._loading: dict[Hashable, anyio.Event] = {}

    # -- plain access ----------------------------------------------------

    def __len__(self) -> int:
        self.purge()
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return self._live(key) is not None

    def _live(self, key: Hashable) -> _Entry | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self.clock():
            del self._data[key]
            self.stats.expirations += 1
            return None
        return entry

    async def get(self, key: Hashable, default: Any = None) -> Any:
        await checkpoint()
        entry = self._live(key)
        if entry is None:
            self.stats.misses += 1
            return default
        self._data.move_to_end(key)
        self.stats.hits += 1
        return entry.value

    async def set(self, key: Hashable, value: Any, *, ttl: float | str | None = None) -> None:
        await checkpoint()
        self._store(key, value, ttl)

    def _store(self, key: Hashable, value: Any, ttl: float | str | None) -> None:
        lifetime = self.ttl if ttl is None else parse_ttl(ttl)
        self._data[key] = _Entry(value, self.clock() + lifetime)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)
            self.stats.evictions += 1

    async def delete(self, key: Hashable) -> bool:
        await checkpoint()
        return self._data.pop(key, None) is not None

    def purge(self) -> int:
        """Drop every expired entry; returns how many were dropped."""
        now = self.clock()
        expired = [key for key, entry in self._data.items() if entry.expires_at <= now]
        for key in expired:
            del self._data[key]
        self.stats.expirations += len(expired)
        return len(expired)

    # -- loading ---------------------------------------------------------

    async def get_or_load(
        self,
        key: Hashable,
        loader: Callable[[], Awaitable[Any]],
        *,
        ttl: float | str | None = None,
    ) -> Any:
        """The cached value, or the result of ``loader()`` (stored).

        Callers that ask for a key while it is being loaded wait for that
        load instead of starting their own.
        """
        while True:
            value = await self.get(key, MISSING)
            if value is not MISSING:
                return value
            pending = self._loading.get(key)
            if pending is None:
                break
            await pending.wait()
        done = self._loading[key] = anyio.Event()
        try:
            self.stats.loads += 1
            value = await loader()
            self._store(key, value, ttl)
            return value
        finally:
            del self._loading[key]
            done.set()

    async def run_janitor(self, interval: float) -> None:
        """Purge expired entries every ``interval`` seconds, forever."""
        while True:
            await anyio.sleep(interval)
            self.purge()
