"""Access control of room writes: a member without the power level for it cannot rename the
room, redact someone else's event, kick, ban or change power levels, and a user who is not
joined cannot send at all. Every refusal is 403 M_FORBIDDEN and leaves the room unchanged."""

from typing import Any

import requests

from tests.harness import Client
from tests.matrix_helpers import assert_error
from tests.rooms.helpers import (
    create_room,
    get_event,
    get_state,
    invite,
    join,
    leave,
    members,
    path_id,
    send,
    set_power_levels,
    timeline,
    txn,
)


def room_with_member(alice: Client, bob: Client, preset: str = "public_chat") -> str:
    """A room of alice's (power 100) that bob has joined with the default power 0."""
    room_id = create_room(alice, preset=preset, name="Original name")
    if preset != "public_chat":
        invite(alice, room_id, bob.user_id)
    join(bob, room_id)
    return room_id


def forbidden(resp: requests.Response) -> dict[str, Any]:
    return assert_error(resp, 403, "M_FORBIDDEN")


def test_member_without_power_cannot_rename_room(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room_id = room_with_member(alice, bob)
    forbidden(bob.put(f"rooms/{path_id(room_id)}/state/m.room.name/", {"name": "Hijacked"}))
    forbidden(bob.put(f"rooms/{path_id(room_id)}/state/m.room.topic/", {"topic": "Hijacked"}))
    assert get_state(bob, room_id, "m.room.name") == {"name": "Original name"}
    assert_error(bob.get(f"rooms/{path_id(room_id)}/state/m.room.topic/"), 404, "M_NOT_FOUND")
    assert "Hijacked" not in str(timeline(alice, room_id))


def test_member_without_power_cannot_redact_anothers_event(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room_id = room_with_member(alice, bob)
    target = send(alice, room_id, "keep me")
    forbidden(bob.put(f"rooms/{path_id(room_id)}/redact/{path_id(target)}/{txn()}", {"reason": "spite"}))
    event = get_event(alice, room_id, target)
    assert event["content"] == {"msgtype": "m.text", "body": "keep me"}
    assert "redacted_because" not in event["unsigned"]
    # Bob may redact his own message: the refusal is about power, not redaction as such.
    own = send(bob, room_id, "mine")
    resp = bob.put(f"rooms/{path_id(room_id)}/redact/{path_id(own)}/{txn()}", {})
    assert resp.status_code == 200, resp.text


def test_member_without_power_cannot_kick(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room_id = room_with_member(alice, bob)
    join(carol, room_id)
    forbidden(bob.post(f"rooms/{path_id(room_id)}/kick", {"user_id": carol.user_id, "reason": "spite"}))
    forbidden(bob.post(f"rooms/{path_id(room_id)}/kick", {"user_id": alice.user_id}))
    assert members(alice, room_id) == {alice.user_id: "join", bob.user_id: "join", carol.user_id: "join"}


def test_member_without_power_cannot_ban(make_user: Any) -> None:
    alice, bob, carol, dave = make_user("alice"), make_user("bob"), make_user("carol"), make_user("dave")
    room_id = room_with_member(alice, bob)
    join(carol, room_id)
    forbidden(bob.post(f"rooms/{path_id(room_id)}/ban", {"user_id": carol.user_id, "reason": "spite"}))
    # Not even someone who never joined.
    forbidden(bob.post(f"rooms/{path_id(room_id)}/ban", {"user_id": dave.user_id}))
    assert members(alice, room_id) == {alice.user_id: "join", bob.user_id: "join", carol.user_id: "join"}
    join(dave, room_id)
    # Nor can bob unban someone alice banned.
    resp = alice.post(f"rooms/{path_id(room_id)}/ban", {"user_id": dave.user_id})
    assert resp.status_code == 200, resp.text
    forbidden(bob.post(f"rooms/{path_id(room_id)}/unban", {"user_id": dave.user_id}))
    assert members(alice, room_id)[dave.user_id] == "ban"


def test_member_without_power_cannot_change_power_levels(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room_id = room_with_member(alice, bob)
    before = get_state(bob, room_id, "m.room.power_levels")
    raised = {**before, "users": {**before.get("users", {}), bob.user_id: 100}}
    forbidden(bob.put(f"rooms/{path_id(room_id)}/state/m.room.power_levels/", raised))
    lowered = {**before, "users": {alice.user_id: 0, bob.user_id: 0}}
    forbidden(bob.put(f"rooms/{path_id(room_id)}/state/m.room.power_levels/", lowered))
    assert get_state(alice, room_id, "m.room.power_levels") == before


def test_moderator_cannot_grant_more_power_than_own(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room_id = room_with_member(alice, bob)
    join(carol, room_id)
    set_power_levels(alice, room_id, users={bob.user_id: 50})
    current = get_state(bob, room_id, "m.room.power_levels")
    for users in ({bob.user_id: 100}, {carol.user_id: 75}, {alice.user_id: 50}):
        content = {**current, "users": {**current["users"], **users}}
        forbidden(bob.put(f"rooms/{path_id(room_id)}/state/m.room.power_levels/", content))
    # Bob may kick carol now (50 >= kick 50) but not alice (100 > 50).
    forbidden(bob.post(f"rooms/{path_id(room_id)}/kick", {"user_id": alice.user_id}))
    assert get_state(alice, room_id, "m.room.power_levels") == current


def test_non_member_cannot_send(make_user: Any) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    room_id = create_room(alice, preset="public_chat")
    r = path_id(room_id)
    forbidden(mallory.put(f"rooms/{r}/send/m.room.message/{txn()}", {"msgtype": "m.text", "body": "intruder"}))
    forbidden(mallory.put(f"rooms/{r}/state/m.room.topic/", {"topic": "intruder"}))
    assert "intruder" not in str(timeline(alice, room_id))


def test_invited_and_departed_users_cannot_send(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room_id = create_room(alice, preset="private_chat")
    r = path_id(room_id)
    invite(alice, room_id, bob.user_id)
    forbidden(bob.put(f"rooms/{r}/send/m.room.message/{txn()}", {"msgtype": "m.text", "body": "invited"}))
    invite(alice, room_id, carol.user_id)
    join(carol, room_id)
    leave(carol, room_id)
    forbidden(carol.put(f"rooms/{r}/send/m.room.message/{txn()}", {"msgtype": "m.text", "body": "departed"}))
    texts = str(timeline(alice, room_id))
    assert "invited" not in texts and "departed" not in texts


def test_banned_user_cannot_send_or_rejoin(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room_id = room_with_member(alice, bob)
    resp = alice.post(f"rooms/{path_id(room_id)}/ban", {"user_id": bob.user_id})
    assert resp.status_code == 200, resp.text
    forbidden(bob.put(f"rooms/{path_id(room_id)}/send/m.room.message/{txn()}", {"msgtype": "m.text", "body": "x"}))
    forbidden(bob.post(f"join/{path_id(room_id)}", {}))
    assert members(alice, room_id)[bob.user_id] == "ban"


def test_non_member_cannot_type_or_send_receipts(make_user: Any) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    room_id = create_room(alice, preset="private_chat")
    r = path_id(room_id)
    event_id = send(alice, room_id, "hello")
    forbidden(mallory.put(f"rooms/{r}/typing/{path_id(mallory.user_id)}", {"typing": True, "timeout": 5000}))
    forbidden(mallory.post(f"rooms/{r}/receipt/m.read/{path_id(event_id)}", {}))
    forbidden(mallory.post(f"rooms/{r}/read_markers", {"m.fully_read": event_id, "m.read": event_id}))


def test_member_cannot_make_another_user_type(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room_id = room_with_member(alice, bob)
    forbidden(bob.put(f"rooms/{path_id(room_id)}/typing/{path_id(alice.user_id)}", {"typing": True, "timeout": 5000}))


def test_non_member_cannot_report_event(make_user: Any) -> None:
    """The spec: 404 M_NOT_FOUND, "the event was not found or you are not joined to the room";
    the same for an event that exists and one that does not."""
    alice, mallory = make_user("alice"), make_user("mallory")
    room_id = create_room(alice, preset="private_chat")
    event_id = send(alice, room_id, "topsecret words")
    r = path_id(room_id)
    existing = mallory.post(f"rooms/{r}/report/{path_id(event_id)}", {"reason": "x"})
    missing = mallory.post(f"rooms/{r}/report/{path_id('$nosuchevent0123456789abcdefghijklmnopqr')}", {"reason": "x"})
    body = assert_error(existing, 404, "M_NOT_FOUND")
    assert body == assert_error(missing, 404, "M_NOT_FOUND")
    assert "topsecret" not in existing.text
