"""`HomeServer`: the one object per process that builds and holds config, database, stores,
handlers and rate limiters, each lazily on first use."""

from functools import cached_property
from typing import TYPE_CHECKING

from homeserver.config import HomeServerConfig
from homeserver.http.ratelimit import Ratelimiter
from homeserver.storage.database import Database
from homeserver.storage.engines import create_engine
from homeserver.storage.stores import Stores

if TYPE_CHECKING:
    from homeserver.handlers.account import AccountHandler
    from homeserver.handlers.account_data import AccountDataHandler
    from homeserver.handlers.auth import AuthHandler
    from homeserver.handlers.background_jobs import BackgroundJobs
    from homeserver.handlers.device_lists import DeviceListHandler
    from homeserver.handlers.devices import DeviceHandler
    from homeserver.handlers.directory import DirectoryHandler
    from homeserver.handlers.e2e_keys import E2eKeysHandler
    from homeserver.handlers.e2e_room_keys import E2eRoomKeysHandler
    from homeserver.handlers.filtering import FilterHandler
    from homeserver.handlers.hierarchy import HierarchyHandler
    from homeserver.handlers.initial_sync import InitialSyncHandler
    from homeserver.handlers.membership import RoomMemberHandler
    from homeserver.handlers.message import EventCreationHandler
    from homeserver.handlers.notifications import NotificationsHandler, PushActionsProcessor
    from homeserver.handlers.presence import PresenceHandler
    from homeserver.handlers.profile import ProfileHandler
    from homeserver.handlers.push_rules import PushRulesHandler
    from homeserver.handlers.receipts import ReceiptsHandler
    from homeserver.handlers.register import RegistrationHandler
    from homeserver.handlers.relations import RelationsHandler
    from homeserver.handlers.reports import ReportHandler
    from homeserver.handlers.room import RoomCreationHandler
    from homeserver.handlers.room_read import RoomReadHandler
    from homeserver.handlers.room_summary import RoomSummaryHandler
    from homeserver.handlers.search import SearchHandler
    from homeserver.handlers.sync import SyncHandler
    from homeserver.handlers.sync_sources import SyncSource
    from homeserver.handlers.to_device import ToDeviceHandler
    from homeserver.handlers.typing import TypingHandler
    from homeserver.handlers.upgrade import RoomUpgradeHandler
    from homeserver.handlers.user_directory import UserDirectoryHandler
    from homeserver.handlers.visibility import VisibilityHandler
    from homeserver.handlers.voip import VoipHandler
    from homeserver.http.auth import Auth
    from homeserver.http.forwarding import RequestForwarder
    from homeserver.notifier import Notifier
    from homeserver.replication.handler import ReplicationHandler
    from homeserver.replication.http_client import ReplicationClient
    from homeserver.state.context import StateHandler
    from homeserver.storage.persist_events import EventsPersister


