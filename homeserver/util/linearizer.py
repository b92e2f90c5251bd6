"""`Linearizer`: runs async work for the same key one at a time, in arrival order."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from twisted.internet import defer


class Linearizer:
    def __init__(self) -> None:
        self._waiters: dict[str, list[defer.Deferred[None]]] = {}

    @asynccontextmanager
    async def queue(self, key: str) -> AsyncIterator[None]:
        waiters = self._waiters.get(key)
        if waiters is None:
            self._waiters[key] = []
        else:
            d: defer.Deferred[None] = defer.Deferred()
            waiters.append(d)
            await d
        try:
            yield
        finally:
            pending = self._waiters[key]
            if pending:
                pending.pop(0).callback(None)
            else:
                del self._waiters[key]
