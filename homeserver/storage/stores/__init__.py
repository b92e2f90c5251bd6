"""The stores, one per domain, composed in one container (`hs.stores.<domain>`)."""

from homeserver.storage.database import Database
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.stores.devices import DeviceStore
from homeserver.storage.stores.events import EventsStore, TimelineStore
from homeserver.storage.stores.filters import FilterStore
from homeserver.storage.stores.registration import RegistrationStore
from homeserver.storage.stores.relations import RelationsStore
from homeserver.storage.stores.roommember import RoomMemberStore
from homeserver.storage.stores.rooms import RoomStore
from homeserver.storage.stores.search import SearchStore
from homeserver.storage.stores.state import StateStore
from homeserver.storage.stores.ui_auth import UIAuthStore


class Stores:
    def __init__(self, db: Database, instance_name: str, stream_writers: dict[str, list[str]]):
        self.db = db
        self.device_lists_ids = StreamIdGenerator(
            "device_lists", instance_name, stream_writers["device_lists"],
            "device_lists_stream", "device_lists_sequence",
        )
        self.registration = RegistrationStore(db)
        self.devices = DeviceStore(db, self.device_lists_ids)
        self.ui_auth = UIAuthStore(db)
        self.event_ids = StreamIdGenerator(
            "events", instance_name, stream_writers["events"], "events", "events_sequence", "stream_ordering"
        )
        self.events = EventsStore(db)
        self.state = StateStore(db)
        self.rooms = RoomStore(db)
        self.members = RoomMemberStore(db)
        self.relations = RelationsStore(db)
        self.search = SearchStore(db)
        self.timeline = TimelineStore(db)
        self.filters = FilterStore(db)

    async def load(self) -> None:
        """Load stream positions; call once the schema is ready."""
        await self.device_lists_ids.load(self.db)
        await self.event_ids.load(self.db)
