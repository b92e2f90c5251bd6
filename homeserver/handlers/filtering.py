"""Sync filters: validating a filter definition, storing it, and applying it to events."""

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeserver.events.event import Event
from homeserver.http.errors import MatrixError, forbidden, not_found

if TYPE_CHECKING:
    from homeserver.server import HomeServer

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 1000


def _bad(message: str) -> MatrixError:
    return MatrixError(400, message, "M_BAD_JSON")


def _strings(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{where} must be a list of strings")
    return value


def _matches(value: str, patterns: list[str]) -> bool:
    return any(value == p or (p.endswith("*") and value.startswith(p[:-1])) for p in patterns)


@dataclass
class EventFilter:
    """The common part of every filter: types, senders, limits; also room-event filters."""

    types: list[str] | None = None
    not_types: list[str] = field(default_factory=list)
    senders: list[str] | None = None
    not_senders: list[str] = field(default_factory=list)
    rooms: list[str] | None = None
    not_rooms: list[str] = field(default_factory=list)
    limit: int | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    @classmethod
    def parse(cls, value: Any, where: str) -> "EventFilter":
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise _bad(f"{where} must be an object")
        limit = value.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise _bad(f"{where}.limit must be a non-negative integer")
        return cls(
            types=_strings(value.get("types"), f"{where}.types"),
            not_types=_strings(value.get("not_types"), f"{where}.not_types") or [],
            senders=_strings(value.get("senders"), f"{where}.senders"),
            not_senders=_strings(value.get("not_senders"), f"{where}.not_senders") or [],
            rooms=_strings(value.get("rooms"), f"{where}.rooms"),
            not_rooms=_strings(value.get("not_rooms"), f"{where}.not_rooms") or [],
            limit=limit,
            lazy_load_members=bool(value.get("lazy_load_members", False)),
            include_redundant_members=bool(value.get("include_redundant_members", False)),
            unread_thread_notifications=value.get("unread_thread_notifications") is True,
        )

    def allows(self, event: Event) -> bool:
        if self.types is not None and not _matches(event.type, self.types):
            return False
        if _matches(event.type, self.not_types):
            return False
        if self.senders is not None and event.sender not in self.senders:
            return False
        if event.sender in self.not_senders:
            return False
        return self.allows_room(event.room_id)

    def allows_room(self, room_id: str) -> bool:
        if self.rooms is not None and room_id not in self.rooms:
            return False
        return room_id not in self.not_rooms


@dataclass
class SyncFilter:
    timeline: EventFilter = field(default_factory=EventFilter)
    state: EventFilter = field(default_factory=EventFilter)
    ephemeral: EventFilter = field(default_factory=EventFilter)
    room_account_data: EventFilter = field(default_factory=EventFilter)
    presence: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)
    rooms: list[str] | None = None
    not_rooms: list[str] = field(default_factory=list)
    include_leave: bool = False
    event_fields: list[str] | None = None
    event_format: str = "client"

    @classmethod
    def parse(cls, value: Any) -> "SyncFilter":
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise _bad("filter must be an object")
        room = value.get("room") or {}
        if not isinstance(room, dict):
            raise _bad("filter.room must be an object")
        event_format = value.get("event_format", "client")
        if event_format not in ("client", "federation"):
            raise _bad("event_format must be 'client' or 'federation'")
        return cls(
            timeline=EventFilter.parse(room.get("timeline"), "room.timeline"),
            state=EventFilter.parse(room.get("state"), "room.state"),
            ephemeral=EventFilter.parse(room.get("ephemeral"), "room.ephemeral"),
            room_account_data=EventFilter.parse(room.get("account_data"), "room.account_data"),
            presence=EventFilter.parse(value.get("presence"), "presence"),
            account_data=EventFilter.parse(value.get("account_data"), "account_data"),
            rooms=_strings(room.get("rooms"), "room.rooms"),
            not_rooms=_strings(room.get("not_rooms"), "room.not_rooms") or [],
            include_leave=bool(room.get("include_leave", False)),
            event_fields=_strings(value.get("event_fields"), "event_fields"),
            event_format=event_format,
        )

    @property
    def timeline_limit(self) -> int:
        limit = self.timeline.limit if self.timeline.limit is not None else DEFAULT_TIMELINE_LIMIT
        return min(limit, MAX_TIMELINE_LIMIT)

    def allows_room(self, room_id: str) -> bool:
        if self.rooms is not None and room_id not in self.rooms:
            return False
        return room_id not in self.not_rooms


class FilterHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def upload(self, requester_id: str, user_id: str, definition: dict[str, Any]) -> int:
        self._check_owner(requester_id, user_id)
        SyncFilter.parse(definition)
        return await self.hs.stores.filters.add_filter(user_id, definition)

    async def get(self, requester_id: str, user_id: str, filter_id: str) -> dict[str, Any]:
        self._check_owner(requester_id, user_id)
        if not (filter_id.isascii() and filter_id.isdigit()) or int(filter_id) >= 2**63:
            raise not_found("No such filter")
        definition = await self.hs.stores.filters.get_filter(user_id, int(filter_id))
        if definition is None:
            raise not_found("No such filter")
        return definition

    def _check_owner(self, requester_id: str, user_id: str) -> None:
        if requester_id != user_id:
            raise forbidden("Cannot use filters of other users")

    async def resolve(self, user_id: str, value: str | None) -> SyncFilter:
        """The `filter` query parameter of /sync: a filter id or inline JSON."""
        if value is None:
            return SyncFilter()
        if value.startswith("{"):
            try:
                return SyncFilter.parse(json.loads(value))
            except ValueError as e:
                raise MatrixError(400, "filter is not valid JSON", "M_INVALID_PARAM") from e
        definition = await self.get(user_id, user_id, value) if value.isascii() and value.isdigit() else None
        if definition is None:
            raise MatrixError(400, f"Unknown filter {value!r}", "M_INVALID_PARAM")
        return SyncFilter.parse(definition)
