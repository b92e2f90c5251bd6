"""Stream id generators (DESIGN §3), ready for several writers per stream.

On PostgreSQL positions come from a sequence shared by every writer of the stream; on SQLite
(single process only) from a local counter. Each writer tracks which of its ids are still in
flight; its *position* is the highest id below which all of its own ids are committed (or,
when it has nothing in flight, the highest id it has seen from anyone). A stream's *current
token* — the position every reader may safely serve — is the minimum over the writers.

Each generator also keeps `changes`, a `StreamChangeCache` of the entities (users, rooms) its
rows touched: a writer records them when its transaction commits, before its position moves;
a reader records them while catching up, before it advances. A sync can then skip the query
for a user the stream has not touched since the sync's token.
"""

import logging
import threading
from collections.abc import Callable, Iterable

from homeserver.storage.database import Database, Txn
from homeserver.util.stream_change_cache import StreamChangeCache

logger = logging.getLogger(__name__)


class NotAWriterError(Exception):
    """This process tried to allocate a position on a stream it does not write."""


class StreamIdGenerator:
    def __init__(
        self,
        stream_name: str,
        instance_name: str,
        writers: list[str],
        table: str,
        sequence_name: str,
        id_column: str = "stream_id",
    ):
        self.stream_name = stream_name
        self.instance_name = instance_name
        self.writers = list(writers)
        self._table = table
        self._id_column = id_column
        self._sequence = sequence_name
        self._lock = threading.Lock()
        self._unfinished: set[int] = set()
        # One entry per `nextval` under way: `_max_seen` when it began. The id it returns is
        # above that, and not yet in `_unfinished`, so our position must not pass the entry.
        self._fetching: list[int] = []
        self._max_seen = 0
        self._local_position = 0
        self._positions: dict[str, int] = {}
        self._sqlite = False
        # Called on the reactor whenever this writer's own position moves forward: with True
        # when its own write finished, False when it caught up with other writers' ids.
        self.on_local_advance: list[Callable[[bool], None]] = []
        # Which entities changed after a position; answers "changed" until `load`.
        self.changes = StreamChangeCache(stream_name, 2**62)

    @property
    def is_writer(self) -> bool:
        return self.instance_name in self.writers

    @property
    def table(self) -> str:
        """The table whose rows carry this stream's positions."""
        return self._table

    @property
    def id_column(self) -> str:
        return self._id_column

    async def load(self, db: Database) -> None:
        """Read the persisted positions of every writer; call once at start-up."""
        self._sqlite = db.engine.name == "sqlite"
        await db.run_interaction(f"load_{self.stream_name}_positions", self._load_txn)

    def _load_txn(self, txn: Txn) -> None:
        txn.execute(f"SELECT COALESCE(MAX({self._id_column}), 0) FROM {self._table}")
        table_max = int(txn.fetchone()[0])
        txn.execute(
            "SELECT instance_name, stream_id FROM stream_positions WHERE stream_name = ?",
            (self.stream_name,),
        )
        stored = {name: int(pos) for name, pos in txn.fetchall()}
        if not self._sqlite:
            txn.execute(f"SELECT last_value, is_called FROM {self._sequence}")
            last_value, is_called = txn.fetchone()
            seq_max = int(last_value) if is_called else 0
            if table_max > seq_max:
                logger.warning("%s sequence behind its table; moving it to %d", self._sequence, table_max)
                txn.execute("SELECT setval(?, ?)", (self._sequence, table_max))
                seq_max = table_max
        else:
            seq_max = table_max
        # Rows this writer may have committed after its last recorded position.
        txn.execute(
            f"SELECT COALESCE(MAX({self._id_column}), 0) FROM {self._table} WHERE instance_name = ?",
            (self.instance_name,),
        )
        own_max = int(txn.fetchone()[0])
        with self._lock:
            self._max_seen = max(seq_max, table_max)
            for writer in self.writers:
                self._positions[writer] = stored.get(writer, 0)
            if self.is_writer:
                # With nothing in flight at start, everything allocated so far is behind us.
                self._local_position = max(self._max_seen, own_max)
                self._positions[self.instance_name] = self._local_position
            if not stored and not self.is_writer:
                for writer in self.writers:
                    self._positions[writer] = table_max
        # Everything after the current token reaches this process through a local commit or
        # replication, both of which record what they touched.
        self.changes.reset(self.get_current_token())

    def get_next_txn(self, txn: Txn, changed: Iterable[str] = ()) -> int:
        """Allocate the next position inside `txn`; it becomes visible once `txn` commits.
        `changed` are the entities (user or room ids) the row touches, for `changes`."""
        if not self.is_writer:
            raise NotAWriterError(f"{self.instance_name} does not write the {self.stream_name} stream")
        if self._sqlite:
            with self._lock:
                self._max_seen += 1
                next_id = self._max_seen
                self._unfinished.add(next_id)
        else:
            with self._lock:
                floor = self._max_seen
                self._fetching.append(floor)
            try:
                txn.execute(f"SELECT nextval('{self._sequence}')")
                next_id = int(txn.fetchone()[0])
            except BaseException:
                with self._lock:
                    self._fetching.remove(floor)
                raise
            with self._lock:
                self._fetching.remove(floor)
                self._unfinished.add(next_id)
                self._max_seen = max(self._max_seen, next_id)
        entities = tuple(changed)
        txn.call_after_commit(lambda: self._mark_finished(next_id, entities))
        txn.call_on_failure(lambda: self._mark_finished(next_id))
        return next_id

    def _mark_finished(self, stream_id: int, changed: tuple[str, ...] = ()) -> None:
        for entity in changed:
            self.changes.entity_has_changed(entity, stream_id)
        with self._lock:
            self._unfinished.discard(stream_id)
            if self._unfinished:
                position = min(self._unfinished) - 1
            else:
                position = self._max_seen
            if self._fetching:
                position = min(position, min(self._fetching))
            advanced = position > self._local_position
            self._local_position = max(self._local_position, position)
            self._positions[self.instance_name] = self._local_position
        if advanced:
            for callback in self.on_local_advance:
                callback(True)

    def advance(self, instance_name: str, position: int) -> None:
        """Another writer has persisted up to `position` (learned through replication)."""
        advanced = False
        with self._lock:
            if position > self._positions.get(instance_name, 0):
                self._positions[instance_name] = position
            self._max_seen = max(self._max_seen, position)
            if self.is_writer and not self._unfinished:
                position = min([self._max_seen, *self._fetching])
                advanced = position > self._local_position
                self._local_position = max(self._local_position, position)
                self._positions[self.instance_name] = self._local_position
        # An idle writer moves along with the others; readers serve the minimum over the
        # writers, so they must hear of it at once, not at the next heartbeat.
        if advanced:
            for callback in self.on_local_advance:
                callback(False)

    def get_position(self, instance_name: str) -> int:
        with self._lock:
            return self._positions.get(instance_name, 0)

    def get_local_position(self) -> int:
        """How far this writer has persisted without gaps (what it announces in POSITION)."""
        with self._lock:
            return self._local_position

    def get_current_token(self) -> int:
        """The position up to which every writer has persisted: safe to serve to clients."""
        with self._lock:
            return min(self._positions.get(w, 0) for w in self.writers)

    def get_positions(self) -> dict[str, int]:
        with self._lock:
            return dict(self._positions)

    async def persist_position(self, db: Database) -> None:
        """Record this writer's position so that a restart of any process can find it."""
        position = self.get_local_position()

        def upsert(txn: Txn) -> None:
            txn.execute(
                "INSERT INTO stream_positions (stream_name, instance_name, stream_id) VALUES (?, ?, ?)"
                " ON CONFLICT (stream_name, instance_name) DO UPDATE SET stream_id = excluded.stream_id"
                " WHERE stream_positions.stream_id < excluded.stream_id",
                (self.stream_name, self.instance_name, position),
            )

        await db.run_interaction(f"persist_{self.stream_name}_position", upsert)
