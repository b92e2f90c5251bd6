"""The Event view: properties, reference shapes, unsigned and the PDU it gives back."""

from typing import Any

import pytest

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS

V1, V10, V11 = KNOWN_ROOM_VERSIONS["1"], KNOWN_ROOM_VERSIONS["10"], KNOWN_ROOM_VERSIONS["11"]


def _pdu(**extra: Any) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "type": "m.room.message",
        "room_id": "!r:test",
        "sender": "@u:test",
        "content": {"body": "hi", "membership": "join"},
        "origin_server_ts": 1234,
        "depth": 7,
        "prev_events": ["$p1", "$p2"],
        "auth_events": ["$a1"],
        "hashes": {"sha256": "x"},
        "signatures": {},
    }
    pdu.update(extra)
    return pdu


def test_properties_v10() -> None:
    event = Event(_pdu(unsigned={"age": 5}), V10)
    assert event.event_id.startswith("$") and ":" not in event.event_id
    assert (event.room_id, event.type, event.sender) == ("!r:test", "m.room.message", "@u:test")
    assert event.content == {"body": "hi", "membership": "join"}
    assert (event.origin_server_ts, event.depth) == (1234, 7)
    assert event.state_key is None and not event.is_state()
    assert event.membership == "join"
    assert event.prev_event_ids() == ["$p1", "$p2"]
    assert event.auth_event_ids() == ["$a1"]
    assert event.unsigned == {"age": 5}
    assert event.rejected_reason is None and event.internal_metadata == {}
    assert event.room_version is V10


def test_v1_shapes_and_event_id() -> None:
    pdu = _pdu(event_id="$abc:test", prev_events=[["$p1:test", {"sha256": "h"}]],
               auth_events=[["$a1:test", {}], ["$a2:test", {}]])
    event = Event(pdu, V1)
    assert event.event_id == "$abc:test"
    assert event.prev_event_ids() == ["$p1:test"]
    assert event.auth_event_ids() == ["$a1:test", "$a2:test"]
    assert event.get_pdu_json()["event_id"] == "$abc:test"


def test_v1_needs_event_id() -> None:
    with pytest.raises(ValueError):
        Event(_pdu(), V1)


def test_unsigned_not_part_of_event_id() -> None:
    plain = Event(_pdu(), V10)
    with_unsigned = Event(_pdu(unsigned={"transaction_id": "t"}), V10)
    assert plain.event_id == with_unsigned.event_id
    with_unsigned.unsigned["prev_content"] = {}
    assert with_unsigned.get_pdu_json()["unsigned"] == {"transaction_id": "t", "prev_content": {}}


def test_given_event_id_is_used() -> None:
    assert Event(_pdu(), V10, event_id="$given").event_id == "$given"


def test_state_event() -> None:
    event = Event(_pdu(type="m.room.topic", state_key=""), V10)
    assert event.is_state() and event.state_key == ""
    assert event.state_key_tuple == ("m.room.topic", "")


def test_get_pdu_json_is_a_deep_copy_without_event_id() -> None:
    event = Event(_pdu(), V10)
    pdu = event.get_pdu_json()
    assert "event_id" not in pdu and "unsigned" not in pdu
    pdu["content"]["body"] = "changed"
    assert event.content["body"] == "hi"


def test_redacts_moves_to_content_in_v11() -> None:
    top = _pdu(type="m.room.redaction", redacts="$top", content={"redacts": "$inner"})
    assert Event(top, V10).redacts == "$top"
    assert Event(top, V11).redacts == "$inner"


def test_immutable_properties() -> None:
    event = Event(_pdu(), V10)
    with pytest.raises(AttributeError):
        event.sender = "@x:y"  # type: ignore[misc]
    event.rejected_reason = "auth"
    event.internal_metadata = {"stream_ordering": 3}
    assert event.rejected_reason == "auth"
