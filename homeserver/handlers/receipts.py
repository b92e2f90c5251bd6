"""Read receipts (`m.read`, `m.read.private`, threaded or not) and the `m.fully_read` read
marker: who may send them, which events they may point at, and how receipts reach `/sync` as
`m.receipt` ephemeral events (private ones only to their owner).

A receipt never moves backwards: one for an event earlier in the room's stream than the
user's current receipt of the same type and thread is accepted and ignored, as Synapse does.
The read marker is room account data of type `m.fully_read` and only moves forwards too.
"""

from typing import TYPE_CHECKING, Any

from homeserver.events.event import Event
from homeserver.handlers.ephemeral import add_ephemeral, ephemeral_allowed
from homeserver.handlers.sync_sources import SyncContext
from homeserver.http.errors import bad_json, forbidden, invalid_param, not_found
from homeserver.storage.stores.receipts import Receipt
from homeserver.util.clock import now_ms
from homeserver.util.linearizer import Linearizer

if TYPE_CHECKING:
    from homeserver.server import HomeServer

READ = "m.read"
READ_PRIVATE = "m.read.private"
FULLY_READ = "m.fully_read"
RECEIPT_TYPES = (READ, READ_PRIVATE, FULLY_READ)
MAIN_THREAD = "main"
# How many relations to follow from an event to find the thread it belongs to.
MAX_THREAD_HOPS = 3


def _relation(event: Event) -> tuple[str, str] | None:
    """(rel_type, parent event id) of a well-formed `m.relates_to`."""
    relates_to = event.content.get("m.relates_to")
    if not isinstance(relates_to, dict):
        return None
    rel_type, parent = relates_to.get("rel_type"), relates_to.get("event_id")
    return (rel_type, parent) if isinstance(rel_type, str) and isinstance(parent, str) else None


class ReceiptsHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.receipts
        self._read_markers = Linearizer()

    # --- the client endpoints -------------------------------------------------------------------

    async def post_receipt(
        self, user_id: str, room_id: str, receipt_type: str, event_id: str, body: dict[str, Any],
    ) -> None:
        """`POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`."""
        if not room_id.startswith("!") or not event_id.startswith("$"):
            raise invalid_param("A valid room ID and event ID must be specified")
        if receipt_type not in RECEIPT_TYPES:
            raise invalid_param(f"Receipt type must be one of {', '.join(RECEIPT_TYPES)}")
        thread_id = self._parse_thread_id(body, receipt_type)
        event = await self._readable_event(user_id, room_id, event_id)
        if thread_id is not None:
            await self._check_thread(event, thread_id)
        if receipt_type == FULLY_READ:
            await self._set_read_marker(user_id, room_id, event)
        else:
            await self._add_receipt(user_id, room_id, receipt_type, thread_id, event)
        await self.hs.presence_handler.bump_active(user_id)

    async def set_read_markers(self, user_id: str, room_id: str, body: dict[str, Any]) -> None:
        """`POST /rooms/{roomId}/read_markers`: every event is checked before anything moves;
        unknown keys are ignored (receipt types are extensible)."""
        wanted: dict[str, str] = {}
        for receipt_type in RECEIPT_TYPES:
            value = body.get(receipt_type)
            if value is None:
                continue
            if not isinstance(value, str) or not value.startswith("$"):
                raise bad_json(f"'{receipt_type}' must be an event ID")
            wanted[receipt_type] = value
        events = {t: await self._readable_event(user_id, room_id, event_id) for t, event_id in wanted.items()}
        for receipt_type, event in events.items():
            if receipt_type == FULLY_READ:
                await self._set_read_marker(user_id, room_id, event)
            else:
                await self._add_receipt(user_id, room_id, receipt_type, None, event)
        await self.hs.presence_handler.bump_active(user_id)

    # --- checks ----------------------------------------------------------------------------------------

    @staticmethod
    def _parse_thread_id(body: dict[str, Any], receipt_type: str) -> str | None:
        if "thread_id" not in body:
            return None
        thread_id = body["thread_id"]
        if not isinstance(thread_id, str) or not thread_id:
            raise invalid_param("thread_id field must be a non-empty string")
        if receipt_type == FULLY_READ:
            raise invalid_param(f"thread_id is not compatible with {FULLY_READ} receipts")
        return thread_id

    async def _readable_event(self, user_id: str, room_id: str, event_id: str) -> Event:
        """The event, when the user is joined to the room and may see it."""
        membership = await self.hs.stores.members.get_membership(room_id, user_id)
        if membership is None or membership[0] != "join":
            raise forbidden("You are not joined to this room")
        event = await self.hs.stores.events.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        if not await self.hs.visibility_handler.filter_events_for_user(user_id, [event]):
            raise not_found("Event not found")
        return event

    async def _check_thread(self, event: Event, thread_id: str) -> None:
        """The event must belong to the thread: `main` takes events outside every thread; a
        thread root id takes the root, its replies, and events relating to either."""
        chain, thread = await self._thread_of(event)
        valid = thread == thread_id if thread_id == MAIN_THREAD else thread == thread_id or thread_id in chain
        if not valid:
            raise invalid_param(f"event_id {event.event_id} is not related to thread {thread_id}")

    async def _thread_of(self, event: Event) -> tuple[list[str], str]:
        """The events followed from `event` through its relations, and its thread root (or
        `main`), looking at most MAX_THREAD_HOPS relations deep."""
        chain = [event.event_id]
        current = event
        for _ in range(MAX_THREAD_HOPS):
            relation = _relation(current)
            if relation is None:
                break
            rel_type, parent_id = relation
            if rel_type == "m.thread":
                return chain, parent_id
            chain.append(parent_id)
            parent = await self.hs.stores.events.get_event(parent_id)
            if parent is None or parent.room_id != event.room_id:
                break
            current = parent
        return chain, MAIN_THREAD

    # --- changes ---------------------------------------------------------------------------------------

    async def _add_receipt(self, user_id: str, room_id: str, receipt_type: str, thread_id: str | None, event: Event) -> None:
        ordering = event.internal_metadata["stream_ordering"]
        stream_id = await self.store.add_receipt(room_id, receipt_type, user_id, thread_id, event.event_id, ordering, now_ms())
        if stream_id is not None:
            self.hs.notifier.wake(users=[user_id], rooms=[room_id])

    async def _set_read_marker(self, user_id: str, room_id: str, event: Event) -> None:
        """Move `m.fully_read` to the event unless it already points at a later one."""
        account_data = self.hs.account_data_handler
        async with self._read_markers.queue(f"{room_id} {user_id}"):
            current = await account_data.get_room(user_id, room_id, FULLY_READ)
            current_id = current.get("event_id") if current else None
            if isinstance(current_id, str):
                previous = await self.hs.stores.events.get_event(current_id)
                if previous is not None and previous.room_id == room_id and \
                        previous.internal_metadata["stream_ordering"] >= event.internal_metadata["stream_ordering"]:
                    return
            await account_data.set_room_account_data(user_id, room_id, FULLY_READ, {"event_id": event.event_id})


