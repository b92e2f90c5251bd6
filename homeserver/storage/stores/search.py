"""Full-text search of room events: PostgreSQL `tsvector` or SQLite FTS5, one row per
searchable event (message body, room name, room topic)."""

import re
from dataclasses import dataclass
from typing import Any

from homeserver.events.event import Event
from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.events import in_list

# Which content field of which event type is searchable, and the key clients name it by.
SEARCHABLE = {"m.room.message": ("body", "content.body"), "m.room.name": ("name", "content.name"),
              "m.room.topic": ("topic", "content.topic")}

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchHit:
    event_id: str
    rank: float


def search_words(term: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(term)][:20]


def store_search_txn(txn: Txn, event: Event, stream_ordering: int) -> None:
    """Index `event` if it has searchable text; called inside the persist transaction."""
    field = SEARCHABLE.get(event.type)
    if field is None:
        return
    value = event.content.get(field[0])
    if not isinstance(value, str) or not value:
        return
    value = value.replace("\x00", " ")  # PostgreSQL text cannot hold NUL; it separates words anyway
    args = (event.event_id, event.room_id, event.sender, field[1], value, event.origin_server_ts, stream_ordering)
    if txn.engine.name == "postgres":
        txn.execute(
            "INSERT INTO event_search (event_id, room_id, sender, key, vector, origin_server_ts, stream_ordering)"
            " VALUES (?, ?, ?, ?, to_tsvector('english', ?), ?, ?) ON CONFLICT (event_id) DO NOTHING",
            args,
        )
    else:
        txn.execute(
            "INSERT INTO event_search (event_id, room_id, sender, key, value, origin_server_ts, stream_ordering)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            args,
        )


def delete_search_txn(txn: Txn, event_id: str) -> None:
    txn.execute("DELETE FROM event_search WHERE event_id = ?", (event_id,))


class SearchStore:
    def __init__(self, db: Database):
        self.db = db

    async def search(
        self, words: list[str], room_ids: list[str], keys: list[str], order_by: str,
        senders: list[str] | None, limit: int, offset: int,
    ) -> tuple[list[SearchHit], int]:
        """Matching events (best first, or newest first) and the total count."""
        if not words or not room_ids or not keys:
            return [], 0
        return await self.db.run_interaction(
            "search_events", self._search_txn, words, room_ids, keys, order_by, senders, limit, offset
        )

    def _search_txn(
        self, txn: Txn, words: list[str], room_ids: list[str], keys: list[str], order_by: str,
        senders: list[str] | None, limit: int, offset: int,
    ) -> tuple[list[SearchHit], int]:
        room_clause, args = in_list("room_id", room_ids)
        key_clause, key_args = in_list("key", keys)
        clauses = [room_clause, key_clause]
        args += key_args
        if senders:
            sender_clause, sender_args = in_list("sender", senders)
            clauses.append(sender_clause)
            args += sender_args
        where = " AND ".join(clauses)
        if txn.engine.name == "postgres":
            query = " & ".join(f"{w}:*" for w in words)
            rank = "ts_rank_cd(vector, to_tsquery('english', ?))"
            match = "vector @@ to_tsquery('english', ?)"
            match_args: list[Any] = [query]
            rank_args: list[Any] = [query]
            order = "rank DESC" if order_by == "rank" else "origin_server_ts DESC, stream_ordering DESC"
        else:
            query = " AND ".join(f'"{w}"*' for w in words)
            rank = "-bm25(event_search)"
            match = "event_search MATCH ?"
            match_args, rank_args = [query], []
            order = "rank DESC" if order_by == "rank" else "CAST(origin_server_ts AS INTEGER) DESC, CAST(stream_ordering AS INTEGER) DESC"
        txn.execute(
            f"SELECT event_id, {rank} AS rank FROM event_search WHERE {match} AND {where} ORDER BY {order} LIMIT ? OFFSET ?",
            rank_args + match_args + args + [limit, offset],
        )
        hits = [SearchHit(event_id, float(score)) for event_id, score in txn.fetchall()]
        txn.execute(f"SELECT COUNT(*) FROM event_search WHERE {match} AND {where}", match_args + args)
        return hits, int(txn.fetchone()[0])
