"""The database pool: transactions as functions, run on a Twisted thread pool, retried when the
engine reports a serialization failure or deadlock."""

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram
from twisted.enterprise import adbapi
from twisted.internet import task

from homeserver.storage.engines import Engine

logger = logging.getLogger(__name__)

R = TypeVar("R")

MAX_ATTEMPTS = 5

txn_duration = Histogram("homeserver_db_txn_seconds", "Database transaction duration", ["desc"])
txn_retries = Counter("homeserver_db_txn_retries_total", "Transactions retried after a conflict", ["desc"])


class DatabaseUnavailableError(Exception):
    """The database could not be reached (down, restarting, connection lost): the request may
    be retried once it is back. Raised instead of the driver's connection errors."""


class Txn:
    """One transaction's cursor. SQL uses `?` placeholders on every engine."""

    def __init__(self, cursor: Any, engine: Engine, desc: str):
        self._cursor = cursor
        self.engine = engine
        self.desc = desc
        self.after_commit: list[Callable[[], None]] = []
        self.on_failure: list[Callable[[], None]] = []

    def execute(self, sql: str, args: Iterable[Any] = ()) -> None:
        self._cursor.execute(self.engine.convert_param_style(sql), self._values(args))

    def execute_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        self._cursor.executemany(self.engine.convert_param_style(sql), [self._values(r) for r in rows])

    def _values(self, args: Iterable[Any]) -> tuple[Any, ...]:
        """The arguments as the engine can store them: PostgreSQL text cannot hold NUL, which
        valid JSON can carry into any string a client sends (a reason, a display name); it
        becomes U+FFFD. JSON stored as text is escaped and never contains a raw NUL."""
        values = tuple(args)
        if self.engine.strips_nul and any(isinstance(v, str) and "\x00" in v for v in values):
            return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in values)
        return values

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def call_after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the reactor once the transaction has committed."""
        self.after_commit.append(callback)

    def call_on_failure(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the reactor if the transaction rolls back."""
        self.on_failure.append(callback)


class Database:
    """A connection pool for one engine."""

    def __init__(self, engine: Engine, cp_min: int = 5, cp_max: int = 10):
        self.engine = engine
        limit = engine.max_pool_size
        if limit is not None:
            cp_min, cp_max = min(cp_min, limit), min(cp_max, limit)
        self._pool = adbapi.ConnectionPool(
            engine.module.__name__,
            cp_min=cp_min,
            cp_max=cp_max,
            cp_reconnect=True,
            cp_noisy=False,
            cp_openfun=engine.on_new_connection,
            **engine.connect_args(),
        )

    def close(self) -> None:
        self._pool.close()

    async def run_interaction(self, desc: str, func: Callable[..., R], *args: Any) -> R:
        """Run `func(txn, *args)` in a transaction, committing on return, retrying on conflicts."""
        from twisted.internet import reactor

        for attempt in range(1, MAX_ATTEMPTS + 1):
            holder: list[Txn] = []
            start = time.perf_counter()
            try:
                result = await self._pool.runInteraction(self._run, desc, func, holder, args)
            except Exception as e:
                for callback in holder[0].on_failure if holder else []:
                    callback()
                if self.engine.is_retryable(e) and attempt < MAX_ATTEMPTS:
                    txn_retries.labels(desc).inc()
                    logger.info("Retrying transaction %s after conflict: %s", desc, e)
                    await task.deferLater(reactor, 0.01 * 2**attempt, lambda: None)
                    continue
                if self.engine.is_connection_error(e):
                    raise DatabaseUnavailableError(f"{desc}: {e}".strip()) from e
                raise
            finally:
                txn_duration.labels(desc).observe(time.perf_counter() - start)
            for callback in holder[0].after_commit:
                callback()
            return result
        raise AssertionError("unreachable")

    def _run(self, adbapi_txn: Any, desc: str, func: Callable[..., R], holder: list[Txn], args: Any) -> R:
        txn = Txn(adbapi_txn, self.engine, desc)
        holder.append(txn)
        return func(txn, *args)

    async def execute(self, desc: str, sql: str, *args: Any) -> list[Any]:
        """Run one statement and return its rows (empty for statements without results)."""

        def run(txn: Txn) -> list[Any]:
            txn.execute(sql, args)
            return txn.fetchall() if txn._cursor.description is not None else []

        return await self.run_interaction(desc, run)


