"""Global profiles (display name and avatar URL) of local users."""

from dataclasses import dataclass

from homeserver.storage.database import Database, Txn


@dataclass(frozen=True)
class Profile:
    displayname: str | None
    avatar_url: str | None


class ProfileStore:
    def __init__(self, db: Database):
        self.db = db

    async def create_profile(self, user_id: str, displayname: str | None) -> None:
        """The profile of a new account; an existing profile is left as it is."""
        await self.db.execute(
            "create_profile",
            "INSERT INTO profiles (user_id, displayname) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING",
            user_id, displayname,
        )

    async def get_profile(self, user_id: str) -> Profile | None:
        """None when the user has no profile (unknown users)."""
        rows = await self.db.execute(
            "get_profile", "SELECT displayname, avatar_url FROM profiles WHERE user_id = ?", user_id
        )
        return Profile(rows[0][0], rows[0][1]) if rows else None

    async def set_field(self, user_id: str, field: str, value: str | None) -> Profile:
        """Set `displayname` or `avatar_url` (None unsets it); returns the whole new profile."""
        if field not in ("displayname", "avatar_url"):
            raise ValueError(f"unknown profile field {field!r}")

        def txn_fn(txn: Txn) -> Profile:
            txn.execute(
                f"INSERT INTO profiles (user_id, {field}) VALUES (?, ?)"
                f" ON CONFLICT (user_id) DO UPDATE SET {field} = excluded.{field}",
                (user_id, value),
            )
            txn.execute("SELECT displayname, avatar_url FROM profiles WHERE user_id = ?", (user_id,))
            displayname, avatar_url = txn.fetchone()
            return Profile(displayname, avatar_url)

        return await self.db.run_interaction("set_profile_field", txn_fn)
