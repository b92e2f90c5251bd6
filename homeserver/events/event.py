"""`Event`: a light, read-only view of one PDU in a given room version.

The PDU dict is held as given (minus `unsigned`, and minus `event_id` which is kept apart);
the event does not copy or validate it, so building one on a hot path costs almost nothing.
`unsigned`, `rejected_reason` and `internal_metadata` are the only mutable parts: they are
local bookkeeping, not covered by hashes or signatures.
"""

import copy
from typing import Any

from homeserver.events.room_versions import RoomVersion


class Event:
    """One PDU. Treat the underlying dict as owned by the event once passed in."""

    __slots__ = ("_pdu", "_event_id", "_room_version", "unsigned", "rejected_reason",
                 "internal_metadata")

    def __init__(
        self, pdu: dict[str, Any], room_version: RoomVersion, event_id: str | None = None
    ) -> None:
        body = dict(pdu)
        unsigned = body.pop("unsigned", None)
        pdu_event_id = body.pop("event_id", None)
        if event_id is None:
            if room_version.event_format == 1:
                if not isinstance(pdu_event_id, str):
                    raise ValueError("a room version 1/2 PDU must carry its event_id")
                event_id = pdu_event_id
            else:
                from homeserver.events.hashing import compute_event_id

                event_id = compute_event_id(room_version, body)
        self._pdu: dict[str, Any] = body
        self._event_id: str = event_id
        self._room_version = room_version
        self.unsigned: dict[str, Any] = dict(unsigned) if isinstance(unsigned, dict) else {}
        self.rejected_reason: str | None = None
        self.internal_metadata: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Event {self._event_id} type={self.type!r} state_key={self.state_key!r}>"

    @property
    def event_id(self) -> str:
        return self._event_id

    @property
    def room_version(self) -> RoomVersion:
        return self._room_version

    @property
    def room_id(self) -> str:
        return self._pdu["room_id"]

    @property
    def type(self) -> str:
        return self._pdu["type"]

    @property
    def state_key(self) -> str | None:
        """The state key, or None for a non-state event."""
        return self._pdu.get("state_key")

    @property
    def sender(self) -> str:
        return self._pdu["sender"]

    @property
    def content(self) -> dict[str, Any]:
        """The content; callers must not modify it."""
        content = self._pdu.get("content")
        return content if isinstance(content, dict) else {}

    @property
    def origin_server_ts(self) -> int:
        return self._pdu["origin_server_ts"]

    @property
    def depth(self) -> int:
        return self._pdu["depth"]

    @property
    def redacts(self) -> str | None:
        """The redacted event id (in content from v11, at top level before)."""
        if self._room_version.redacts_in_content:
            value = self.content.get("redacts")
        else:
            value = self._pdu.get("redacts")
        return value if isinstance(value, str) else None

    @property
    def membership(self) -> str | None:
        value = self.content.get("membership")
        return value if isinstance(value, str) else None

    @property
    def state_key_tuple(self) -> tuple[str, str]:
        """(type, state_key); only meaningful for state events."""
        return (self.type, self._pdu.get("state_key", ""))

    def is_state(self) -> bool:
        return "state_key" in self._pdu

    def prev_event_ids(self) -> list[str]:
        return _reference_ids(self._pdu.get("prev_events"))

    def auth_event_ids(self) -> list[str]:
        return _reference_ids(self._pdu.get("auth_events"))

    def get(self, key: str, default: Any = None) -> Any:
        """A top-level PDU key (not `unsigned`, not `event_id`)."""
        return self._pdu.get(key, default)

    def get_pdu_json(self) -> dict[str, Any]:
        """A deep copy of the full signed PDU, with `event_id` only for format 1."""
        pdu = copy.deepcopy(self._pdu)
        if self._room_version.event_format == 1:
            pdu["event_id"] = self._event_id
        if self.unsigned:
            pdu["unsigned"] = copy.deepcopy(self.unsigned)
        return pdu


def _reference_ids(refs: Any) -> list[str]:
    """Event ids from `[[id, hashes], ...]` (format 1) or `[id, ...]` (formats 2/3)."""
    if not isinstance(refs, list):
        return []
    ids: list[str] = []
    for ref in refs:
        if isinstance(ref, str):
            ids.append(ref)
        elif isinstance(ref, list) and ref and isinstance(ref[0], str):
            ids.append(ref[0])
    return ids
