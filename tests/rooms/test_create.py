"""POST /createRoom end to end: presets and what they set, name/topic/invite, initial_state,
power level overrides, creation content, room versions, aliases and request validation."""

from typing import Any

import pytest

from tests.harness import Client
from tests.rooms.conftest import UserFactory
from tests.rooms.helpers import create_room, get_state, members, path_id
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error


def state_by_key(client: Client, room_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    resp = client.get(f"rooms/{path_id(room_id)}/state")
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "rooms.yaml", "/rooms/{roomId}/state", "get", 200)
    return {(e["type"], e["state_key"]): e for e in resp.json()}


@pytest.mark.parametrize(
    "body, join_rule, guest_access",
    [
        ({"preset": "private_chat"}, "invite", "can_join"),
        ({"preset": "trusted_private_chat"}, "invite", "can_join"),
        ({"preset": "public_chat"}, "public", None),
        ({}, "invite", "can_join"),  # visibility defaults to private: private_chat
        ({"visibility": "private"}, "invite", "can_join"),
        ({"visibility": "public"}, "public", None),  # public: public_chat
    ],
    ids=["private_chat", "trusted_private_chat", "public_chat", "default", "visibility_private", "visibility_public"],
)
def test_presets(alice: Client, body: dict[str, Any], join_rule: str, guest_access: str | None) -> None:
    room_id = create_room(alice, **body)
    state = state_by_key(alice, room_id)
    assert state[("m.room.join_rules", "")]["content"]["join_rule"] == join_rule
    assert state[("m.room.history_visibility", "")]["content"]["history_visibility"] == "shared"
    if guest_access is None:
        assert ("m.room.guest_access", "") not in state
    else:
        assert state[("m.room.guest_access", "")]["content"]["guest_access"] == guest_access
    assert state[("m.room.member", alice.user_id)]["content"]["membership"] == "join"
    create = state[("m.room.create", "")]
    assert create["sender"] == alice.user_id
    power = state[("m.room.power_levels", "")]["content"]
    assert power["users"] == {alice.user_id: 100}
    assert power["users_default"] == 0 and power["events_default"] == 0
    assert power["state_default"] == 50
    assert (power["ban"], power["kick"], power["redact"], power["invite"]) == (50, 50, 50, 50)
    assert power["events"]["m.room.power_levels"] == 100
    assert power["events"]["m.room.history_visibility"] == 100
    assert power["events"]["m.room.name"] == 50


def test_trusted_private_chat_invitees_are_admins(alice: Client, bob: Client, carol: Client) -> None:
    room_id = create_room(alice, preset="trusted_private_chat", invite=[bob.user_id, carol.user_id])
    power = get_state(alice, room_id, "m.room.power_levels")
    assert power["users"] == {alice.user_id: 100, bob.user_id: 100, carol.user_id: 100}

    private = create_room(alice, preset="private_chat", invite=[bob.user_id])
    assert get_state(alice, private, "m.room.power_levels")["users"] == {alice.user_id: 100}


def test_name_topic_and_invite(alice: Client, bob: Client) -> None:
    room_id = create_room(alice, name="The Room", topic="All about it", invite=[bob.user_id], is_direct=True)
    assert get_state(alice, room_id, "m.room.name") == {"name": "The Room"}
    assert get_state(alice, room_id, "m.room.topic") == {"topic": "All about it"}
    assert members(alice, room_id) == {alice.user_id: "join", bob.user_id: "invite"}
    invite_content = get_state(alice, room_id, "m.room.member", bob.user_id)
    assert invite_content["membership"] == "invite"
    assert invite_content["is_direct"] is True
    # The invitee accepts the invite.
    resp = bob.post(f"rooms/{path_id(room_id)}/join", {})
    assert resp.status_code == 200, resp.text
    assert members(bob, room_id) == {alice.user_id: "join", bob.user_id: "join"}


def test_invite_without_is_direct(alice: Client, bob: Client) -> None:
    room_id = create_room(alice, invite=[bob.user_id])
    content = get_state(alice, room_id, "m.room.member", bob.user_id)
    assert content["membership"] == "invite"
    assert "is_direct" not in content


def test_initial_state_overrides_preset(alice: Client) -> None:
    room_id = create_room(alice, preset="public_chat", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
        {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}},
        {"type": "m.room.guest_access", "content": {"guest_access": "can_join"}},
        {"type": "com.example.custom", "state_key": "k", "content": {"a": 1}},
    ])
    state = state_by_key(alice, room_id)
    assert state[("m.room.join_rules", "")]["content"] == {"join_rule": "invite"}
    assert state[("m.room.history_visibility", "")]["content"] == {"history_visibility": "joined"}
    assert state[("m.room.guest_access", "")]["content"] == {"guest_access": "can_join"}
    assert state[("com.example.custom", "k")]["content"] == {"a": 1}
    # Each overridden piece of state is sent once: the preset's default is not in the timeline.
    resp = alice.get(f"rooms/{path_id(room_id)}/messages", params={"dir": "b", "limit": 100})
    join_rules = [e for e in resp.json()["chunk"] if e["type"] == "m.room.join_rules"]
    assert [e["content"] for e in join_rules] == [{"join_rule": "invite"}]


