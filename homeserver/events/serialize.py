"""Events as clients see them (the ClientEvent format of the client-server API)."""

from typing import Any

from homeserver.events.event import Event


def serialize_event(
    event: Event, now_ms: int, as_client: bool = True, include_room_id: bool = True
) -> dict[str, Any]:
    """The client form of `event`, with `unsigned.age` relative to `now_ms`.

    With `as_client=False` the result is the federation form instead (the full PDU,
    `event_id` included, with the same `unsigned`). Events found in `unsigned` (e.g.
    `redacted_because`) are serialized the same way.
    """
    if not as_client:
        pdu = event.get_pdu_json()
        pdu["event_id"] = event.event_id
        pdu["unsigned"] = _unsigned(event, now_ms, as_client, include_room_id)
        return pdu
    result: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "content": dict(event.content),
        "sender": event.sender,
        "origin_server_ts": event.origin_server_ts,
    }
    if include_room_id:
        result["room_id"] = event.room_id
    if event.is_state():
        result["state_key"] = event.state_key
    redacts = event.redacts
    if redacts is not None:
        result["redacts"] = redacts
        if event.type == "m.room.redaction":
            result["content"].setdefault("redacts", redacts)
    result["unsigned"] = _unsigned(event, now_ms, as_client, include_room_id)
    return result


def _unsigned(
    event: Event, now_ms: int, as_client: bool, include_room_id: bool
) -> dict[str, Any]:
    unsigned: dict[str, Any] = {}
    for key, value in event.unsigned.items():
        if isinstance(value, Event):
            value = serialize_event(value, now_ms, as_client, include_room_id)
        unsigned[key] = value
    unsigned["age"] = now_ms - event.origin_server_ts
    return unsigned
