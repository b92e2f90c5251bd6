"""`/sync` end to end: initial and incremental syncs, long-polling, filters, lazy-loading,
limited timelines with working prev_batch tokens, invites and leaves, on both engines."""

import threading
import time
from typing import Any

from tests.harness import Client, ServerProcess
from tests.matrix_helpers import long_poll, sync


def bodies(room: dict[str, Any]) -> list[str]:
    return [e["content"].get("body") for e in room["timeline"]["events"] if e["type"] == "m.room.message"]


def test_invite_then_join_then_messages(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = alice.post("createRoom", {"preset": "private_chat", "name": "Chat", "invite": [bob.user_id]}).json()["room_id"]
    first = sync(bob)
    invite = first["rooms"]["invite"][room]["invite_state"]["events"]
    assert {"m.room.name", "m.room.member", "m.room.join_rules", "m.room.create"} <= {e["type"] for e in invite}
    assert room not in first["rooms"]["join"]

    assert bob.post(f"join/{room}", {}).status_code == 200
    second = sync(bob, since=first["next_batch"])
    joined = second["rooms"]["join"][room]
    assert room not in second["rooms"]["invite"]
    all_events = joined["state"]["events"] + joined["timeline"]["events"]
    assert any(e["type"] == "m.room.name" for e in all_events)
    assert joined["summary"]["m.joined_member_count"] == 2
    assert joined["summary"]["m.heroes"] == [alice.user_id]

    alice.put(f"rooms/{room}/send/m.room.message/1", {"msgtype": "m.text", "body": "hi bob"})
    third = sync(bob, since=second["next_batch"])
    assert bodies(third["rooms"]["join"][room]) == ["hi bob"]
    assert third["rooms"]["join"][room]["timeline"]["limited"] is False
    assert third["rooms"]["join"][room]["state"]["events"] == []

    # Nothing new: an empty response, and only rooms that changed are present.
    other = alice.post("createRoom", {}).json()["room_id"]
    fourth = sync(bob, since=third["next_batch"])
    assert fourth["rooms"]["join"] == {}
    assert other not in fourth["rooms"]["join"]


def test_long_poll_returns_promptly_when_someone_sends(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = alice.post("createRoom", {"preset": "public_chat"}).json()["room_id"]
    bob.post(f"join/{room}", {})
    token = sync(bob)["next_batch"]
    body, seconds = long_poll(
        bob, token, lambda: alice.put(f"rooms/{room}/send/m.room.message/1", {"msgtype": "m.text", "body": "wake up"})
    )
    assert bodies(body["rooms"]["join"][room]) == ["wake up"]
    assert seconds < 5, seconds


def test_long_poll_times_out_empty(make_user: Any) -> None:
    bob = make_user("bob")
    token = sync(bob)["next_batch"]
    start = time.monotonic()
    body = sync(bob, since=token, timeout=700)
    elapsed = time.monotonic() - start
    assert 0.6 < elapsed < 5
    assert body["rooms"]["join"] == {}
    # No room event passed (other streams, such as other users' presence on a shared
    # deployment, may move the token along).
    assert body["next_batch"].split("_")[0] == token.split("_")[0]


def test_own_events_carry_transaction_id(make_user: Any) -> None:
    alice = make_user("alice")
    room = alice.post("createRoom", {}).json()["room_id"]
    token = sync(alice)["next_batch"]
    alice.put(f"rooms/{room}/send/m.room.message/my-txn-1", {"msgtype": "m.text", "body": "mine"})
    event = sync(alice, since=token)["rooms"]["join"][room]["timeline"]["events"][-1]
    assert event["unsigned"]["transaction_id"] == "my-txn-1"


def test_limited_timeline_and_prev_batch(make_user: Any) -> None:
    alice = make_user("alice")
    room = alice.post("createRoom", {"name": "Busy"}).json()["room_id"]
    token = sync(alice)["next_batch"]
    for i in range(8):
        alice.put(f"rooms/{room}/send/m.room.message/{i}", {"msgtype": "m.text", "body": f"m{i}"})
    filter_json = '{"room": {"timeline": {"limit": 3}}}'
    body = sync(alice, since=token, filter=filter_json)
    joined = body["rooms"]["join"][room]
    assert bodies(joined) == ["m5", "m6", "m7"]
    assert joined["timeline"]["limited"] is True
    earlier = alice.get(f"rooms/{room}/messages", params={"from": joined["timeline"]["prev_batch"], "limit": 3}).json()
    assert [e["content"]["body"] for e in earlier["chunk"]] == ["m4", "m3", "m2"]


def test_initial_sync_state_before_timeline(make_user: Any) -> None:
    alice = make_user("alice")
    room = alice.post("createRoom", {"name": "Stateful", "topic": "t"}).json()["room_id"]
    for i in range(3):
        alice.put(f"rooms/{room}/send/m.room.message/{i}", {"msgtype": "m.text", "body": f"m{i}"})
    joined = sync(alice, filter='{"room": {"timeline": {"limit": 2}}}')["rooms"]["join"][room]
    state_types = {e["type"] for e in joined["state"]["events"]}
    assert {"m.room.create", "m.room.power_levels", "m.room.name", "m.room.topic", "m.room.member"} <= state_types
    assert bodies(joined) == ["m1", "m2"]


def test_filters_upload_get_and_lazy_loading(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = alice.post("createRoom", {"preset": "public_chat"}).json()["room_id"]
    for user in (bob, carol):
        user.post(f"join/{room}", {})
    bob.put(f"rooms/{room}/send/m.room.message/1", {"msgtype": "m.text", "body": "from bob"})
    definition = {"room": {"timeline": {"limit": 1}, "state": {"lazy_load_members": True}}}
    resp = alice.post(f"user/{alice.user_id}/filter", definition)
    assert resp.status_code == 200
    filter_id = resp.json()["filter_id"]
    assert alice.get(f"user/{alice.user_id}/filter/{filter_id}").json() == definition
    assert alice.get(f"user/{bob.user_id}/filter/{filter_id}").status_code == 403
    assert alice.get(f"user/{alice.user_id}/filter/999").status_code == 404
    bad = alice.post(f"user/{alice.user_id}/filter", {"room": {"timeline": {"limit": "ten"}}})
    assert bad.status_code == 400
    joined = sync(alice, filter=filter_id)["rooms"]["join"][room]
    members = {e["state_key"] for e in joined["state"]["events"] if e["type"] == "m.room.member"}
    assert bob.user_id in members and alice.user_id in members
    assert carol.user_id not in members


def test_leave_appears_in_leave_section(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = alice.post("createRoom", {"preset": "public_chat"}).json()["room_id"]
    bob.post(f"join/{room}", {})
    token = sync(bob)["next_batch"]
    alice.put(f"rooms/{room}/send/m.room.message/1", {"msgtype": "m.text", "body": "before you go"})
    bob.post(f"rooms/{room}/leave", {})
    alice.put(f"rooms/{room}/send/m.room.message/2", {"msgtype": "m.text", "body": "after you left"})
    body = sync(bob, since=token)
    left = body["rooms"]["leave"][room]
    assert bodies(left) == ["before you go"]
    assert left["timeline"]["events"][-1]["type"] == "m.room.member"
    assert room not in body["rooms"]["join"]


def test_bad_since_token(client: Client, make_user: Any, server: ServerProcess) -> None:
    alice = make_user("alice")
    resp = alice.get("sync", params={"since": "garbage"})
    assert resp.status_code == 400
    assert resp.json()["errcode"] == "M_INVALID_PARAM"
    assert client.get("sync").status_code == 401


def test_thread_summaries_bundled_in_sync_and_messages(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = alice.post("createRoom", {"preset": "public_chat"}).json()["room_id"]
    bob.post(f"join/{room}", {})
    token = sync(alice)["next_batch"]
    root = alice.put(f"rooms/{room}/send/m.room.message/root", {"msgtype": "m.text", "body": "root"}).json()["event_id"]
    for i in range(2):
        bob.put(f"rooms/{room}/send/m.room.message/r{i}", {
            "msgtype": "m.text", "body": f"reply {i}", "m.relates_to": {"rel_type": "m.thread", "event_id": root},
        })
    timeline = sync(alice, since=token)["rooms"]["join"][room]["timeline"]["events"]
    root_event = next(e for e in timeline if e["event_id"] == root)
    thread = root_event["unsigned"]["m.relations"]["m.thread"]
    assert thread["count"] == 2
    assert thread["latest_event"]["content"]["body"] == "reply 1"
    assert thread["current_user_participated"] is True
    page = alice.get(f"rooms/{room}/messages", params={"limit": 5}).json()["chunk"]
    from_messages = next(e for e in page if e["event_id"] == root)
    assert from_messages["unsigned"]["m.relations"]["m.thread"]["count"] == 2
    single = bob.get(f"rooms/{room}/event/{root}").json()
    assert single["unsigned"]["m.relations"]["m.thread"]["current_user_participated"] is True


def test_token_from_a_process_further_along_is_honoured(make_user: Any) -> None:
    """A since token ahead of this process (issued by a process that had seen more) is
    answered once this process catches up, and next_batch never goes behind it."""
    from homeserver.tokens import StreamToken

    alice = make_user("alice")
    room = alice.post("createRoom", {}).json()["room_id"]
    current = StreamToken.parse(sync(alice)["next_batch"])
    ahead = current.copy_and_replace("events", current.events + 1).encode()
    sender = threading.Timer(0.5, lambda: alice.put(f"rooms/{room}/send/m.room.message/1", {"msgtype": "m.text", "body": "x"}))
    sender.start()
    start = time.monotonic()
    body = sync(alice, since=ahead)
    sender.join()
    assert time.monotonic() - start >= 0.4
    assert StreamToken.parse(body["next_batch"]).events >= current.events + 1
