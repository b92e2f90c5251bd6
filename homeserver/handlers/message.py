"""Creating and sending events: build on the room's forward extremities, check the
authorization rules against the state before the event, and persist through the room's
event persister. Also reading single events and room state for clients."""

import logging
from typing import TYPE_CHECKING, Any

from homeserver.events.builder import auth_types_for_event, create_local_event
from homeserver.events.errors import AuthError, EventValidationError
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.http.errors import MatrixError, forbidden, not_found
from homeserver.storage.persist_events import DuplicateTransactionError, EventContext
from homeserver.util.linearizer import Linearizer, LockTimeoutError

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

# At most this many forward extremities are referenced by a new event.
MAX_PREV_EVENTS = 10
# How long a send waits for the sends ahead of it in the same room (one at a time per room
# and process) before answering 503: a stuck persister must not hold every sender past their
# HTTP timeout.
ROOM_TURN_TIMEOUT_SECONDS = 10.0


class EventCreationHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.stores = hs.stores
        self._room_locks = Linearizer()

    async def get_room_version(self, room_id: str) -> RoomVersion:
        version = await self.stores.rooms.get_room_version(room_id)
        if version is None:
            raise not_found("Room not found")
        return KNOWN_ROOM_VERSIONS[version]

    async def create_and_send(
        self, event_dict: dict[str, Any], txn: tuple[str, str, str] | None = None,
        room_version: RoomVersion | None = None,
    ) -> Event:
        """Create, authorize and persist an event; with `txn` (user, scope, txn_id) a retried
        request returns the event the first one created."""
        room_id = event_dict["room_id"]
        try:
            async with self._room_locks.queue(room_id, timeout=ROOM_TURN_TIMEOUT_SECONDS):
                if txn is not None:
                    existing = await self._event_for_txn(txn)
                    if existing is not None:
                        return existing
                version = room_version or await self.get_room_version(room_id)
                if event_dict["type"] == "m.room.canonical_alias" and event_dict.get("state_key") == "":
                    await self.hs.directory_handler.check_canonical_alias(room_id, event_dict.get("content", {}))
                event, context = await self._build(version, event_dict)
                context.txn = txn
                return await self._persist(event, context)
        except LockTimeoutError:
            raise MatrixError(503, "The room is busy; try again shortly", "M_UNKNOWN") from None

    async def _event_for_txn(self, txn: tuple[str, str, str]) -> Event | None:
        event_id = await self.stores.events.get_event_id_for_txn(*txn)
        return await self.stores.events.get_event(event_id) if event_id else None

    async def _build(self, version: RoomVersion, event_dict: dict[str, Any]) -> tuple[Event, EventContext]:
        events_store = self.stores.events
        prev_ids = [] if event_dict["type"] == "m.room.create" else await events_store.get_forward_extremities(event_dict["room_id"])
        prev_ids = prev_ids[:MAX_PREV_EVENTS]
        if event_dict["type"] != "m.room.create" and not prev_ids:
            raise not_found("Room not found")
        prev_events = await events_store.get_events(prev_ids, allow_rejected=True)
        depth = max((e.depth for e in prev_events.values()), default=0) + 1
        context = await self.hs.state_handler.compute_context(version, prev_ids)
        wanted = auth_types_for_event(
            version, event_dict["type"], event_dict["sender"], event_dict.get("state_key"), event_dict.get("content", {})
        )
        auth_ids = {key: context.state_before[key] for key in wanted if key in context.state_before}
        try:
            event = create_local_event(
                version, event_dict, prev_ids, list(auth_ids.values()), depth,
                self.hs.hostname, self.hs.config.key.signing_key,
            )
        except EventValidationError as e:
            raise MatrixError(400 if e.errcode != "M_TOO_LARGE" else 413, e.msg, e.errcode) from e
        auth_events = await events_store.get_events(auth_ids.values())
        by_key = {key: auth_events[event_id] for key, event_id in auth_ids.items() if event_id in auth_events}
        self.check_auth(version, event, by_key)
        return event, context

    def check_auth(self, version: RoomVersion, event: Event, auth_events: dict[tuple[str, str], Event]) -> None:
        from homeserver.events.auth import check_auth

        try:
            check_auth(version, event, auth_events)
        except AuthError as e:
            raise forbidden(e.msg) from e

    async def _persist(self, event: Event, context: EventContext) -> Event:
        """Have the room's persister store `event`; the event stored (another one when a retry
        of the same client transaction raced this request and got there first)."""
        writers = self.hs.config.worker.writers_of("events")
        persister = await self.stores.rooms.get_or_assign_persister(event.room_id, writers)
        if persister == self.hs.instance_name:
            try:
                ordering = await self.hs.events_persister.persist(event, context)
            except DuplicateTransactionError as e:
                return await self._stored_instead(e.event_id)
            await self._wait_for_position(ordering)
            return event
        body: dict[str, Any] = {
            "room_version": event.room_version.identifier,
            "pdu": event.get_pdu_json(),
            "state_group_before": context.state_group_before,
            "state_before": [] if context.state_group_before is not None
            else [[t, k, e] for (t, k), e in context.state_before.items()],
            "txn": list(context.txn) if context.txn else None,
        }
        result = await self.hs.replication_client.call(persister, "persist_event", body, txn_id=event.event_id)
        await self._wait_for_position(int(result["stream_ordering"]))
        if result.get("event_id") != event.event_id:
            return await self._stored_instead(str(result["event_id"]))
        return event

    async def _stored_instead(self, event_id: str) -> Event:
        position = await self.stores.events.get_position(event_id)
        if position is not None:
            await self._wait_for_position(position.stream)
        stored = await self.stores.events.get_event(event_id)
        if stored is None:
            raise MatrixError(503, "The earlier attempt of this request is not readable yet; try again", "M_UNKNOWN")
        return stored

    async def _wait_for_position(self, position: int) -> None:
        """Fence: answer the client only once reads on this process include its event. They
        serve the minimum position over the event persisters, so with several this waits
        for the others to announce that they moved past it too (a Redis round trip)."""
        if self.hs.config.redis.enabled:
            await self.hs.replication.wait_for_current_token("events", position)

    async def redact(
        self, requester: Any, room_id: str, event_id: str, content: dict[str, Any], txn: tuple[str, str, str]
    ) -> Event:
        """Redact `event_id`: allowed for the event's own sender or with the redact level."""
        from homeserver.events.auth import get_user_power_level

        existing = await self._event_for_txn(txn)
        if existing is not None:
            return existing
        original = await self.stores.events.get_event(event_id)
        if original is None or original.room_id != room_id:
            raise not_found("Event not found")
        if original.sender != requester.user_id:
            state = await self.stores.state.get_current_state_ids(room_id)
            keys = [("m.room.create", ""), ("m.room.power_levels", "")]
            events = await self.stores.events.get_events(state[k] for k in keys if k in state)
            by_key = {(e.type, e.state_key or ""): e for e in events.values()}
            power_levels = by_key.get(("m.room.power_levels", ""))
            redact_level = power_levels.content.get("redact", 50) if power_levels else 50
            if get_user_power_level(requester.user_id, by_key) < int(redact_level):
                raise forbidden("You don't have permission to redact events")
        return await self.create_and_send(
            {"type": "m.room.redaction", "room_id": room_id, "sender": requester.user_id, "content": content, "redacts": event_id},
            txn=txn,
        )