def receipt_content(receipts: list[Receipt]) -> dict[str, Any]:
    """The content of an `m.receipt` event: event id -> receipt type -> user id -> receipt."""
    content: dict[str, Any] = {}
    for receipt in receipts:
        data: dict[str, Any] = {"ts": receipt.ts}
        if receipt.thread_id is not None:
            data["thread_id"] = receipt.thread_id
        content.setdefault(receipt.event_id, {}).setdefault(receipt.receipt_type, {})[receipt.user_id] = data
    return content


class ReceiptsSyncSource:
    """Adds an `m.receipt` event to each joined room with receipts sent since the token (on
    an initial sync, or for a room joined since then: the room's latest receipts)."""

    key = "receipts"

    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.receipts

    def current_position(self) -> int:
        return self.hs.stores.receipts_ids.get_current_token()

    async def add_to_sync(self, context: SyncContext, response: dict[str, Any]) -> bool:
        since = context.since_position(self.key)
        upto = context.now.receipts
        rooms = [r for r in context.joined_room_ids if ephemeral_allowed(context.sync_filter, r, "m.receipt")]
        if since is None or context.full_state:
            full, changed = rooms, []
        else:
            full = [r for r in rooms if r in context.newly_joined_room_ids]
            others = [r for r in rooms if r not in context.newly_joined_room_ids] if since < upto else []
            changed = self.hs.stores.receipts_ids.changes.get_entities_changed(others, since)
        receipts = await self.store.get_room_receipts(full, context.user_id, upto)
        if changed:
            receipts += await self.store.get_room_receipts(changed, context.user_id, upto, since)
        by_room: dict[str, list[Receipt]] = {}
        for receipt in receipts:
            by_room.setdefault(receipt.room_id, []).append(receipt)
        for room_id, room_receipts in sorted(by_room.items()):
            add_ephemeral(response, room_id, {"type": "m.receipt", "content": receipt_content(room_receipts)})
        return bool(by_room)

