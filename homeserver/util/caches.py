"""Named in-memory LRU caches with hit/miss metrics. Writes invalidate entries; across
processes the `caches` stream will carry the invalidations."""

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter

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