def test_power_level_content_override(alice: Client, bob: Client) -> None:
    room_id = create_room(alice, preset="public_chat", power_level_content_override={
        "events_default": 20, "users": {alice.user_id: 100, bob.user_id: 40}, "events": {"m.room.topic": 40},
    })
    power = get_state(alice, room_id, "m.room.power_levels")
    assert power["events_default"] == 20
    assert power["users"] == {alice.user_id: 100, bob.user_id: 40}
    assert power["events"] == {"m.room.topic": 40}
    assert power["state_default"] == 50  # untouched keys keep the defaults
    # The override is in force: bob (40) may set the topic, not the name (state_default 50).
    resp = bob.post(f"join/{path_id(room_id)}", {})
    assert resp.status_code == 200, resp.text
    assert bob.put(f"rooms/{path_id(room_id)}/state/m.room.topic", {"topic": "t"}).status_code == 200
    assert_error(bob.put(f"rooms/{path_id(room_id)}/state/m.room.name", {"name": "n"}), 403, "M_FORBIDDEN")


def test_creation_content(alice: Client) -> None:
    room_id = create_room(alice, creation_content={"m.federate": False, "type": "m.space"})
    create = get_state(alice, room_id, "m.room.create")
    assert create["m.federate"] is False
    assert create["type"] == "m.space"
    assert create["creator"] == alice.user_id


@pytest.mark.parametrize("version", ["1", "9", "10", "11"])
def test_room_version(alice: Client, version: str) -> None:
    room_id = create_room(alice, room_version=version, name="versioned")
    create = get_state(alice, room_id, "m.room.create")
    assert create["room_version"] == version
    if version == "11":
        assert "creator" not in create  # the sender is the creator from v11
    else:
        assert create["creator"] == alice.user_id
    # The room works: state and messages can be sent and read.
    assert get_state(alice, room_id, "m.room.name") == {"name": "versioned"}
    resp = alice.put(f"rooms/{path_id(room_id)}/send/m.room.message/v{version}", {"msgtype": "m.text", "body": "hi"})
    assert resp.status_code == 200, resp.text


def test_default_room_version(alice: Client) -> None:
    room_id = create_room(alice)
    assert get_state(alice, room_id, "m.room.create")["room_version"] == "10"


@pytest.mark.parametrize("version", ["999", "", 9])
def test_unsupported_room_version(alice: Client, version: Any) -> None:
    assert_error(alice.post("createRoom", {"room_version": version}), 400, "M_UNSUPPORTED_ROOM_VERSION")


def test_room_alias_name(alice: Client, new_user: UserFactory, server_name: str) -> None:
    localpart = "room_" + alice.user_id[1:].split(":")[0]
    resp = alice.post("createRoom", {"room_alias_name": localpart, "preset": "public_chat"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "create_room.yaml", "/createRoom", "post", 200)
    alias = f"#{localpart}:{server_name}"
    assert body["room_alias"] == alias
    assert get_state(alice, body["room_id"], "m.room.canonical_alias") == {"alias": alias}
    # The alias leads to the room: another user joins through it.
    dave = new_user("dave")
    resp = dave.post(f"join/{path_id(alias)}", {})
    assert resp.status_code == 200, resp.text
    assert resp.json()["room_id"] == body["room_id"]

    # Taken: a second room may not claim it, by anyone.
    assert_error(alice.post("createRoom", {"room_alias_name": localpart}), 400, "M_ROOM_IN_USE")
    assert_error(dave.post("createRoom", {"room_alias_name": localpart}), 400, "M_ROOM_IN_USE")


def test_no_alias_without_room_alias_name(alice: Client) -> None:
    resp = alice.post("createRoom", {})
    assert resp.status_code == 200, resp.text
    assert "room_alias" not in resp.json()
    assert_error(alice.get(f"rooms/{path_id(resp.json()['room_id'])}/state/m.room.canonical_alias"), 404, "M_NOT_FOUND")


@pytest.mark.parametrize("body", [
    {"name": 5},
    {"topic": ["a"]},
    {"invite": "@bob:test.local"},
    {"invite": ["not-a-user-id"]},
    {"preset": "nonsense"},
    {"visibility": "secret"},
    {"initial_state": {"type": "m.room.topic"}},
    {"initial_state": [{"type": "m.room.topic"}]},
    {"initial_state": [{"type": 5, "content": {}}]},
    {"power_level_content_override": [1]},
    {"creation_content": "x"},
    {"is_direct": "yes"},
    {"room_alias_name": 7},
], ids=lambda body: "-".join(f"{k}={v!r}" for k, v in body.items()))
def test_bad_types(alice: Client, body: dict[str, Any]) -> None:
    assert_error(alice.post("createRoom", body), 400, "M_BAD_JSON")


def test_requires_auth(client: Client) -> None:
    assert_error(client.post("createRoom", {}), 401, "M_MISSING_TOKEN")
