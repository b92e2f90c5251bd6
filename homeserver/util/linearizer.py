"""`Linearizer`: runs async work for the same key one at a time, in arrival order."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from twisted.internet import defer


class LockTimeoutError(Exception):
    """Waited longer than allowed for the work ahead on the same key."""


class Linearizer:
    def __init__(self) -> None:
        self._waiters: dict[str, list[defer.Deferred[None]]] = {}

    @asynccontextmanager
    async def queue(self, key: str, timeout: float | None = None) -> AsyncIterator[None]:
        """Hold the key's turn for the block; with `timeout`, give up waiting for it after
        that many seconds (`LockTimeoutError`, and the queue goes on without this caller)."""
        waiters = self._waiters.get(key)
        if waiters is None:
            self._waiters[key] = []
        else:
            await self._wait_turn(waiters, timeout)
        try:
            yield
        finally:
            pending = self._waiters[key]
            if pending:
                pending.pop(0).callback(None)
            else:
                del self._waiters[key]

    async def _wait_turn(self, waiters: list[defer.Deferred[None]], timeout: float | None) -> None:
        from twisted.internet import reactor

        turn: defer.Deferred[None] = defer.Deferred()
        waiters.append(turn)
        timer: Any = None
        if timeout is not None:
            def give_up() -> None:
                if not turn.called:
                    waiters.remove(turn)
                    turn.errback(LockTimeoutError())

            timer = reactor.callLater(timeout, give_up)  # type: ignore[attr-defined,arg-type]
        try:
            await turn
        finally:
            if timer is not None and timer.active():
                timer.cancel()
