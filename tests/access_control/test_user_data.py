"""Access control of per-user data: nobody reads or writes another user's account data, room
account data, filters, room tags, devices, key backups, push rules or notifications. Each test
is one behaviour a user would notice; errors carry the spec's status and errcode and never the
other user's data."""

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from tests.harness import Client
from tests.matrix_helpers import assert_error, enc
from tests.rooms.helpers import create_room, join, send

T = TypeVar("T")

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"


def eventually(check: Callable[[], T], timeout: float = 5.0) -> T:
    """`check()` once it stops raising AssertionError (a write on one process of the workers
    shape may reach another a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def assert_refused(resp: requests.Response, status: int, errcode: str, *secrets: str) -> dict[str, Any]:
    """The response is this Matrix error and mentions none of `secrets`."""
    body = assert_error(resp, status, errcode)
    for secret in secrets:
        assert secret not in resp.text, resp.text
    return body


def ok(resp: requests.Response) -> Any:
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- account data ---------------------------------------------------------------------------


def test_cannot_read_another_users_account_data(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    ok(alice.put(f"user/{enc(alice.user_id)}/account_data/org.example.diary", {"entry": "alice-secret-diary"}))
    assert eventually(lambda: ok(alice.get(f"user/{enc(alice.user_id)}/account_data/org.example.diary"))) == {
        "entry": "alice-secret-diary"}

    existing = bob.get(f"user/{enc(alice.user_id)}/account_data/org.example.diary")
    missing = bob.get(f"user/{enc(alice.user_id)}/account_data/org.example.nothing")
    first = assert_refused(existing, 403, "M_FORBIDDEN", "alice-secret-diary")
    # A type alice never stored gets the same answer: bob learns nothing about what exists.
    assert assert_refused(missing, 403, "M_FORBIDDEN") == first


def test_cannot_write_another_users_account_data(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    path = f"user/{enc(alice.user_id)}/account_data/org.example.settings"
    ok(alice.put(path, {"theme": "dark"}))
    assert_refused(bob.put(path, {"theme": "pwned"}), 403, "M_FORBIDDEN")
    assert_refused(bob.put(f"user/{enc(alice.user_id)}/account_data/org.example.new", {"x": 1}), 403, "M_FORBIDDEN")
    time.sleep(0.3)
    assert ok(alice.get(path)) == {"theme": "dark"}
    assert_error(alice.get(f"user/{enc(alice.user_id)}/account_data/org.example.new"), 404, "M_NOT_FOUND")
    # Nor did the refused write land in bob's own account data.
    assert_error(bob.get(f"user/{enc(bob.user_id)}/account_data/org.example.settings"), 404, "M_NOT_FOUND")


def test_cannot_read_or_write_another_users_room_account_data(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    path = f"user/{enc(alice.user_id)}/rooms/{enc(room)}/account_data/org.example.draft"
    ok(alice.put(path, {"draft": "alice-secret-draft"}))
    eventually(lambda: ok(alice.get(path)))

    first = assert_refused(bob.get(path), 403, "M_FORBIDDEN", "alice-secret-draft")
    other_type = bob.get(f"user/{enc(alice.user_id)}/rooms/{enc(room)}/account_data/org.example.none")
    assert assert_refused(other_type, 403, "M_FORBIDDEN") == first
    assert_refused(bob.put(path, {"draft": "pwned"}), 403, "M_FORBIDDEN")
    time.sleep(0.3)
    assert ok(alice.get(path)) == {"draft": "alice-secret-draft"}


def test_account_data_of_others_never_reaches_my_sync(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    ok(alice.put(f"user/{enc(alice.user_id)}/account_data/org.example.global", {"v": "alice-global-secret"}))
    ok(alice.put(f"user/{enc(alice.user_id)}/rooms/{enc(room)}/account_data/org.example.room",
                 {"v": "alice-room-secret"}))
    eventually(lambda: ok(alice.get(f"user/{enc(alice.user_id)}/account_data/org.example.global")))
    resp = bob.get("sync")
    assert resp.status_code == 200, resp.text
    assert "alice-global-secret" not in resp.text and "alice-room-secret" not in resp.text


# --- filters --------------------------------------------------------------------------------


def test_cannot_read_or_create_another_users_filter(make_user: Any) -> None:
    """The spec documents only 404 for an unknown filter; for another user's filter Synapse
    answers 403 M_FORBIDDEN ("Cannot get filters for other users"), whether it exists or not."""
    alice, bob = make_user("alice"), make_user("bob")
    filter_body = {"room": {"timeline": {"limit": 7, "types": ["org.example.alice_secret_type"]}}}
    filter_id = ok(alice.post(f"user/{enc(alice.user_id)}/filter", filter_body))["filter_id"]
    assert ok(alice.get(f"user/{enc(alice.user_id)}/filter/{enc(filter_id)}"))["room"]["timeline"]["limit"] == 7

    existing = assert_refused(bob.get(f"user/{enc(alice.user_id)}/filter/{enc(filter_id)}"), 403, "M_FORBIDDEN",
                              "org.example.alice_secret_type")
    missing = bob.get(f"user/{enc(alice.user_id)}/filter/987654321")
    assert assert_refused(missing, 403, "M_FORBIDDEN") == existing
    assert_refused(bob.post(f"user/{enc(alice.user_id)}/filter", {"room": {}}), 403, "M_FORBIDDEN")
    # Bob's own filter ids are his own: alice's id is not a filter of bob's.
    assert_error(bob.get(f"user/{enc(bob.user_id)}/filter/{enc(filter_id)}"), 404, "M_NOT_FOUND")


# --- room tags ------------------------------------------------------------------------------


def test_cannot_read_or_change_another_users_room_tags(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    base = f"user/{enc(alice.user_id)}/rooms/{enc(room)}/tags"
    ok(alice.put(f"{base}/u.alice_secret_tag", {"order": 0.25}))

    def tagged() -> None:
        assert ok(alice.get(base)) == {"tags": {"u.alice_secret_tag": {"order": 0.25}}}

    eventually(tagged)

    assert_refused(bob.get(base), 403, "M_FORBIDDEN", "u.alice_secret_tag")
    assert_refused(bob.put(f"{base}/u.pwned", {"order": 1}), 403, "M_FORBIDDEN")
    assert_refused(bob.delete(f"{base}/u.alice_secret_tag"), 403, "M_FORBIDDEN")
    time.sleep(0.3)
    assert ok(alice.get(base)) == {"tags": {"u.alice_secret_tag": {"order": 0.25}}}
    # Bob's own view of the same room has no tags.
    assert ok(bob.get(f"user/{enc(bob.user_id)}/rooms/{enc(room)}/tags")) == {"tags": {}}


# --- devices --------------------------------------------------------------------------------


def test_another_users_device_is_not_found(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    ok(alice.put(f"devices/{enc(alice.device_id)}", {"display_name": "alice-secret-laptop"}))
    existing = assert_refused(bob.get(f"devices/{enc(alice.device_id)}"), 404, "M_NOT_FOUND", "alice-secret-laptop")
    missing = assert_refused(bob.get("devices/NOSUCHDEVICEATALL"), 404, "M_NOT_FOUND")
    assert existing["errcode"] == missing["errcode"]
    assert_refused(bob.put(f"devices/{enc(alice.device_id)}", {"display_name": "pwned"}), 404, "M_NOT_FOUND")
    listed = ok(bob.get("devices"))["devices"]
    assert [d["device_id"] for d in listed] == [bob.device_id]
    assert "alice-secret-laptop" not in str(listed)
    assert ok(alice.get(f"devices/{enc(alice.device_id)}"))["display_name"] == "alice-secret-laptop"


# --- key backup -----------------------------------------------------------------------------


def test_key_backup_is_visible_only_to_its_owner(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    version = ok(alice.post("room_keys/version", {"algorithm": ALGORITHM,
                                                   "auth_data": {"public_key": "alice-secret-pubkey"}}))["version"]
    session = {"first_message_index": 0, "forwarded_count": 0, "is_verified": False,
               "session_data": {"ciphertext": "alice-secret-ciphertext", "ephemeral": "e", "mac": "m"}}
    room = "!backedup:example.org"
    ok(alice.put(f"room_keys/keys/{enc(room)}/sess1", session, params={"version": version}))

    # Bob has no backup at all: neither the current version nor alice's version number exists for him.
    assert_refused(bob.get("room_keys/version"), 404, "M_NOT_FOUND", "alice-secret-pubkey")
    assert_refused(bob.get(f"room_keys/version/{enc(version)}"), 404, "M_NOT_FOUND", "alice-secret-pubkey")
    for path in ("room_keys/keys", f"room_keys/keys/{enc(room)}", f"room_keys/keys/{enc(room)}/sess1"):
        assert_refused(bob.get(path, params={"version": version}), 404, "M_NOT_FOUND", "alice-secret-ciphertext")
    # Nor can bob write into, replace or delete alice's backup.
    assert_refused(bob.put(f"room_keys/keys/{enc(room)}/sess2", session, params={"version": version}),
                   404, "M_NOT_FOUND")
    assert_refused(bob.put(f"room_keys/version/{enc(version)}",
                           {"algorithm": ALGORITHM, "auth_data": {"public_key": "pwned"}, "version": version}),
                   404, "M_NOT_FOUND")
    bob.delete(f"room_keys/keys/{enc(room)}/sess1", params={"version": version})
    bob.delete(f"room_keys/version/{enc(version)}")

    info = ok(alice.get("room_keys/version"))
    assert info["version"] == version and info["auth_data"] == {"public_key": "alice-secret-pubkey"}
    assert info["count"] == 1
    stored = ok(alice.get(f"room_keys/keys/{enc(room)}/sess1", params={"version": version}))
    assert stored["session_data"]["ciphertext"] == "alice-secret-ciphertext"


# --- push rules -----------------------------------------------------------------------------


def test_push_rules_are_per_user(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    rule = {"actions": ["dont_notify"], "conditions": [
        {"kind": "event_match", "key": "content.body", "pattern": "alice-secret-pattern"}]}
    ok(alice.put("pushrules/global/override/org.example.mine", rule))
    ok(alice.put("pushrules/global/override/.m.rule.suppress_notices/enabled", {"enabled": False}))
    ok(alice.put("pushrules/global/underride/.m.rule.message/actions", {"actions": ["dont_notify"]}))

    def alice_sees_her_changes() -> dict[str, Any]:
        rules = ok(alice.get("pushrules/"))["global"]
        assert "org.example.mine" in [r["rule_id"] for r in rules["override"]]
        return rules  # type: ignore[no-any-return]

    eventually(alice_sees_her_changes)
    resp = bob.get("pushrules/")
    rules = ok(resp)["global"]
    assert "alice-secret-pattern" not in resp.text
    assert "org.example.mine" not in [r["rule_id"] for r in rules["override"]]
    suppress = next(r for r in rules["override"] if r["rule_id"] == ".m.rule.suppress_notices")
    assert suppress["enabled"] is True
    message = next(r for r in rules["underride"] if r["rule_id"] == ".m.rule.message")
    assert message["actions"] == ["notify"]

    assert_refused(bob.get("pushrules/global/override/org.example.mine"), 404, "M_NOT_FOUND", "alice-secret-pattern")
    assert_refused(bob.delete("pushrules/global/override/org.example.mine"), 404, "M_NOT_FOUND")
    time.sleep(0.3)
    assert "org.example.mine" in [r["rule_id"] for r in alice_sees_her_changes()["override"]]


# --- notifications --------------------------------------------------------------------------


def test_notifications_list_only_my_own(make_user: Any) -> None:
    alice, bob, carol, dave = make_user("alice"), make_user("bob"), make_user("carol"), make_user("dave")
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    other_room = create_room(carol, preset="public_chat")
    join(dave, other_room)
    for_bob = send(alice, room, "secret for the alice and bob room")
    for_dave = send(carol, other_room, "secret for the carol and dave room")

    def listed(client: Client) -> list[str]:
        body = ok(client.get("notifications"))
        return [n["event"]["event_id"] for n in body["notifications"]]

    def notified(client: Client, expected: list[str]) -> None:
        assert listed(client) == expected

    eventually(lambda: notified(bob, [for_bob]))
    eventually(lambda: notified(dave, [for_dave]))
    # The senders are not notified of their own messages, and nobody sees another's list.
    assert listed(alice) == [] and listed(carol) == []
    resp = dave.get("notifications")
    assert "alice and bob room" not in resp.text and room not in resp.text
