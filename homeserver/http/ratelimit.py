"""Token-bucket rate limiting per `rc_*` setting, per key (user, IP address ...), per process."""

import time

from homeserver.config.ratelimiting import RateLimit
from homeserver.http.errors import LimitExceeded


class Ratelimiter:
    """`check(key)` spends one action or raises M_LIMIT_EXCEEDED with `retry_after_ms`."""

    def __init__(self, limit: RateLimit):
        self.limit = limit
        # key -> (tokens spent, time of last update)
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        spent, last = self._buckets.get(key, (0.0, now))
        return max(0.0, spent - (now - last) * self.limit.per_second)

    def can_do(self, key: str, cost: float = 1.0) -> tuple[bool, float]:
        now = time.monotonic()
        level = self._level(key, now)
        allowed = level + cost <= self.limit.burst_count
        wait = 0.0
        if not allowed:
            wait = (level + cost - self.limit.burst_count) / self.limit.per_second if self.limit.per_second else 3600.0
        return allowed, wait

    def check(self, key: str, cost: float = 1.0, update: bool = True) -> None:
        if self.limit.burst_count <= 0 and self.limit.per_second <= 0:
            return
        allowed, wait = self.can_do(key, cost)
        if not allowed:
            raise LimitExceeded(max(1, int(wait * 1000)))
        if update:
            self.record(key, cost)

    def record(self, key: str, cost: float = 1.0) -> None:
        now = time.monotonic()
        self._buckets[key] = (self._level(key, now) + cost, now)
        if len(self._buckets) > 100_000:
            self._prune(now)

    def _prune(self, now: float) -> None:
        for key in [k for k in self._buckets if self._level(k, now) == 0.0]:
            del self._buckets[key]
