"""The stores, one per domain, composed in one container (`hs.stores.<domain>`)."""

from homeserver.storage.database import Database
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.stores.account_data import AccountDataStore
from homeserver.storage.stores.caches import CacheInvalidationStore
from homeserver.storage.stores.device_lists import DeviceListStore
from homeserver.storage.stores.devices import DeviceStore
from homeserver.storage.stores.end_to_end_keys import EndToEndKeyStore
from homeserver.storage.stores.event_push_actions import EventPushActionsStore
from homeserver.storage.stores.events import EventsStore, TimelineStore
from homeserver.storage.stores.filters import FilterStore
from homeserver.storage.stores.presence import PresenceStore
from homeserver.storage.stores.profiles import ProfileStore
from homeserver.storage.stores.push_rules import PushRulesStore
from homeserver.storage.stores.receipts import ReceiptsStore
from homeserver.storage.stores.registration import RegistrationStore
from homeserver.storage.stores.relations import RelationsStore
from homeserver.storage.stores.room_keys import RoomKeysStore
from homeserver.storage.stores.roommember import RoomMemberStore
from homeserver.storage.stores.rooms import RoomStore
from homeserver.storage.stores.search import SearchStore
from homeserver.storage.stores.state import StateStore
from homeserver.storage.stores.to_device import ToDeviceStore
from homeserver.storage.stores.ui_auth import UIAuthStore
from homeserver.storage.stores.user_directory import UserDirectoryStore


class Stores:
    def __init__(self, db: Database, instance_name: str, stream_writers: dict[str, list[str]]):
        self.db = db
        self.device_lists_ids = StreamIdGenerator(
            "device_lists", instance_name, stream_writers["device_lists"],
            "device_lists_stream", "device_lists_sequence",
        )
        self.cache_ids = StreamIdGenerator(
            "caches", instance_name, [instance_name], "cache_invalidations", "cache_invalidations_sequence"
        )
        self.caches = CacheInvalidationStore(db, self.cache_ids)
        self.registration = RegistrationStore(db, self.caches)
        self.devices = DeviceStore(db, self.device_lists_ids, self.registration)
        self.ui_auth = UIAuthStore(db)
        self.to_device_ids = StreamIdGenerator(
            "to_device", instance_name, stream_writers["to_device"], "to_device_sends", "to_device_sequence"
        )
        self.to_device = ToDeviceStore(db, self.to_device_ids)
        self.e2e_keys = EndToEndKeyStore(db, self.devices, self.caches)
        self.device_lists = DeviceListStore(db)
        self.room_keys = RoomKeysStore(db)
        self.event_ids = StreamIdGenerator(
            "events", instance_name, stream_writers["events"], "events", "events_sequence", "stream_ordering"
        )
        self.events = EventsStore(db)
        self.state = StateStore(db)
        self.rooms = RoomStore(db)
        self.members = RoomMemberStore(db, self.event_ids)
        self.relations = RelationsStore(db, self.event_ids)
        self.search = SearchStore(db)
        self.timeline = TimelineStore(db)
        self.filters = FilterStore(db)
        self.push_rules_ids = StreamIdGenerator(
            "push_rules", instance_name, stream_writers["push_rules"], "push_rules_stream", "push_rules_sequence"
        )
        self.push_rules = PushRulesStore(db, self.push_rules_ids)
        self.event_push_actions = EventPushActionsStore(db)
        self.account_data_ids = StreamIdGenerator(
            "account_data", instance_name, stream_writers["account_data"], "account_data", "account_data_sequence"
        )
        self.account_data = AccountDataStore(db, self.account_data_ids)
        self.profiles = ProfileStore(db)
        self.user_directory = UserDirectoryStore(db)
        self.receipts_ids = StreamIdGenerator(
            "receipts", instance_name, stream_writers["receipts"], "receipts", "receipts_sequence"
        )
        self.receipts = ReceiptsStore(db, self.receipts_ids)
        self.presence_ids = StreamIdGenerator(
            "presence", instance_name, stream_writers["presence"], "presence_stream", "presence_sequence"
        )
        self.presence = PresenceStore(db, self.presence_ids)

    async def load(self) -> None:
        """Load stream positions; call once the schema is ready."""
        await self.device_lists_ids.load(self.db)
        await self.to_device_ids.load(self.db)
        await self.event_ids.load(self.db)
        await self.push_rules_ids.load(self.db)
        await self.account_data_ids.load(self.db)
        await self.receipts_ids.load(self.db)
        await self.presence_ids.load(self.db)
        await self.cache_ids.load(self.db)
        await self.caches.load()
