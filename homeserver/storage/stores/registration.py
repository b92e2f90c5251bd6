"""Users, access tokens and admin-registration nonces."""

from dataclasses import dataclass

from homeserver.storage.database import Database, Txn
from homeserver.util.clock import now_ms


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    password_hash: str | None
    admin: bool
    deactivated: bool
    is_guest: bool
    user_type: str | None


@dataclass(frozen=True)
class TokenInfo:
    user_id: str
    device_id: str | None
    valid_until_ms: int | None
    deactivated: bool
    admin: bool
    is_guest: bool


class UserExistsError(Exception):
    pass


class RegistrationStore:
    def __init__(self, db: Database):
        self.db = db

    async def create_user(
        self, user_id: str, password_hash: str | None, admin: bool = False, user_type: str | None = None
    ) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute("SELECT 1 FROM users WHERE lower(user_id) = lower(?)", (user_id,))
            if txn.fetchone():
                raise UserExistsError(user_id)
            txn.execute(
                "INSERT INTO users (user_id, password_hash, creation_ts, admin, user_type)"
                " VALUES (?, ?, ?, ?, ?)",
                (user_id, password_hash, now_ms(), int(admin), user_type),
            )

        try:
            await self.db.run_interaction("create_user", txn_fn)
        except self.db.engine.module.IntegrityError as e:
            # A concurrent registration of the same name (in any case) won the race.
            raise UserExistsError(user_id) from e

    async def get_user(self, user_id: str) -> UserInfo | None:
        rows = await self.db.execute(
            "get_user",
            "SELECT user_id, password_hash, admin, deactivated, is_guest, user_type FROM users WHERE user_id = ?",
            user_id,
        )
        if not rows:
            return None
        uid, pw, admin, deactivated, guest, user_type = rows[0]
        return UserInfo(uid, pw, bool(admin), bool(deactivated), bool(guest), user_type)

    async def find_user_case_insensitive(self, user_id: str) -> list[str]:
        rows = await self.db.execute(
            "find_user", "SELECT user_id FROM users WHERE lower(user_id) = lower(?)", user_id
        )
        return [r[0] for r in rows]

    async def is_user_taken(self, user_id: str) -> bool:
        return bool(await self.find_user_case_insensitive(user_id))

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self.db.execute("set_password_hash", "UPDATE users SET password_hash = ? WHERE user_id = ?", password_hash, user_id)

    async def set_deactivated(self, user_id: str) -> None:
        await self.db.execute(
            "set_deactivated", "UPDATE users SET deactivated = 1, password_hash = NULL WHERE user_id = ?", user_id
        )

    async def add_access_token(self, token: str, user_id: str, device_id: str | None, valid_until_ms: int | None = None) -> None:
        await self.db.execute(
            "add_access_token",
            "INSERT INTO access_tokens (token, user_id, device_id, created_ts, valid_until_ms) VALUES (?, ?, ?, ?, ?)",
            token, user_id, device_id, now_ms(), valid_until_ms,
        )

    async def get_token_info(self, token: str) -> TokenInfo | None:
        rows = await self.db.execute(
            "get_token_info",
            "SELECT t.user_id, t.device_id, t.valid_until_ms, u.deactivated, u.admin, u.is_guest"
            " FROM access_tokens AS t JOIN users AS u ON u.user_id = t.user_id WHERE t.token = ?",
            token,
        )
        if not rows:
            return None
        user_id, device_id, valid_until, deactivated, admin, guest = rows[0]
        return TokenInfo(user_id, device_id, valid_until, bool(deactivated), bool(admin), bool(guest))

    async def delete_access_token(self, token: str) -> None:
        await self.db.execute("delete_access_token", "DELETE FROM access_tokens WHERE token = ?", token)

    async def delete_access_tokens_for_user(self, user_id: str, except_token: str | None = None) -> None:
        await self.db.execute(
            "delete_access_tokens_for_user",
            "DELETE FROM access_tokens WHERE user_id = ? AND token <> ?",
            user_id, except_token or "",
        )

    async def store_nonce(self, nonce: str) -> None:
        await self.db.execute(
            "store_nonce", "INSERT INTO registration_nonces (nonce, created_ts) VALUES (?, ?)", nonce, now_ms()
        )

    async def consume_nonce(self, nonce: str, max_age_ms: int) -> bool:
        """True when the nonce existed and was fresh; it can never be used again."""

        def txn_fn(txn: Txn) -> bool:
            txn.execute("DELETE FROM registration_nonces WHERE created_ts < ?", (now_ms() - max_age_ms,))
            txn.execute("DELETE FROM registration_nonces WHERE nonce = ?", (nonce,))
            return txn.rowcount == 1

        return await self.db.run_interaction("consume_nonce", txn_fn)
