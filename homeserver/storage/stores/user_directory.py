"""The user directory: a search index over local users' ids and display names, and the
search query that finds the users a searcher may see.

Who is visible is decided from current room state at search time (rooms shared with the
searcher, rooms with a `public` join rule or `world_readable` history), so nothing needs
updating when memberships change; only profile changes touch the index.
"""

from dataclasses import dataclass

from homeserver.storage.database import Database


@dataclass(frozen=True)
class DirectoryEntry:
    user_id: str
    display_name: str | None
    avatar_url: str | None


def _content_field(engine_name: str, field: str) -> str:
    """SQL for a string field of the content of the event joined as `e`."""
    if engine_name == "postgres":
        # `json` rather than `jsonb`: it accepts every string an event may hold (\u0000).
        return f"(CAST(e.json AS json) -> 'content' ->> '{field}')"
    return f"json_extract(e.json, '$.content.{field}')"


def _public_rooms_sql(engine_name: str) -> str:
    """Rooms anyone may join or read: their members are visible to every searcher."""
    return (
        "SELECT c.room_id FROM current_state_events AS c JOIN events AS e ON e.event_id = c.event_id"
        " WHERE c.state_key = '' AND ("
        f"(c.type = 'm.room.join_rules' AND {_content_field(engine_name, 'join_rule')} = 'public')"
        f" OR (c.type = 'm.room.history_visibility'"
        f" AND {_content_field(engine_name, 'history_visibility')} = 'world_readable'))"
    )


class UserDirectoryStore:
    def __init__(self, db: Database):
        self.db = db

    async def update_search_text(self, user_id: str, search_text: str) -> None:
        await self.db.execute(
            "update_user_directory",
            "INSERT INTO user_directory_search (user_id, search_text) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET search_text = excluded.search_text",
            user_id, search_text,
        )

    async def search(self, searcher: str, words: list[str], limit: int, search_all: bool) -> list[DirectoryEntry]:
        """Up to `limit` active users other than the searcher whose indexed words start with
        every one of `words` (lower-case, alphanumeric), best matches first."""
        args: list[object] = [searcher]
        where = ["u.deactivated = 0", "d.user_id <> ?"]
        for word in words:
            where.append("d.search_text LIKE ?")
            args.append(f"% {word}%")
        if not search_all:
            where.append(
                "d.user_id IN (SELECT m.state_key FROM current_state_events AS m"
                " WHERE m.type = 'm.room.member' AND m.membership = 'join' AND ("
                "m.room_id IN (SELECT room_id FROM current_state_events WHERE type = 'm.room.member'"
                " AND state_key = ? AND membership = 'join')"
                f" OR m.room_id IN ({_public_rooms_sql(self.db.engine.name)})))"
            )
            args.append(searcher)
        args += [f"% {' '.join(words)} %", limit]
        rows = await self.db.execute(
            "search_user_directory",
            "SELECT d.user_id, p.displayname, p.avatar_url FROM user_directory_search AS d"
            " JOIN users AS u ON u.user_id = d.user_id"
            " LEFT JOIN profiles AS p ON p.user_id = d.user_id"
            f" WHERE {' AND '.join(where)}"
            " ORDER BY CASE WHEN d.search_text LIKE ? THEN 0 ELSE 1 END,"
            " CASE WHEN p.displayname IS NULL THEN 1 ELSE 0 END,"
            " CASE WHEN p.avatar_url IS NULL THEN 1 ELSE 0 END, d.user_id"
            " LIMIT ?",
            *args,
        )
        return [DirectoryEntry(u, n, a) for u, n, a in rows]
