"""Users, access tokens and admin-registration nonces.

Access tokens are looked up on every request, so their answers are cached in memory; every
write that ends a token or changes what it says (logout, device deletion, password change,
deactivation) invalidates the cache through the `caches` stream, in every process.
"""

from dataclasses import dataclass

from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.caches import CacheInvalidationStore
from homeserver.util.caches import LruCache
from homeserver.util.clock import now_ms

TOKEN_CACHE = "access_tokens"
USER_TOKENS_CACHE = "access_tokens_of_user"


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
    def __init__(self, db: Database, caches: CacheInvalidationStore | None = None):
        self.db = db
        self.caches = caches
        self._tokens: LruCache[str, tuple[TokenInfo, int]] = LruCache(TOKEN_CACHE, 100_000)
        # Bumped by every invalidation; a cached token is trusted only if it was loaded after
        # its user's last invalidation, and a load that raced an invalidation is not cached.
        self._epoch = 0
        self._user_epochs: dict[str, int] = {}
        if caches is not None:
            caches.register(TOKEN_CACHE, self._forget_tokens)
            caches.register(USER_TOKENS_CACHE, self._forget_users)

    def _forget_tokens(self, tokens: list[str]) -> None:
        self._epoch += 1
        for token in tokens:
            self._tokens.invalidate(token)

    def _forget_users(self, user_ids: list[str]) -> None:
        self._epoch += 1
        for user_id in user_ids:
            self._user_epochs[user_id] = self._epoch

    def invalidate_user_tokens_txn(self, txn: Txn, user_id: str) -> None:
        """Every cached token of `user_id` is stale once `txn` commits (in every process)."""
        if self.caches is not None:
            self.caches.invalidate_txn(txn, USER_TOKENS_CACHE, [user_id])

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
        def txn_fn(txn: Txn) -> None:
            txn.execute("UPDATE users SET deactivated = 1, password_hash = NULL WHERE user_id = ?", (user_id,))
            self.invalidate_user_tokens_txn(txn, user_id)

        await self.db.run_interaction("set_deactivated", txn_fn)

    async def add_access_token(self, token: str, user_id: str, device_id: str | None, valid_until_ms: int | None = None) -> None:
        await self.db.execute(
            "add_access_token",
            "INSERT INTO access_tokens (token, user_id, device_id, created_ts, valid_until_ms) VALUES (?, ?, ?, ?, ?)",
            token, user_id, device_id, now_ms(), valid_until_ms,
        )

    async def get_token_info(self, token: str) -> TokenInfo | None:
        cached = self._tokens.get(token)
        if cached is not None and cached[1] >= self._user_epochs.get(cached[0].user_id, 0):
            return cached[0]
        epoch = self._epoch
        info = await self._load_token_info(token)
        if info is not None and self.caches is not None and epoch == self._epoch:
            self._tokens.set(token, (info, epoch))
        return info

    async def _load_token_info(self, token: str) -> TokenInfo | None:
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
        def txn_fn(txn: Txn) -> None:
            txn.execute("DELETE FROM access_tokens WHERE token = ?", (token,))
            if self.caches is not None:
                self.caches.invalidate_txn(txn, TOKEN_CACHE, [token])

        await self.db.run_interaction("delete_access_token", txn_fn)

    async def delete_access_tokens_for_user(self, user_id: str, except_token: str | None = None) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute("DELETE FROM access_tokens WHERE user_id = ? AND token <> ?", (user_id, except_token or ""))
            self.invalidate_user_tokens_txn(txn, user_id)

        await self.db.run_interaction("delete_access_tokens_for_user", txn_fn)

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
