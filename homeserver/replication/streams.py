"""The replicated streams: for each, who writes it, how far this process has seen each writer,
and how a reader catches up and applies what it finds.

Database-backed streams are read back from the database (the truth); the in-memory `typing`
stream is fetched over HTTP replication from its writer.
"""

import logging
from typing import TYPE_CHECKING

from homeserver.storage.id_generators import StreamIdGenerator

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

PAGE = 1000


class ReplicatedStream:
    """A database-backed stream: catching up advances the writer's position and wakes the
    requests waiting on what changed (everyone, unless the stream says who)."""

    def __init__(self, hs: "HomeServer", name: str, ids: StreamIdGenerator):
        self.hs = hs
        self.name = name
        self.ids = ids

    @property
    def is_writer(self) -> bool:
        return self.ids.is_writer

    @property
    def persisted(self) -> bool:
        """Whether positions are kept in `stream_positions` (true of database streams)."""
        return True

    def local_position(self) -> int:
        return self.ids.get_local_position()

    def get_position(self, instance: str) -> int:
        """How far this process has applied `instance`'s writes."""
        return self.ids.get_position(instance)

    async def catch_up(self, instance: str, target: int) -> None:
        known = self.ids.get_position(instance)
        if target <= known:
            return
        try:
            affected = await self.affected(known, target)
        except Exception:
            logger.warning("Could not read the %s rows up to %d; waking everyone", self.name, target, exc_info=True)
            affected = None
        # What changed is recorded before the position moves: a sync that sees the new
        # position must also see that these users and rooms changed.
        changes = self.ids.changes
        if affected is None:
            changes.all_changed(target)
        else:
            for entity in set().union(*affected):
                changes.entity_has_changed(entity, target)
        self.ids.advance(instance, target)
        if affected is None:
            self.hs.notifier.wake_all()
        else:
            users, rooms = affected
            self.hs.notifier.wake(users=users, rooms=rooms)

    async def affected(self, after: int, upto: int) -> tuple[set[str], set[str]] | None:
        """The users and rooms whose waiting requests should wake for rows in (after, upto]
        (of any writer: waking a few more is harmless); None wakes everyone. They are also
        recorded in the stream's `changes`, so a stream whose syncs consult `changes` must
        name every entity here."""
        stores = self.hs.stores
        if self.name == "account_data":
            return {row.user_id for row in await stores.account_data.get_updates_since(after, upto)}, set()
        if self.name == "receipts":
            # The author too: their own receipt moves their unread counts.
            receipts = await stores.receipts.get_receipts_since(after, upto)
            return {r.user_id for r in receipts}, {r.room_id for r in receipts}
        if self.name == "to_device":
            return {user_id for _, user_id, _ in await stores.to_device.get_recipients_since(after, upto)}, set()
        if self.name == "push_rules":
            return set(await stores.push_rules.get_users_changed_between(after, upto)), set()
        return None


class EventsStream(ReplicatedStream):
    """Room events: reads the writer's new rows, invalidates what they change, then advances."""

    async def catch_up(self, instance: str, target: int) -> None:
        known = self.ids.get_position(instance)
        served_before = self.ids.get_current_token()
        while known < target:
            rows = await self.hs.stores.timeline.get_rows_by_writer(instance, known, target, PAGE)
            if not rows:
                break
            # Wake only after advancing: a woken sync reads the token at once.
            users, rooms = self.hs.notifier.on_new_room_rows(rows, self.hs.stores.events, wake=False)
            stores = self.hs.stores
            for row in rows:
                for entity in row.changed_entities():
                    self.ids.changes.entity_has_changed(entity, row.stream_ordering)
            for row in rows:  # what every woken /sync reads for a new event
                if row.state_group is not None:
                    stores.state.prime_event_group(row.event_id, row.state_group)
                stores.relations.prime_new_event(row.event_id, row.stream_ordering)
            known = rows[-1].stream_ordering
            self.ids.advance(instance, known)
            self.hs.notifier.wake(users=users, rooms=rooms)
            if self.hs.typing_handler.is_writer:
                await self.hs.typing_handler.on_replicated_rows(rows)
        self.ids.advance(instance, target)
        if self.ids.get_current_token() > served_before:
            # With several writers, rows read earlier (from any writer, or persisted here)
            # may only now be within the served token.
            self.hs.notifier.wake_all()


class TypingStream(ReplicatedStream):
    """Who is typing: lives in the writer's memory; readers fetch the changed rooms from it."""

    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.name = "typing"

    @property
    def is_writer(self) -> bool:
        return self.hs.typing_handler.is_writer

    @property
    def persisted(self) -> bool:
        return False

    def local_position(self) -> int:
        return self.hs.typing_handler.current_position()

    def get_position(self, instance: str) -> int:
        return self.hs.typing_handler.current_position()

    async def catch_up(self, instance: str, target: int) -> None:
        await self.hs.typing_handler.catch_up(instance, target)


class CachesStream(ReplicatedStream):
    """Cache invalidations: every process writes them; readers apply each row's keys."""

    def __init__(self, hs: "HomeServer", ids: StreamIdGenerator):
        super().__init__(hs, "caches", ids)
        self._applied: dict[str, int] = {}

    def get_position(self, instance: str) -> int:
        if instance == self.ids.instance_name:
            return self.ids.get_local_position()
        return self._applied.get(instance, self.hs.stores.caches.start_position)

    async def catch_up(self, instance: str, target: int) -> None:
        store = self.hs.stores.caches
        known = self.get_position(instance)
        while known < target:
            rows = await store.get_invalidations(instance, known, target, PAGE)
            if not rows:
                break
            for row in rows:
                store.apply(row.cache_name, row.keys)
            known = rows[-1].stream_id
            self._applied[instance] = known
        self._applied[instance] = max(target, self._applied.get(instance, 0))


def build_streams(hs: "HomeServer") -> dict[str, ReplicatedStream]:
    stores = hs.stores
    streams: dict[str, ReplicatedStream] = {"events": EventsStream(hs, "events", stores.event_ids)}
    for name, attribute in (("device_lists", "device_lists_ids"), ("account_data", "account_data_ids"),
                            ("to_device", "to_device_ids"), ("receipts", "receipts_ids"),
                            ("push_rules", "push_rules_ids"), ("presence", "presence_ids")):
        ids = getattr(stores, attribute, None)
        if isinstance(ids, StreamIdGenerator):
            streams[name] = ReplicatedStream(hs, name, ids)
    streams["typing"] = TypingStream(hs)
    streams["caches"] = CachesStream(hs, stores.cache_ids)
    return streams
