"""Push rules: the rules users created (`push_rules`), their changes to the server-default
rules (`push_rule_default_changes`) and the `push_rules` stream (`push_rules_stream`), one row
per change, so that any process can find whose rules changed between two positions.

Within a user's rules of one kind, a higher `priority` is more important.
"""

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from homeserver.storage.database import Database, Txn
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.stores.events import in_list

_CHUNK = 500


class RuleNotFoundError(Exception):
    """The rule a new rule was to be placed before or after does not exist."""


@dataclass(frozen=True)
class StoredRule:
    kind: str
    rule_id: str
    conditions: list[Any]
    pattern: str | None
    actions: list[Any]
    enabled: bool


@dataclass
class StoredRules:
    """One user's rules (most important first within each kind) and their changes to the
    server-default rules: (kind, rule_id) -> (enabled or None, actions or None)."""

    rules: list[StoredRule] = field(default_factory=list)
    default_changes: dict[tuple[str, str], tuple[bool | None, list[Any] | None]] = field(default_factory=dict)


def _encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class PushRulesStore:
    def __init__(self, db: Database, stream_ids: StreamIdGenerator):
        self.db = db
        self.stream_ids = stream_ids

    # --- reading ---------------------------------------------------------------------------

    async def get_rules_for_users(self, user_ids: Collection[str]) -> dict[str, StoredRules]:
        return await self.db.run_interaction("get_push_rules_for_users", self._get_rules_txn, list(user_ids))

    def _get_rules_txn(self, txn: Txn, user_ids: list[str]) -> dict[str, StoredRules]:
        result = {user_id: StoredRules() for user_id in user_ids}
        for start in range(0, len(user_ids), _CHUNK):
            clause, args = in_list("user_id", user_ids[start:start + _CHUNK])
            txn.execute(
                "SELECT user_id, kind, rule_id, conditions, pattern, actions, enabled FROM push_rules"
                f" WHERE {clause} ORDER BY user_id, kind, priority DESC, rule_id",
                args,
            )
            for user_id, kind, rule_id, conditions, pattern, actions, enabled in txn.fetchall():
                result[user_id].rules.append(
                    StoredRule(kind, rule_id, json.loads(conditions), pattern, json.loads(actions), bool(enabled))
                )
            txn.execute(f"SELECT user_id, kind, rule_id, enabled, actions FROM push_rule_default_changes WHERE {clause}", args)
            for user_id, kind, rule_id, enabled, actions in txn.fetchall():
                result[user_id].default_changes[(kind, rule_id)] = (
                    None if enabled is None else bool(enabled), None if actions is None else json.loads(actions),
                )
        return result

    async def get_max_stream_id(self) -> int:
        rows = await self.db.execute("get_max_push_rules_stream_id", "SELECT COALESCE(MAX(stream_id), 0) FROM push_rules_stream")
        return int(rows[0][0])

    async def has_user_changed_between(self, user_id: str, after: int, upto: int) -> bool:
        rows = await self.db.execute(
            "has_push_rules_changed",
            "SELECT 1 FROM push_rules_stream WHERE user_id = ? AND stream_id > ? AND stream_id <= ? LIMIT 1",
            user_id, after, upto,
        )
        return bool(rows)

    async def get_users_changed_between(self, after: int, upto: int) -> list[str]:
        return [user_id for _, user_id, _, _, _ in await self.get_changes_since(after, upto)]

    async def get_changes_since(self, from_id: int, to_id: int) -> list[tuple[int, str, str, str, str]]:
        """(stream_id, user_id, kind, rule_id, op) rows in (from_id, to_id], for catch-up."""
        rows = await self.db.execute(
            "get_push_rules_changes",
            "SELECT stream_id, user_id, kind, rule_id, op FROM push_rules_stream"
            " WHERE stream_id > ? AND stream_id <= ? ORDER BY stream_id",
            from_id, to_id,
        )
        return [(int(s), u, k, r, o) for s, u, k, r, o in rows]

    # --- writing ---------------------------------------------------------------------------

    def _record_change_txn(self, txn: Txn, user_id: str, kind: str, rule_id: str, op: str) -> int:
        stream_id = self.stream_ids.get_next_txn(txn)
        txn.execute(
            "INSERT INTO push_rules_stream (stream_id, instance_name, user_id, kind, rule_id, op) VALUES (?, ?, ?, ?, ?, ?)",
            (stream_id, self.stream_ids.instance_name, user_id, kind, rule_id, op),
        )
        return stream_id

    async def add_rule(
        self, user_id: str, kind: str, rule_id: str, conditions: list[Any], pattern: str | None, actions: list[Any],
        before: str | None, after: str | None,
    ) -> int:
        """Create or update a rule; with `before`/`after` (a rule of the same kind) also place
        it just above/below that rule. Returns the stream position of the change."""

        def txn_fn(txn: Txn) -> int:
            key = (user_id, kind, rule_id)
            txn.execute("SELECT enabled FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?", key)
            existing = txn.fetchone()
            relative = before or after
            if relative is None and existing is not None:
                txn.execute(
                    "UPDATE push_rules SET conditions = ?, pattern = ?, actions = ? WHERE user_id = ? AND kind = ? AND rule_id = ?",
                    (_encode(conditions), pattern, _encode(actions), *key),
                )
                return self._record_change_txn(txn, user_id, kind, rule_id, "put")
            if existing is not None:
                txn.execute("DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?", key)
            priority = self._new_priority_txn(txn, user_id, kind, before, after)
            txn.execute(
                "INSERT INTO push_rules (user_id, kind, rule_id, priority, conditions, pattern, actions, enabled)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, priority, _encode(conditions), pattern, _encode(actions), 1 if existing is None else existing[0]),
            )
            return self._record_change_txn(txn, user_id, kind, rule_id, "put")

        return await self.db.run_interaction("add_push_rule", txn_fn)

    def _new_priority_txn(self, txn: Txn, user_id: str, kind: str, before: str | None, after: str | None) -> int:
        relative = before or after
        if relative is None:
            txn.execute("SELECT COALESCE(MAX(priority), 0) FROM push_rules WHERE user_id = ? AND kind = ?", (user_id, kind))
            return int(txn.fetchone()[0]) + 1
        txn.execute("SELECT priority FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?", (user_id, kind, relative))
        row = txn.fetchone()
        if row is None:
            raise RuleNotFoundError(relative)
        anchor = int(row[0])
        # Make room: `before` takes the slot just above the anchor, `after` the anchor's own
        # slot (the anchor moves up with everything above it).
        lowest_moved = anchor + 1 if before else anchor
        txn.execute(
            "UPDATE push_rules SET priority = priority + 1 WHERE user_id = ? AND kind = ? AND priority >= ?",
            (user_id, kind, lowest_moved),
        )
        return lowest_moved

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> int | None:
        """Delete one of the user's rules; the stream position, or None if there was none."""

        def txn_fn(txn: Txn) -> int | None:
            txn.execute("DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?", (user_id, kind, rule_id))
            if txn.rowcount == 0:
                return None
            return self._record_change_txn(txn, user_id, kind, rule_id, "delete")

        return await self.db.run_interaction("delete_push_rule", txn_fn)

    async def set_attribute(
        self, user_id: str, kind: str, rule_id: str, attribute: str, value: Any, is_default: bool,
    ) -> int | None:
        """Set `enabled` or `actions` of a rule (for a server-default rule: the user's change
        to it). The stream position, or None when the user has no such rule."""
        column = {"enabled": "enabled", "actions": "actions"}[attribute]
        stored = (1 if value else 0) if attribute == "enabled" else _encode(value)

        def txn_fn(txn: Txn) -> int | None:
            if is_default:
                txn.execute(
                    f"INSERT INTO push_rule_default_changes (user_id, kind, rule_id, {column}) VALUES (?, ?, ?, ?)"
                    f" ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET {column} = excluded.{column}",
                    (user_id, kind, rule_id, stored),
                )
            else:
                txn.execute(
                    f"UPDATE push_rules SET {column} = ? WHERE user_id = ? AND kind = ? AND rule_id = ?",
                    (stored, user_id, kind, rule_id),
                )
                if txn.rowcount == 0:
                    return None
            return self._record_change_txn(txn, user_id, kind, rule_id, attribute)

        return await self.db.run_interaction("set_push_rule_attribute", txn_fn)
