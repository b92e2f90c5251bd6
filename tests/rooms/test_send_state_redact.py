"""Sending events (transaction ids, power levels, size), room state (PUT/GET, state keys),
single events (/event) and redactions."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.harness import Client, ServerProcess
from tests.rooms.helpers import (
    assert_client_event,
    bodies,
    create_room,
    get_event,
    get_state,
    join,
    path_id,
    public_room,
    put_state,
    send,
    set_power_levels,
    timeline,
    txn,
)
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error


def send_with_txn(client: Client, room_id: str, txn_id: str, body: str) -> str:
    resp = client.put(f"rooms/{path_id(room_id)}/send/m.room.message/{txn_id}", {"msgtype": "m.text", "body": body})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "room_send.yaml", "/rooms/{roomId}/send/{eventType}/{txnId}", "put", 200)
    return resp.json()["event_id"]  # type: ignore[no-any-return]


def redact(client: Client, room_id: str, event_id: str, reason: str | None = None, txn_id: str | None = None) -> str:
    body = {"reason": reason} if reason is not None else {}
    resp = client.put(f"rooms/{path_id(room_id)}/redact/{path_id(event_id)}/{txn_id or txn()}", body)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "redaction.yaml", "/rooms/{roomId}/redact/{eventId}/{txnId}", "put", 200)
    return resp.json()["event_id"]  # type: ignore[no-any-return]


def second_device(server: ServerProcess, client: Client) -> Client:
    other = Client(server.url)
    other.login(client.user_id or "")
    assert other.device_id != client.device_id
    return other


# --- sending ------------------------------------------------------------------------------------


def test_send_message(alice: Client) -> None:
    room_id = create_room(alice)
    event_id = send(alice, room_id, "hello world")
    event = get_event(alice, room_id, event_id)
    assert event["type"] == "m.room.message"
    assert event["content"] == {"msgtype": "m.text", "body": "hello world"}
    assert event["sender"] == alice.user_id
    assert event["room_id"] == room_id
    assert "state_key" not in event


def test_send_custom_event_type(alice: Client) -> None:
    room_id = create_room(alice)
    event_id = send(alice, room_id, event_type="com.example.ping", content={"n": 1})
    assert get_event(alice, room_id, event_id)["content"] == {"n": 1}


def test_send_is_idempotent_per_txn_id(server: ServerProcess, alice: Client) -> None:
    room_id = create_room(alice)
    first = send_with_txn(alice, room_id, "txn-1", "once")
    again = send_with_txn(alice, room_id, "txn-1", "once")
    assert again == first
    assert bodies(timeline(alice, room_id)) == ["once"]

    # The same txn id from another device of the same user is a new request.
    other = second_device(server, alice)
    from_other = send_with_txn(other, room_id, "txn-1", "once")
    assert from_other != first
    assert send_with_txn(other, room_id, "txn-1", "once") == from_other
    assert bodies(timeline(alice, room_id)) == ["once", "once"]


def test_concurrent_retries_create_one_event(server: ServerProcess, alice: Client) -> None:
    room_id = create_room(alice)

    def attempt(_: int) -> str:
        c = Client(server.url, alice.access_token)
        return send_with_txn(c, room_id, "concurrent-txn", "only once")

    with ThreadPoolExecutor(max_workers=6) as pool:
        event_ids = set(pool.map(attempt, range(6)))
    assert len(event_ids) == 1
    assert bodies(timeline(alice, room_id)) == ["only once"]


def test_txn_id_is_scoped_to_the_endpoint(alice: Client) -> None:
    """A transaction id is per device and per endpoint: reusing it in another room, for another
    event type or for a redaction is a new request."""
    room_a = create_room(alice)
    room_b = create_room(alice)
    in_a = send_with_txn(alice, room_a, "shared-txn", "in a")
    in_b = send_with_txn(alice, room_b, "shared-txn", "in b")
    assert in_b != in_a
    assert bodies(timeline(alice, room_b)) == ["in b"]
    resp = alice.put(f"rooms/{path_id(room_a)}/send/com.example.other/shared-txn", {"x": 1})
    assert resp.status_code == 200, resp.text
    other_type = resp.json()["event_id"]
    assert other_type not in (in_a, in_b)
    assert get_event(alice, room_a, other_type)["type"] == "com.example.other"
    redaction = redact(alice, room_a, in_a, txn_id="shared-txn")
    assert redaction not in (in_a, in_b, other_type)
    assert get_event(alice, room_a, in_a)["content"] == {}


def test_send_by_non_member_is_forbidden(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    assert_error(bob.put(f"rooms/{path_id(room_id)}/send/m.room.message/{txn()}", {"body": "x"}), 403, "M_FORBIDDEN")
    assert bodies(timeline(alice, room_id)) == []


def test_send_below_events_default_is_forbidden(alice: Client, bob: Client) -> None:
    room_id = public_room(alice, power_level_content_override={"events_default": 10})
    join(bob, room_id)
    assert_error(bob.put(f"rooms/{path_id(room_id)}/send/m.room.message/{txn()}", {"body": "x"}), 403, "M_FORBIDDEN")
    set_power_levels(alice, room_id, users={bob.user_id: 10})
    send(bob, room_id, "now allowed")
    assert bodies(timeline(alice, room_id)) == ["now allowed"]


def test_send_event_type_with_its_own_level(alice: Client, bob: Client) -> None:
    room_id = public_room(alice, power_level_content_override={"events": {"com.example.special": 60}})
    join(bob, room_id)
    assert_error(bob.put(f"rooms/{path_id(room_id)}/send/com.example.special/{txn()}", {}), 403, "M_FORBIDDEN")
    send(bob, room_id, "plain messages still allowed")


def test_send_to_unknown_room(alice: Client, server_name: str) -> None:
    resp = alice.put(f"rooms/{path_id(f'!nope:{server_name}')}/send/m.room.message/{txn()}", {"body": "x"})
    assert resp.status_code in (403, 404), resp.text
    assert_error(resp, resp.status_code)


def test_send_body_must_be_a_json_object(alice: Client) -> None:
    room_id = create_room(alice)
    resp = alice.put(f"rooms/{path_id(room_id)}/send/m.room.message/{txn()}", data=b"not json")
    assert_error(resp, 400, "M_NOT_JSON")
    assert_error(alice.put(f"rooms/{path_id(room_id)}/send/m.room.message/{txn()}", [1, 2]), 400)


def test_too_large_event(alice: Client) -> None:
    room_id = create_room(alice)
    resp = alice.put(f"rooms/{path_id(room_id)}/send/m.room.message/{txn()}",
                     {"msgtype": "m.text", "body": "x" * (65 * 1024)})
    assert_error(resp, 413, "M_TOO_LARGE")
    assert bodies(timeline(alice, room_id)) == []
    # Just under the limit is fine.
    send(alice, room_id, "y" * (60 * 1024))


# --- state ---------------------------------------------------------------------------------------


def test_put_and_get_state(alice: Client) -> None:
    room_id = create_room(alice)
    event_id = put_state(alice, room_id, "m.room.topic", {"topic": "Weather"})
    assert get_state(alice, room_id, "m.room.topic") == {"topic": "Weather"}

    resp = alice.get(f"rooms/{path_id(room_id)}/state/m.room.topic/", params={"format": "event"})
    assert resp.status_code == 200, resp.text
    event = resp.json()
    # (The spec's `oneOf` of "object" and StateEvent matches any event twice: check the event
    # schema alone.)
    assert_client_event(event)
    assert event["event_id"] == event_id
    assert event["type"] == "m.room.topic"
    assert event["state_key"] == ""
    assert event["sender"] == alice.user_id
    assert event["content"] == {"topic": "Weather"}
    assert event["room_id"] == room_id

    resp = alice.get(f"rooms/{path_id(room_id)}/state/m.room.topic", params={"format": "content"})
    assert resp.json() == {"topic": "Weather"}

    # Replacing it: the new content is current.
    put_state(alice, room_id, "m.room.topic", {"topic": "Sports"})
    assert get_state(alice, room_id, "m.room.topic") == {"topic": "Sports"}


@pytest.mark.parametrize("put_path, get_path", [
    ("state/m.room.name", "state/m.room.name/"),
    ("state/m.room.name/", "state/m.room.name"),
])
def test_empty_state_key_with_and_without_trailing_slash(alice: Client, put_path: str, get_path: str) -> None:
    room_id = create_room(alice)
    resp = alice.put(f"rooms/{path_id(room_id)}/{put_path}", {"name": put_path})
    assert resp.status_code == 200, resp.text
    resp = alice.get(f"rooms/{path_id(room_id)}/{get_path}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"name": put_path}


def test_state_with_state_key(alice: Client) -> None:
    room_id = create_room(alice)
    put_state(alice, room_id, "com.example.setting", {"v": 1}, "alpha")
    put_state(alice, room_id, "com.example.setting", {"v": 2}, "beta")
    put_state(alice, room_id, "com.example.setting", {"v": 0})
    assert get_state(alice, room_id, "com.example.setting", "alpha") == {"v": 1}
    assert get_state(alice, room_id, "com.example.setting", "beta") == {"v": 2}
    assert get_state(alice, room_id, "com.example.setting") == {"v": 0}
    assert_error(alice.get(f"rooms/{path_id(room_id)}/state/com.example.setting/gamma"), 404, "M_NOT_FOUND")
    # State keys are arbitrary strings: URL-encoded slashes, spaces and non-ASCII survive.
    for key in ("with/slash", "with space", "ключ", "#?&"):
        event_id = put_state(alice, room_id, "com.example.setting", {"key": key}, key)
        assert get_state(alice, room_id, "com.example.setting", key) == {"key": key}
        assert get_event(alice, room_id, event_id)["state_key"] == key


def test_missing_state_is_not_found(alice: Client) -> None:
    room_id = create_room(alice)
    assert_error(alice.get(f"rooms/{path_id(room_id)}/state/m.room.topic"), 404, "M_NOT_FOUND")
    assert_error(alice.get(f"rooms/{path_id(room_id)}/state/m.room.topic/"), 404, "M_NOT_FOUND")
    assert_error(alice.get(f"rooms/{path_id(room_id)}/state/com.example.none/x"), 404, "M_NOT_FOUND")


def test_state_put_needs_state_default_level(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    assert_error(bob.put(f"rooms/{path_id(room_id)}/state/m.room.topic", {"topic": "mine"}), 403, "M_FORBIDDEN")
    assert_error(bob.put(f"rooms/{path_id(room_id)}/state/com.example.x/k", {}), 403, "M_FORBIDDEN")
    # Power levels need 100 even with the state_default level.
    set_power_levels(alice, room_id, users={bob.user_id: 50})
    put_state(bob, room_id, "m.room.topic", {"topic": "mine"})
    assert_error(bob.put(f"rooms/{path_id(room_id)}/state/m.room.power_levels", {"users": {bob.user_id: 100}}),
                 403, "M_FORBIDDEN")
    assert get_state(alice, room_id, "m.room.topic") == {"topic": "mine"}


def test_state_of_non_member(alice: Client, bob: Client) -> None:
    room_id = create_room(alice)
    put_state(alice, room_id, "m.room.topic", {"topic": "secret"})
    assert_error(bob.get(f"rooms/{path_id(room_id)}/state/m.room.topic"), 403, "M_FORBIDDEN")
    assert_error(bob.put(f"rooms/{path_id(room_id)}/state/m.room.topic", {"topic": "x"}), 403, "M_FORBIDDEN")


def test_member_state_key_is_own_user(alice: Client, bob: Client) -> None:
    """State keys that are user ids may only be set by that user (for non-member events too)."""
    room_id = public_room(alice, power_level_content_override={"state_default": 0})
    join(bob, room_id)
    put_state(bob, room_id, "com.example.profile", {"x": 1}, bob.user_id)
    assert_error(bob.put(f"rooms/{path_id(room_id)}/state/com.example.profile/{path_id(alice.user_id)}", {"x": 2}),
                 403, "M_FORBIDDEN")


def test_displayname_through_member_state(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    put_state(bob, room_id, "m.room.member", {"membership": "join", "displayname": "Bobby"}, bob.user_id)
    assert get_state(alice, room_id, "m.room.member", bob.user_id) == {"membership": "join", "displayname": "Bobby"}


# --- single events ----------------------------------------------------------------------------


def test_get_event(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    event_id = send(alice, room_id, "findable")
    join(bob, room_id)
    for reader in (alice, bob):  # shared history: bob sees it after joining
        event = get_event(reader, room_id, event_id)
        assert event["event_id"] == event_id
        assert event["content"]["body"] == "findable"
        assert isinstance(event["unsigned"].get("age"), int)


def test_get_state_event_by_id(alice: Client) -> None:
    room_id = create_room(alice)
    event_id = put_state(alice, room_id, "m.room.topic", {"topic": "t"})
    event = get_event(alice, room_id, event_id)
    assert event["state_key"] == ""
    assert event["content"] == {"topic": "t"}


def test_get_unknown_event(alice: Client) -> None:
    room_id = create_room(alice)
    assert_error(alice.get(f"rooms/{path_id(room_id)}/event/{path_id('$doesnotexist')}"), 404, "M_NOT_FOUND")


def test_get_event_of_another_room(alice: Client) -> None:
    room_a = create_room(alice)
    room_b = create_room(alice)
    in_b = send(alice, room_b, "elsewhere")
    assert_error(alice.get(f"rooms/{path_id(room_a)}/event/{path_id(in_b)}"), 404, "M_NOT_FOUND")
    assert get_event(alice, room_b, in_b)["room_id"] == room_b


def test_get_event_as_non_member(alice: Client, bob: Client) -> None:
    room_id = create_room(alice)
    event_id = send(alice, room_id, "private")
    resp = bob.get(f"rooms/{path_id(room_id)}/event/{path_id(event_id)}")
    assert resp.status_code in (403, 404), resp.text
    assert_error(resp, resp.status_code)


# --- redaction ------------------------------------------------------------------------------------


def assert_redacted(event: dict[str, Any], redaction_id: str, redacter: str, reason: str | None) -> None:
    assert_client_event(event)
    because = event["unsigned"]["redacted_because"]
    assert because["event_id"] == redaction_id
    assert because["type"] == "m.room.redaction"
    assert because["sender"] == redacter
    assert because["redacts"] == event["event_id"] or because["content"].get("redacts") == event["event_id"]
    if reason is not None:
        assert because["content"]["reason"] == reason


@pytest.mark.parametrize("version", ["1", "10", "11"])
def test_redact_own_message(alice: Client, version: str) -> None:
    room_id = create_room(alice, room_version=version)
    event_id = send(alice, room_id, "oops")
    redaction_id = redact(alice, room_id, event_id, reason="typo")
    event = get_event(alice, room_id, event_id)
    assert event["content"] == {}
    assert event["type"] == "m.room.message"
    assert event["sender"] == alice.user_id
    assert_redacted(event, redaction_id, alice.user_id, "typo")

    events = {e["event_id"]: e for e in timeline(alice, room_id)}
    assert events[event_id]["content"] == {}
    assert_redacted(events[event_id], redaction_id, alice.user_id, "typo")
    # The redaction is itself in the timeline, pointing at the event.
    redaction = events[redaction_id]
    assert redaction["type"] == "m.room.redaction"
    assert redaction["redacts"] == event_id or redaction["content"].get("redacts") == event_id
    assert redaction["content"]["reason"] == "typo"
    assert get_event(alice, room_id, redaction_id)["event_id"] == redaction_id


def test_redaction_is_idempotent_per_txn_id(alice: Client) -> None:
    room_id = create_room(alice)
    event_id = send(alice, room_id, "oops")
    first = redact(alice, room_id, event_id, txn_id="redact-txn")
    assert redact(alice, room_id, event_id, txn_id="redact-txn") == first
    assert [e["event_id"] for e in timeline(alice, room_id) if e["type"] == "m.room.redaction"] == [first]


def test_redact_others_message_needs_redact_level(alice: Client, bob: Client, carol: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    join(carol, room_id)
    carols = send(carol, room_id, "carol's message")
    assert_error(bob.put(f"rooms/{path_id(room_id)}/redact/{path_id(carols)}/{txn()}", {}), 403, "M_FORBIDDEN")
    assert get_event(alice, room_id, carols)["content"]["body"] == "carol's message"
    # A moderator (alice, 100) may redact anyone's event.
    redaction_id = redact(alice, room_id, carols, reason="moderation")
    event = get_event(bob, room_id, carols)
    assert event["content"] == {}
    assert_redacted(event, redaction_id, alice.user_id, "moderation")


def test_redact_unknown_or_foreign_event(alice: Client) -> None:
    room_id = create_room(alice)
    other_room = create_room(alice)
    elsewhere = send(alice, other_room, "elsewhere")
    resp = alice.put(f"rooms/{path_id(room_id)}/redact/{path_id(elsewhere)}/{txn()}", {})
    assert resp.status_code in (400, 404), resp.text
    assert get_event(alice, other_room, elsewhere)["content"]["body"] == "elsewhere"


def test_redact_state_event(alice: Client) -> None:
    room_id = create_room(alice)
    topic_id = put_state(alice, room_id, "m.room.topic", {"topic": "to be removed"})
    redaction_id = redact(alice, room_id, topic_id)
    event = get_event(alice, room_id, topic_id)
    assert event["content"] == {}
    assert event["state_key"] == ""
    assert event["type"] == "m.room.topic"
    assert_redacted(event, redaction_id, alice.user_id, None)
    # The current state holds the redacted event.
    assert get_state(alice, room_id, "m.room.topic") == {}


def test_redact_join_rules_keeps_protected_keys(alice: Client) -> None:
    room_id = create_room(alice, preset="public_chat")
    event_id = put_state(alice, room_id, "m.room.join_rules", {"join_rule": "public", "com.example.extra": True})
    redact(alice, room_id, event_id)
    event = get_event(alice, room_id, event_id)
    assert event["content"] == {"join_rule": "public"}
    assert event["state_key"] == ""


def test_redact_member_event_keeps_membership(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    member_id = put_state(bob, room_id, "m.room.member", {"membership": "join", "displayname": "Bad Name"}, bob.user_id)
    redact(alice, room_id, member_id)
    event = get_event(alice, room_id, member_id)
    assert event["content"] == {"membership": "join"}
    assert event["state_key"] == bob.user_id
