"""The redaction algorithm per room version."""

from typing import Any

import pytest

from homeserver.events.event import Event
from homeserver.events.redaction import prune_event, prune_event_dict
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS

ALL = [str(n) for n in range(1, 12)]
TOP_LEVEL = {
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
    "depth", "prev_events", "auth_events", "origin_server_ts",
}
PRE_V11_TOP_LEVEL = TOP_LEVEL | {"prev_state", "origin", "membership"}


def _pdu(event_type: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    pdu = {
        "event_id": "$e:test", "type": event_type, "room_id": "!r:test", "sender": "@u:test",
        "state_key": "", "content": content, "hashes": {"sha256": "h"},
        "signatures": {"test": {"ed25519:k": "s"}}, "depth": 3, "prev_events": [],
        "auth_events": [], "origin_server_ts": 5, "prev_state": [], "origin": "test",
        "membership": "join", "unsigned": {"age": 1}, "redacts": "$x", "other": 1,
    }
    pdu.update(extra)
    return pdu


def _redact(version: str, event_type: str, content: dict[str, Any]) -> dict[str, Any]:
    return prune_event_dict(KNOWN_ROOM_VERSIONS[version], _pdu(event_type, content))


@pytest.mark.parametrize("version", ALL)
def test_top_level_keys(version: str) -> None:
    pruned = _redact(version, "m.room.message", {"body": "x"})
    expected = TOP_LEVEL if version == "11" else PRE_V11_TOP_LEVEL
    assert set(pruned) == expected
    assert pruned["content"] == {}


MEMBER = {
    "membership": "join", "displayname": "D", "join_authorised_via_users_server": "@a:test",
    "third_party_invite": {"display_name": "x", "signed": {"mxid": "@u:test", "token": "t"}},
}
JOIN_RULES = {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "x": 1}
POWER_LEVELS = {
    "ban": 50, "events": {"a": 1}, "events_default": 0, "kick": 50, "redact": 50,
    "state_default": 50, "users": {"@u:test": 100}, "users_default": 0, "invite": 0,
    "notifications": {"room": 50},
}
PL_KEPT = {k: v for k, v in POWER_LEVELS.items() if k not in ("invite", "notifications")}


@pytest.mark.parametrize(
    ("version", "event_type", "content", "kept"),
    [
        ("1", "m.room.member", MEMBER, {"membership": "join"}),
        ("8", "m.room.member", MEMBER, {"membership": "join"}),
        ("9", "m.room.member", MEMBER,
         {"membership": "join", "join_authorised_via_users_server": "@a:test"}),
        ("11", "m.room.member", MEMBER,
         {"membership": "join", "join_authorised_via_users_server": "@a:test",
          "third_party_invite": {"signed": {"mxid": "@u:test", "token": "t"}}}),
        ("1", "m.room.create", {"creator": "@u:test", "room_version": "1", "m.federate": False},
         {"creator": "@u:test"}),
        ("10", "m.room.create", {"creator": "@u:test", "room_version": "10"},
         {"creator": "@u:test"}),
        ("11", "m.room.create", {"room_version": "11", "m.federate": False, "type": "m.space"},
         {"room_version": "11", "m.federate": False, "type": "m.space"}),
        ("1", "m.room.join_rules", JOIN_RULES, {"join_rule": "restricted"}),
        ("7", "m.room.join_rules", JOIN_RULES, {"join_rule": "restricted"}),
        ("8", "m.room.join_rules", JOIN_RULES,
         {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}]}),
        ("11", "m.room.join_rules", JOIN_RULES,
         {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}]}),
        ("1", "m.room.power_levels", POWER_LEVELS, PL_KEPT),
        ("10", "m.room.power_levels", POWER_LEVELS, PL_KEPT),
        ("11", "m.room.power_levels", POWER_LEVELS, {**PL_KEPT, "invite": 0}),
        ("1", "m.room.history_visibility", {"history_visibility": "shared", "x": 1},
         {"history_visibility": "shared"}),
        ("11", "m.room.history_visibility", {"history_visibility": "joined", "x": 1},
         {"history_visibility": "joined"}),
        ("1", "m.room.aliases", {"aliases": ["#a:test"]}, {"aliases": ["#a:test"]}),
        ("5", "m.room.aliases", {"aliases": ["#a:test"]}, {"aliases": ["#a:test"]}),
        ("6", "m.room.aliases", {"aliases": ["#a:test"]}, {}),
        ("10", "m.room.redaction", {"redacts": "$x", "reason": "r"}, {}),
        ("11", "m.room.redaction", {"redacts": "$x", "reason": "r"}, {"redacts": "$x"}),
        ("11", "m.room.topic", {"topic": "t"}, {}),
    ],
)
def test_content_kept(version: str, event_type: str, content: dict[str, Any],
                      kept: dict[str, Any]) -> None:
    assert _redact(version, event_type, content)["content"] == kept


def test_v11_member_without_signed_third_party_invite() -> None:
    content = {"membership": "invite", "third_party_invite": {"display_name": "x"}}
    assert _redact("11", "m.room.member", content)["content"] == {"membership": "invite"}


def test_prune_does_not_alias_the_input() -> None:
    pdu = _pdu("m.room.power_levels", {"users": {"@u:test": 100}})
    pruned = prune_event_dict(KNOWN_ROOM_VERSIONS["10"], pdu)
    pruned["content"]["users"]["@x:test"] = 1
    assert pdu["content"]["users"] == {"@u:test": 100}


def test_prune_event_keeps_id_and_unsigned() -> None:
    rv = KNOWN_ROOM_VERSIONS["10"]
    pdu = _pdu("m.room.message", {"body": "secret"}, unsigned={"transaction_id": "t"})
    del pdu["event_id"]
    event = Event(pdu, rv)
    event.internal_metadata["stream_ordering"] = 4
    pruned = prune_event(event)
    assert pruned.event_id == event.event_id
    assert pruned.content == {}
    assert pruned.unsigned == {"transaction_id": "t"}
    assert pruned.internal_metadata == {"stream_ordering": 4}
    assert event.content == {"body": "secret"}
    assert pruned.get("other") is None and pruned.get("origin") == "test"