class HomeServer:
    def __init__(self, config: HomeServerConfig):
        self.config = config
        self.hostname = config.server.server_name
        self.instance_name = config.instance_name
        self._ratelimiters: dict[str, Ratelimiter] = {}

    @property
    def is_main(self) -> bool:
        return self.config.worker.is_main

    @cached_property
    def database(self) -> Database:
        db_config = self.config.database
        engine = create_engine(db_config.engine, db_config.args)
        return Database(engine, db_config.cp_min, db_config.cp_max)

    @cached_property
    def stores(self) -> Stores:
        return Stores(self.database, self.instance_name, self.config.worker.stream_writers)

    @cached_property
    def auth(self) -> "Auth":
        from homeserver.http.auth import Auth

        return Auth(self)

    @cached_property
    def auth_handler(self) -> "AuthHandler":
        from homeserver.handlers.auth import AuthHandler

        return AuthHandler(self)

    @cached_property
    def registration_handler(self) -> "RegistrationHandler":
        from homeserver.handlers.register import RegistrationHandler

        return RegistrationHandler(self)

    @cached_property
    def device_handler(self) -> "DeviceHandler":
        from homeserver.handlers.devices import DeviceHandler

        return DeviceHandler(self)

    @cached_property
    def account_handler(self) -> "AccountHandler":
        from homeserver.handlers.account import AccountHandler

        return AccountHandler(self)

    @cached_property
    def events_persister(self) -> "EventsPersister":
        from homeserver.storage.persist_events import EventsPersister

        stores = self.stores
        return EventsPersister(self.database, stores.event_ids, stores.events, stores.state, stores.relations)

    @cached_property
    def state_handler(self) -> "StateHandler":
        from homeserver.state.context import StateHandler

        return StateHandler(self)

    @cached_property
    def event_creation_handler(self) -> "EventCreationHandler":
        from homeserver.handlers.message import EventCreationHandler

        return EventCreationHandler(self)

    @cached_property
    def room_creation_handler(self) -> "RoomCreationHandler":
        from homeserver.handlers.room import RoomCreationHandler

        return RoomCreationHandler(self)

    @cached_property
    def membership_handler(self) -> "RoomMemberHandler":
        from homeserver.handlers.membership import RoomMemberHandler

        return RoomMemberHandler(self)

    @cached_property
    def visibility_handler(self) -> "VisibilityHandler":
        from homeserver.handlers.visibility import VisibilityHandler

        return VisibilityHandler(self)

    @cached_property
    def room_read_handler(self) -> "RoomReadHandler":
        from homeserver.handlers.room_read import RoomReadHandler

        return RoomReadHandler(self)

    @cached_property
    def directory_handler(self) -> "DirectoryHandler":
        from homeserver.handlers.directory import DirectoryHandler

        return DirectoryHandler(self)

    @cached_property
    def room_summary_handler(self) -> "RoomSummaryHandler":
        from homeserver.handlers.room_summary import RoomSummaryHandler

        return RoomSummaryHandler(self)

    @cached_property
    def relations_handler(self) -> "RelationsHandler":
        from homeserver.handlers.relations import RelationsHandler

        return RelationsHandler(self)

    @cached_property
    def hierarchy_handler(self) -> "HierarchyHandler":
        from homeserver.handlers.hierarchy import HierarchyHandler

        return HierarchyHandler(self)

    @cached_property
    def search_handler(self) -> "SearchHandler":
        from homeserver.handlers.search import SearchHandler

        return SearchHandler(self)

    @cached_property
    def room_upgrade_handler(self) -> "RoomUpgradeHandler":
        from homeserver.handlers.upgrade import RoomUpgradeHandler

        return RoomUpgradeHandler(self)

    @cached_property
    def report_handler(self) -> "ReportHandler":
        from homeserver.handlers.reports import ReportHandler

        return ReportHandler(self)

    @cached_property
    def notifier(self) -> "Notifier":
        from homeserver.notifier import Notifier

        notifier = Notifier(lambda: self.sync_handler.current_token(), self.stores.event_ids.get_current_token())
        self.events_persister.on_persisted.append(notifier.on_new_room_events)
        return notifier

    @cached_property
    def sync_sources(self) -> list["SyncSource"]:
        """Every stream besides room events that /sync carries (see handlers/sync_sources.py)."""
        from homeserver.handlers.account_data import AccountDataSyncSource
        from homeserver.handlers.device_lists import DeviceListsSyncSource
        from homeserver.handlers.notifications import UnreadCountsSyncSource
        from homeserver.handlers.presence import PresenceSyncSource
        from homeserver.handlers.push_rules import PushRulesSyncSource
        from homeserver.handlers.receipts import ReceiptsSyncSource
        from homeserver.handlers.to_device import ToDeviceSyncSource
        from homeserver.handlers.typing import TypingSyncSource

        return [AccountDataSyncSource(self), ToDeviceSyncSource(self), DeviceListsSyncSource(self),
                PushRulesSyncSource(self), UnreadCountsSyncSource(self),
                TypingSyncSource(self), ReceiptsSyncSource(self), PresenceSyncSource(self)]

    @cached_property
    def initial_sync_handler(self) -> "InitialSyncHandler":
        from homeserver.handlers.initial_sync import InitialSyncHandler

        return InitialSyncHandler(self)

    @cached_property
    def replication(self) -> "ReplicationHandler":
        from homeserver.replication.handler import ReplicationHandler

        handler = ReplicationHandler(self)
        # Registered last: other processes hear of events once everything about them is stored.
        self.events_persister.on_persisted.append(lambda events: handler.on_local_write("events"))
        return handler

    @cached_property
    def replication_client(self) -> "ReplicationClient":
        from homeserver.replication.http_client import ReplicationClient

        return ReplicationClient(self)

    @cached_property
    def request_forwarder(self) -> "RequestForwarder":
        from homeserver.http.forwarding import RequestForwarder

        return RequestForwarder(self)

    @cached_property
    def sync_handler(self) -> "SyncHandler":
        from homeserver.handlers.sync import SyncHandler

        return SyncHandler(self)

    @cached_property
    def filter_handler(self) -> "FilterHandler":
        from homeserver.handlers.filtering import FilterHandler

        return FilterHandler(self)

    @cached_property
    def account_data_handler(self) -> "AccountDataHandler":
        from homeserver.handlers.account_data import AccountDataHandler

        return AccountDataHandler(self)

    @cached_property
    def profile_handler(self) -> "ProfileHandler":
        from homeserver.handlers.profile import ProfileHandler

        return ProfileHandler(self)

    @cached_property
    def user_directory_handler(self) -> "UserDirectoryHandler":
        from homeserver.handlers.user_directory import UserDirectoryHandler

        return UserDirectoryHandler(self)

    @cached_property
    def voip_handler(self) -> "VoipHandler":
        from homeserver.handlers.voip import VoipHandler

        return VoipHandler(self)

    @cached_property
    def to_device_handler(self) -> "ToDeviceHandler":
        from homeserver.handlers.to_device import ToDeviceHandler

        return ToDeviceHandler(self)

    @cached_property
    def e2e_keys_handler(self) -> "E2eKeysHandler":
        from homeserver.handlers.e2e_keys import E2eKeysHandler

        return E2eKeysHandler(self)

    @cached_property
    def e2e_room_keys_handler(self) -> "E2eRoomKeysHandler":
        from homeserver.handlers.e2e_room_keys import E2eRoomKeysHandler

        return E2eRoomKeysHandler(self)

    @cached_property
    def device_list_handler(self) -> "DeviceListHandler":
        from homeserver.handlers.device_lists import DeviceListHandler

        return DeviceListHandler(self)

    @cached_property
    def push_rules_handler(self) -> "PushRulesHandler":
        from homeserver.handlers.push_rules import PushRulesHandler

        return PushRulesHandler(self)

    @cached_property
    def notifications_handler(self) -> "NotificationsHandler":
        from homeserver.handlers.notifications import NotificationsHandler

        return NotificationsHandler(self)

    @cached_property
    def push_actions_processor(self) -> "PushActionsProcessor":
        """Evaluates push rules for every event this process persists (built at start-up)."""
        from homeserver.handlers.notifications import PushActionsProcessor

        return PushActionsProcessor(self)

    @cached_property
    def typing_handler(self) -> "TypingHandler":
        from homeserver.handlers.typing import TypingHandler

        return TypingHandler(self)

    @cached_property
    def receipts_handler(self) -> "ReceiptsHandler":
        from homeserver.handlers.receipts import ReceiptsHandler

        return ReceiptsHandler(self)

    @cached_property
    def background_jobs(self) -> "BackgroundJobs":
        """Housekeeping, started only on the `run_background_tasks_on` instance."""
        from homeserver.handlers.background_jobs import BackgroundJobs

        return BackgroundJobs(self)

    @cached_property
    def presence_handler(self) -> "PresenceHandler":
        """Presence; on the presence writer `start()` runs at start-up (loads state, timers)."""
        from homeserver.handlers.presence import PresenceHandler

        return PresenceHandler(self)

    def ratelimiter(self, key: str) -> Ratelimiter:
        """The process's limiter for one `rc_*` setting (e.g. `rc_login.address`)."""
        if key not in self._ratelimiters:
            self._ratelimiters[key] = Ratelimiter(self.config.ratelimiting.get(key))
        return self._ratelimiters[key]
