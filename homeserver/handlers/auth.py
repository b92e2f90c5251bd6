"""Passwords (bcrypt off the reactor thread) and user-interactive authentication (UIA).

UIA sessions live in the database so that a client may continue a session on any process.
"""

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bcrypt
from twisted.internet import threads

from homeserver.http.errors import InteractiveAuthIncomplete, MatrixError
from homeserver.util.stringutils import make_user_id, random_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

MAX_PASSWORD_LENGTH = 512
UIA_SESSION_LIFETIME_MS = 24 * 3600 * 1000

LOGIN_TYPE_PASSWORD = "m.login.password"
LOGIN_TYPE_DUMMY = "m.login.dummy"

# Request fields never stored in a UIA session: the servlet keeps a hash in `server_data`.
SECRET_FIELDS = ("password", "new_password")


@dataclass
class UIAResult:
    """A completed user-interactive auth: the stages done, the request's parameters (from the
    request, or from the session when the request carried only `auth`) and the server data."""

    completed: dict[str, Any]
    params: dict[str, Any]
    server_data: dict[str, Any] = field(default_factory=dict)


class AuthHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.config = hs.config.registration

    # --- passwords -------------------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        peppered = (password + self.config.password_pepper).encode("utf-8")
        rounds = self.config.bcrypt_rounds

        def do_hash() -> str:
            return bcrypt.hashpw(peppered, bcrypt.gensalt(rounds)).decode("ascii")

        return await threads.deferToThread(do_hash)

    async def check_password_hash(self, password: str, stored_hash: str | None) -> bool:
        if not stored_hash:
            return False
        peppered = (password + self.config.password_pepper).encode("utf-8")

        def do_check() -> bool:
            try:
                return bcrypt.checkpw(peppered, stored_hash.encode("ascii"))
            except ValueError:
                return False

        return await threads.deferToThread(do_check)

    def check_password_policy(self, password: str) -> None:
        if len(password) > MAX_PASSWORD_LENGTH:
            raise MatrixError(400, "Password too long", "M_INVALID_PARAM")
        policy = self.config.password_policy
        if not policy:
            return
        if len(password) < policy.get("minimum_length", 0):
            raise MatrixError(400, "Password too short", "M_PASSWORD_TOO_SHORT")
        checks = [
            ("require_digit", str.isdigit, "M_PASSWORD_NO_DIGIT", "a digit"),
            ("require_lowercase", str.islower, "M_PASSWORD_NO_LOWERCASE", "a lowercase letter"),
            ("require_uppercase", str.isupper, "M_PASSWORD_NO_UPPERCASE", "an uppercase letter"),
            ("require_symbol", lambda c: not c.isalnum(), "M_PASSWORD_NO_SYMBOL", "a symbol"),
        ]
        for key, test, errcode, what in checks:
            if policy.get(key) and not any(test(c) for c in password):
                raise MatrixError(400, f"Password must contain {what}", errcode)

    def resolve_user_id(self, user: str) -> str:
        """`alice` or `@alice:server` -> the full user id (lower-cased localpart for local users)."""
        if user.startswith("@"):
            return user
        return make_user_id(user.lower(), self.hs.hostname)

    async def check_user_password(self, user: str, password: str) -> str | None:
        """The canonical user id when the password is right, else None."""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            return None
        user_id = self.resolve_user_id(user)
        store = self.hs.stores.registration
        info = await store.get_user(user_id)
        if info is None:
            matches = await store.find_user_case_insensitive(user_id)
            if len(matches) != 1:
                return None
            info = await store.get_user(matches[0])
        if info is None or not self.config.password_localdb_enabled:
            return None
        if not await self.check_password_hash(password, info.password_hash):
            return None
        if info.deactivated:
            raise MatrixError(403, "This account has been deactivated", "M_USER_DEACTIVATED")
        return info.user_id

    # --- user-interactive auth -------------------------------------------------------------

    async def check_ui_auth(
        self,
        flows: list[list[str]],
        request_body: dict[str, Any],
        uri: str,
        method: str,
        description: str,
        requester_user_id: str | None = None,
        server_data: dict[str, Any] | None = None,
    ) -> UIAResult:
        """Run one step of UIA. Returns the result once a flow is complete; otherwise raises
        InteractiveAuthIncomplete with the 401 body. `server_data` is kept in the session
        (never shown to the client) and returned with the result."""
        store = self.hs.stores.ui_auth
        auth = request_body.get("auth")
        params = {k: v for k, v in request_body.items() if k != "auth"}
        stored_params = {k: v for k, v in params.items() if k not in SECRET_FIELDS}
        kept = dict(server_data or {})
        if auth is not None and not isinstance(auth, dict):
            raise MatrixError(400, "'auth' must be an object", "M_BAD_JSON")
        session_id = auth.get("session") if auth else None
        if session_id is not None and (not isinstance(session_id, str) or "\x00" in session_id):
            raise MatrixError(400, "'auth.session' must be a string", "M_INVALID_PARAM")
        if session_id is not None:
            session = await store.get_session(session_id)
            if session is None:
                raise MatrixError(400, f"Unknown session ID: {session_id}", "M_UNKNOWN")
            if session["uri"] != uri or session["method"] != method:
                raise MatrixError(403, "Requested operation has changed during the UI authentication session.", "M_FORBIDDEN")
            if not params:
                params = session["clientdict"]
            kept = {**session["serverdict"], **kept}
            if server_data:
                await store.set_server_data(session_id, kept)
        else:
            session_id = random_string(24)
            await store.create_session(session_id, stored_params, uri, method, description)
            if kept:
                await store.set_server_data(session_id, kept)

        error: MatrixError | None = None
        if auth and "type" in auth:
            try:
                result = await self._check_stage(auth, flows, requester_user_id)
                await store.mark_stage_complete(session_id, auth["type"], result)
            except MatrixError as e:
                error = e
        completed = await store.get_completed_stages(session_id)
        for flow in flows:
            if all(stage in completed for stage in flow):
                await store.delete_session(session_id)
                return UIAResult(completed, params, kept)
        body: dict[str, Any] = {
            "flows": [{"stages": flow} for flow in flows],
            "params": {},
            "session": session_id,
        }
        if completed:
            body["completed"] = sorted(completed)
        if error is not None:
            body.update(errcode=error.errcode, error=error.msg)
        raise InteractiveAuthIncomplete(body)

    async def _check_stage(self, auth: dict[str, Any], flows: list[list[str]], requester_user_id: str | None) -> Any:
        stage = auth["type"]
        if not any(stage in flow for flow in flows):
            raise MatrixError(400, f"Authentication type {stage!r} is not allowed here", "M_UNRECOGNIZED")
        if stage == LOGIN_TYPE_DUMMY:
            return True
        if stage == LOGIN_TYPE_PASSWORD:
            user = login_user_from_body(auth)
            password = auth.get("password")
            if not isinstance(password, str):
                raise MatrixError(400, "Missing password", "M_MISSING_PARAM")
            user_id = await self.check_user_password(user, password)
            if user_id is None or (requester_user_id is not None and user_id != requester_user_id):
                raise MatrixError(403, "Invalid password", "M_FORBIDDEN")
            return user_id
        raise MatrixError(400, f"Unsupported authentication type {stage!r}", "M_UNRECOGNIZED")


def login_user_from_body(body: dict[str, Any]) -> str:
    """The user named by an `identifier` of type m.id.user, or the legacy `user` field."""
    identifier = body.get("identifier")
    if identifier is None and "user" in body:
        identifier = {"type": "m.id.user", "user": body["user"]}
    if not isinstance(identifier, dict):
        raise MatrixError(400, "Missing 'identifier'", "M_MISSING_PARAM")
    kind = identifier.get("type")
    if kind != "m.id.user":
        raise MatrixError(400, f"Unsupported identifier type {kind!r}: only m.id.user is supported", "M_UNKNOWN")
    user = identifier.get("user")
    if not isinstance(user, str) or not user or "\x00" in user:
        raise MatrixError(400, "'identifier.user' must be a non-empty string without NUL", "M_INVALID_PARAM")
    return user
