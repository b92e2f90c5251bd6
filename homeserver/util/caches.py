"""Named in-memory LRU caches with hit/miss metrics. `LruCache` entries are invalidated by the
writes that make them stale (across processes through the `caches` stream); `StreamCache`
entries check a stream's change cache instead, and need no invalidation."""

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

from prometheus_client import Counter

from homeserver.util.stream_change_cache import StreamChangeCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

cache_hits = Counter("homeserver_cache_hits_total", "Cache hits", ["name"])
cache_misses = Counter("homeserver_cache_misses_total", "Cache misses", ["name"])


class LruCache(Generic[K, V]):
    def __init__(self, name: str, max_size: int):
        self.name = name
        self.max_size = max_size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._hits = cache_hits.labels(name)
        self._misses = cache_misses.labels(name)

    def get(self, key: K) -> V | None:
        try:
            value = self._data[key]
        except KeyError:
            self._misses.inc()
            return None
        self._data.move_to_end(key)
        self._hits.inc()
        return value

    def set(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)

    def invalidate(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class StreamCache(Generic[K, V]):
    """Values read from the database that stay valid until a stream records a change to their
    entity: each entry remembers the stream position read just before its query, and is used
    only while `changes` says its entity has not changed after that position. No explicit
    invalidation, so it is as correct on a worker (which learns of changes by replication) as
    on the writer, provided the stream records a change before its position moves past it."""

    def __init__(self, name: str, changes: StreamChangeCache, position: Callable[[], int], max_size: int = 10_000):
        self.changes = changes
        self.position = position
        self._entries: LruCache[K, tuple[int, V]] = LruCache(name, max_size)

    def get(self, key: K, entity: str) -> V | None:
        """The cached value, or None when there is none or `entity` changed since it was read."""
        entry = self._entries.get(key)
        if entry is None or self.changes.has_entity_changed(entity, entry[0]):
            return None
        return entry[1]

    def put(self, key: K, read_at: int, value: V) -> None:
        """Store a value read from the database after the stream was at `read_at`."""
        self._entries.set(key, (read_at, value))

    async def get_many(
        self, keys: Iterable[K], entity_of: Callable[[K], str],
        fetch: Callable[[list[K]], Awaitable[dict[K, V]]], missing: V,
    ) -> dict[K, V]:
        """The value of every key: cached ones, and the rest with one `fetch` of those keys
        (a key `fetch` leaves out is stored as `missing`)."""
        result: dict[K, V] = {}
        wanted: list[K] = []
        for key in keys:
            value = self.get(key, entity_of(key))
            if value is None:
                wanted.append(key)
            else:
                result[key] = value
        if wanted:
            read_at = self.position()
            fetched = await fetch(wanted)
            for key in wanted:
                value = fetched.get(key, missing)
                self._entries.set(key, (read_at, value))
                result[key] = value
        return result

    async def get_one(self, key: K, entity: str, fetch: Callable[[], Awaitable[V]]) -> V:
        """The value of one key, from `fetch()` when not cached or no longer valid."""
        value = self.get(key, entity)
        if value is None:
            read_at = self.position()
            value = await fetch()
            self._entries.set(key, (read_at, value))
        return value
