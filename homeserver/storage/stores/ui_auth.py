"""User-interactive auth sessions, kept in the database so any process can continue a session."""

import json
from typing import Any

from homeserver.storage.database import Database, Txn
from homeserver.util.clock import now_ms


class UIAuthStore:
    def __init__(self, db: Database):
        self.db = db

    async def create_session(self, session_id: str, clientdict: dict[str, Any], uri: str, method: str, description: str) -> None:
        await self.db.execute(
            "create_ui_auth_session",
            "INSERT INTO ui_auth_sessions (session_id, creation_ts, uri, method, clientdict, description)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            session_id, now_ms(), uri, method, json.dumps(clientdict), description,
        )

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        rows = await self.db.execute(
            "get_ui_auth_session",
            "SELECT uri, method, clientdict, serverdict, creation_ts FROM ui_auth_sessions WHERE session_id = ?",
            session_id,
        )
        if not rows:
            return None
        uri, method, clientdict, serverdict, ts = rows[0]
        return {
            "uri": uri, "method": method, "clientdict": json.loads(clientdict),
            "serverdict": json.loads(serverdict), "creation_ts": ts,
        }

    async def set_server_data(self, session_id: str, data: dict[str, Any]) -> None:
        """Replace the server-side data of the session."""
        await self.db.execute(
            "set_ui_auth_server_data",
            "UPDATE ui_auth_sessions SET serverdict = ? WHERE session_id = ?",
            json.dumps(data), session_id,
        )

    async def mark_stage_complete(self, session_id: str, stage_type: str, result: Any) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute(
                "DELETE FROM ui_auth_sessions_credentials WHERE session_id = ? AND stage_type = ?",
                (session_id, stage_type),
            )
            txn.execute(
                "INSERT INTO ui_auth_sessions_credentials (session_id, stage_type, result) VALUES (?, ?, ?)",
                (session_id, stage_type, json.dumps(result)),
            )

        await self.db.run_interaction("mark_ui_auth_stage_complete", txn_fn)

    async def get_completed_stages(self, session_id: str) -> dict[str, Any]:
        rows = await self.db.execute(
            "get_completed_ui_auth_stages",
            "SELECT stage_type, result FROM ui_auth_sessions_credentials WHERE session_id = ?",
            session_id,
        )
        return {stage: json.loads(result) for stage, result in rows}

    async def delete_session(self, session_id: str) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute("DELETE FROM ui_auth_sessions_credentials WHERE session_id = ?", (session_id,))
            txn.execute("DELETE FROM ui_auth_sessions WHERE session_id = ?", (session_id,))

        await self.db.run_interaction("delete_ui_auth_session", txn_fn)

    async def delete_old_sessions(self, older_than_ms: int) -> None:
        def txn_fn(txn: Txn) -> None:
            cutoff = now_ms() - older_than_ms
            txn.execute(
                "DELETE FROM ui_auth_sessions_credentials WHERE session_id IN"
                " (SELECT session_id FROM ui_auth_sessions WHERE creation_ts < ?)",
                (cutoff,),
            )
            txn.execute("DELETE FROM ui_auth_sessions WHERE creation_ts < ?", (cutoff,))

        await self.db.run_interaction("delete_old_ui_auth_sessions", txn_fn)
