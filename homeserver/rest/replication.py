"""Servlets of the `replication` listener resource (`/_synapse/replication/...`), never
public. Every call needs `worker_replication_secret` when one is set, and each carries an
idempotency key: a retried call gets the first call's answer."""

import hmac
from typing import Any

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.http.errors import MatrixError
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_json_object
from homeserver.storage.persist_events import DuplicateTransactionError, EventContext
from homeserver.util.caches import LruCache


class ReplicationServlet(RestServlet):
    """Checks the secret and answers retries from a cache of recent responses (calls that
    only read set `remember_answers = False`)."""

    remember_answers = True

    def __init__(self, hs: Any):
        super().__init__(hs)
        self._responses: LruCache[str, tuple[int, Any]] = LruCache(f"replication_{type(self).__name__}", 10_000)

    def check_secret(self, request: HomeserverRequest) -> None:
        secret = self.hs.config.worker.replication_secret
        if not secret:
            return
        header = request.getHeader("authorization") or ""
        if not hmac.compare_digest(header.encode(), f"Bearer {secret}".encode()):
            raise MatrixError(401, "Missing or wrong replication secret", "M_UNAUTHORIZED")

    async def on_POST(self, request: HomeserverRequest, txn_id: str) -> tuple[int, Any]:
        self.check_secret(request)
        cached = self._responses.get(txn_id)
        if cached is not None:
            return cached
        body = parse_json_object(request)
        result = 200, await self.handle(body)
        if self.remember_answers:
            self._responses.set(txn_id, result)
        return result

    async def handle(self, body: dict[str, Any]) -> Any:
        raise NotImplementedError


class PersistEventServlet(ReplicationServlet):
    """Persist an event created on another process (this process persists the room)."""

    async def handle(self, body: dict[str, Any]) -> Any:
        version = KNOWN_ROOM_VERSIONS.get(str(body.get("room_version")))
        pdu = body.get("pdu")
        if version is None or not isinstance(pdu, dict):
            raise MatrixError(400, "room_version and pdu are required", "M_BAD_JSON")
        event = Event(pdu, version)
        existing = await self.hs.stores.events.get_position(event.event_id)
        if existing is not None:  # Persisted by an earlier call whose answer was lost.
            return {"event_id": event.event_id, "stream_ordering": existing.stream}
        state_before = {(t, k): e for t, k, e in body.get("state_before", [])}
        group = body.get("state_group_before")
        if group is not None and not state_before:
            state_before = dict((await self.hs.stores.state.get_state_for_groups([group]))[group])
        txn = body.get("txn")
        context = EventContext(group, state_before, tuple(txn) if isinstance(txn, list) and len(txn) == 3 else None)  # type: ignore[arg-type]
        try:
            ordering = await self.hs.events_persister.persist(event, context)
        except DuplicateTransactionError as e:  # a retry raced its first attempt, which won
            position = await self.hs.stores.events.get_position(e.event_id)
            if position is None:
                raise MatrixError(503, "The earlier attempt of this request is still being stored", "M_UNKNOWN") from e
            return {"event_id": e.event_id, "stream_ordering": position.stream}
        return {"event_id": event.event_id, "stream_ordering": ordering}


class TypingUpdatesServlet(ReplicationServlet):
    """On the typing writer: the rooms whose typing changed since a reader's position."""

    remember_answers = False

    async def handle(self, body: dict[str, Any]) -> Any:
        since = body.get("since")
        if not isinstance(since, int):
            raise MatrixError(400, "since must be an integer", "M_BAD_JSON")
        return self.hs.typing_handler.updates_since(since)


class AccountDataServlet(ReplicationServlet):
    """On the account_data writer: store account data written on another process."""

    async def handle(self, body: dict[str, Any]) -> Any:
        user_id, room_id, data_type, content = (body.get(k) for k in ("user_id", "room_id", "type", "content"))
        if not isinstance(user_id, str) or not isinstance(data_type, str) or not isinstance(content, dict):
            raise MatrixError(400, "user_id, type and content are required", "M_BAD_JSON")
        handler = self.hs.account_data_handler
        if isinstance(room_id, str):
            position = await handler.set_room_account_data(user_id, room_id, data_type, content)
        else:
            position = await handler.set_global_account_data(user_id, data_type, content)
        return {"position": position}


class RegisterDeviceServlet(ReplicationServlet):
    """On a device_lists writer: create a device for a login or registration served elsewhere."""

    async def handle(self, body: dict[str, Any]) -> Any:
        user_id, device_id, display_name = body.get("user_id"), body.get("device_id"), body.get("display_name")
        if not isinstance(user_id, str) or not isinstance(device_id, str) or not isinstance(display_name, str | None):
            raise MatrixError(400, "user_id and device_id are required", "M_BAD_JSON")
        created = await self.hs.registration_handler.register_device(user_id, device_id, display_name)
        return {"created": created}


class PresenceUserSyncServlet(ReplicationServlet):
    """On the presence writer: a user started syncing on another process (answers once the
    change is stored, so the caller can wait for its presence position)."""

    async def handle(self, body: dict[str, Any]) -> Any:
        if not isinstance(body.get("instance"), str) or not isinstance(body.get("user_id"), str):
            raise MatrixError(400, "instance and user_id are required", "M_BAD_JSON")
        await self.hs.presence_handler.on_remote_sync_command("USER_SYNC", body)
        return {}
