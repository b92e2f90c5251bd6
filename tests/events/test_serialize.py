"""serialize_event against the spec's ClientEvent schemas."""

import os
from typing import Any

import jsonschema
import pytest

from homeserver.events.event import Event
from homeserver.events.redaction import prune_event
from homeserver.events.serialize import serialize_event
from tests.events.helpers import BOB, MOD, new_room
from tests.spec import SPEC_DIR, _load, _resolve


def _schema(name: str) -> dict[str, Any]:
    path = os.path.join(SPEC_DIR, "definitions", name)
    return _resolve(_load(path), path, _load(path))  # type: ignore[no-any-return]


def _valid(body: dict[str, Any], name: str = "client_event.yaml") -> None:
    jsonschema.Draft202012Validator(_schema(name)).validate(body)


FORBIDDEN = {"hashes", "signatures", "auth_events", "prev_events", "depth", "origin",
             "prev_state", "membership"}


@pytest.mark.parametrize("version", ["1", "3", "10", "11"])
def test_message(version: str) -> None:
    room = new_room(version, "public", members=(MOD, BOB))
    event = room.send("m.room.message", BOB, {"body": "hi", "msgtype": "m.text"})
    event.unsigned["transaction_id"] = "txn1"
    now = event.origin_server_ts + 1500
    body = serialize_event(event, now)
    _valid(body)
    assert body == {
        "event_id": event.event_id, "type": "m.room.message", "sender": BOB,
        "room_id": room.room_id, "origin_server_ts": event.origin_server_ts,
        "content": {"body": "hi", "msgtype": "m.text"},
        "unsigned": {"age": 1500, "transaction_id": "txn1"},
    }
    without_room = serialize_event(event, now, include_room_id=False)
    assert "room_id" not in without_room
    _valid(without_room, "client_event_without_room_id.yaml")
    with pytest.raises(jsonschema.ValidationError):
        _valid(without_room)


def test_state_event_with_prev_content() -> None:
    room = new_room("10", "public", members=(MOD,))
    room.send("m.room.topic", MOD, {"topic": "one"}, "")
    event = room.send("m.room.topic", MOD, {"topic": "two"}, "")
    event.unsigned["prev_content"] = {"topic": "one"}
    body = serialize_event(event, event.origin_server_ts)
    _valid(body)
    assert body["state_key"] == "" and body["unsigned"] == {"age": 0,
                                                            "prev_content": {"topic": "one"}}
    assert not FORBIDDEN & set(body)


@pytest.mark.parametrize("version", ["10", "11"])
def test_redaction_and_redacted_event(version: str) -> None:
    room = new_room(version, "public", members=(MOD, BOB))
    message = room.send("m.room.message", BOB, {"body": "oops"})
    redaction = room.send("m.room.redaction", MOD, {"reason": "spam"}, redacts=message.event_id)
    body = serialize_event(redaction, redaction.origin_server_ts + 5)
    _valid(body)
    assert body["redacts"] == message.event_id  # top level in every version
    assert body["content"] == {"reason": "spam", "redacts": message.event_id}
    assert not FORBIDDEN & set(body)

    pruned = prune_event(message)
    pruned.unsigned["redacted_because"] = redaction
    shown = serialize_event(pruned, redaction.origin_server_ts + 5)
    _valid(shown)
    assert shown["content"] == {}
    assert shown["unsigned"]["redacted_because"] == body


def test_serialize_does_not_share_content() -> None:
    room = new_room("10", "public", members=(MOD,))
    event = room.send("m.room.message", MOD, {"body": "hi"})
    serialize_event(event, 0)["content"]["body"] = "changed"
    assert event.content["body"] == "hi"


def test_federation_form() -> None:
    room = new_room("10", "public", members=(MOD,))
    event: Event = room.send("m.room.message", MOD, {"body": "hi"})
    pdu = serialize_event(event, event.origin_server_ts + 3, as_client=False)
    assert pdu["event_id"] == event.event_id
    assert pdu["unsigned"] == {"age": 3}
    assert {"hashes", "signatures", "auth_events", "prev_events", "depth"} <= set(pdu)

