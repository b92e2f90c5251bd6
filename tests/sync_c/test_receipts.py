"""Read receipts and read markers on both engines: public receipts reach room-mates through
/sync, private ones only their owner, threaded receipts carry their thread, receipts never
move backwards, `m.fully_read` is room account data, read receipts clear unread counts, and
what is refused."""

from typing import Any

from tests.harness import Client
from tests.spec import assert_matches_spec
from tests.sync_c.helpers import (
    Background,
    assert_error,
    assert_event_matches,
    enc,
    ephemeral,
    send,
    shared_room,
    sync,
)

RECEIPT_PATH = "/rooms/{roomId}/receipt/{receiptType}/{eventId}"


def post_receipt(client: Client, room_id: str, event_id: str, receipt_type: str = "m.read", **body: Any) -> None:
    resp = client.post(f"rooms/{enc(room_id)}/receipt/{receipt_type}/{enc(event_id)}", body)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "receipts.yaml", RECEIPT_PATH, "post", 200)


def read_markers(client: Client, room_id: str, body: dict[str, Any]) -> None:
    resp = client.post(f"rooms/{enc(room_id)}/read_markers", body)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "read_markers.yaml", "/rooms/{roomId}/read_markers", "post", 200)


def receipts(body: dict[str, Any], room_id: str) -> dict[str, Any] | None:
    """The content of the room's m.receipt event, or None when the response has none."""
    events = ephemeral(body, room_id, "m.receipt")
    if not events:
        return None
    assert len(events) == 1, events
    assert_event_matches(events[0], "m.receipt.yaml")
    return events[0]["content"]  # type: ignore[no-any-return]


def receipt_users(content: dict[str, Any] | None, event_id: str, receipt_type: str = "m.read") -> dict[str, Any]:
    return (content or {}).get(event_id, {}).get(receipt_type, {})  # type: ignore[no-any-return]


def test_read_receipt_reaches_room_mates(make_user: Any) -> None:
    alice, bob, eve = make_user("alice"), make_user("bob"), make_user("eve")
    room = shared_room(alice, bob)
    event_id = send(alice, room, "read me")
    token = sync(alice)["next_batch"]

    post_receipt(bob, room, event_id)
    body = sync(alice, since=token)
    users = receipt_users(receipts(body, room), event_id)
    assert list(users) == [bob.user_id]
    assert isinstance(users[bob.user_id]["ts"], int) and "thread_id" not in users[bob.user_id]
    assert receipts(sync(alice, since=body["next_batch"]), room) is None
    # An initial sync carries the room's latest receipts; other rooms' receipts stay there.
    assert list(receipt_users(receipts(sync(bob), room), event_id)) == [bob.user_id]
    assert receipts(sync(eve), room) is None


def test_private_receipts_reach_only_their_owner(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = shared_room(alice, bob)
    event_id = send(alice, room)
    alice_token, bob_token = sync(alice)["next_batch"], sync(bob)["next_batch"]

    post_receipt(bob, room, event_id, "m.read.private")
    mine = receipts(sync(bob, since=bob_token), room)
    assert list(receipt_users(mine, event_id, "m.read.private")) == [bob.user_id]
    assert receipt_users(mine, event_id) == {}
    assert receipts(sync(alice, since=alice_token), room) is None
    assert receipts(sync(alice), room) is None
    assert list(receipt_users(receipts(sync(bob), room), event_id, "m.read.private")) == [bob.user_id]


def test_threaded_receipts(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = shared_room(alice, bob)
    root = send(alice, room, "thread root")
    reply = send(alice, room, "in the thread", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    reaction_path = f"rooms/{enc(room)}/send/m.reaction/r1"
    resp = alice.put(reaction_path, {"m.relates_to": {"rel_type": "m.annotation", "event_id": reply, "key": "👍"}})
    assert resp.status_code == 200, resp.text
    reaction = resp.json()["event_id"]
    token = sync(alice)["next_batch"]

    post_receipt(bob, room, reply, thread_id=root)
    post_receipt(bob, room, root, thread_id="main")
    post_receipt(bob, room, reaction, thread_id=root)
    post_receipt(bob, room, root, thread_id=root)  # the root belongs to its thread too
    content = receipts(sync(alice, since=token), room)
    assert receipt_users(content, root)[bob.user_id]["thread_id"] in ("main", root)
    assert receipt_users(content, reaction)[bob.user_id]["thread_id"] == root

    base = f"rooms/{enc(room)}/receipt/m.read/"
    assert_error(bob.post(base + enc(reply), {"thread_id": "main"}), 400, "M_INVALID_PARAM")
    assert_error(bob.post(base + enc(root), {"thread_id": reply}), 400, "M_INVALID_PARAM")
    assert_error(bob.post(base + enc(reply), {"thread_id": ""}), 400, "M_INVALID_PARAM")
    assert_error(bob.post(base + enc(reply), {"thread_id": 5}), 400, "M_INVALID_PARAM")
    fully_read = f"rooms/{enc(room)}/receipt/m.fully_read/{enc(reply)}"
    assert_error(bob.post(fully_read, {"thread_id": root}), 400, "M_INVALID_PARAM")


def test_receipts_never_move_backwards(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = shared_room(alice, bob)
    first, second = send(alice, room, "one"), send(alice, room, "two")
    post_receipt(bob, room, second)
    token = sync(alice)["next_batch"]
    post_receipt(bob, room, first)  # accepted, and ignored
    assert receipts(sync(alice, since=token), room) is None
    content = receipts(sync(alice), room)
    assert bob.user_id in receipt_users(content, second)
    assert receipt_users(content, first) == {}
    # Each thread (and the unthreaded receipt) moves on its own.
    post_receipt(bob, room, first, thread_id="main")
    content = receipts(sync(alice, since=token), room)
    assert receipt_users(content, first)[bob.user_id]["thread_id"] == "main"


def test_read_markers_set_fully_read_and_receipts(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = shared_room(alice, bob)
    first, second, third = send(alice, room, "1"), send(alice, room, "2"), send(alice, room, "3")
    alice_token, bob_token = sync(alice)["next_batch"], sync(bob)["next_batch"]
    marker_path = f"user/{enc(bob.user_id)}/rooms/{enc(room)}/account_data/m.fully_read"
    assert_error(bob.get(marker_path), 404, "M_NOT_FOUND")

    read_markers(bob, room, {"m.fully_read": second, "m.read": second, "m.read.private": first, "org.example.x": "$ignored"})
    resp = bob.get(marker_path)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"event_id": second}
    assert list(receipt_users(receipts(sync(alice, since=alice_token), room), second)) == [bob.user_id]
    body = sync(bob, since=bob_token)
    marker = [e for e in body["rooms"]["join"][room]["account_data"]["events"] if e["type"] == "m.fully_read"]
    assert_event_matches(marker[0], "m.fully_read.yaml")
    assert marker[0]["content"] == {"event_id": second}
    assert receipt_users(receipts(body, room), first, "m.read.private") != {}

    # The marker only moves forwards; the receipt endpoint moves it too.
    read_markers(bob, room, {"m.fully_read": first})
    assert bob.get(marker_path).json() == {"event_id": second}
    post_receipt(bob, room, third, "m.fully_read")
    assert bob.get(marker_path).json() == {"event_id": third}
    # Clients may not write the marker as plain account data.
    assert_error(bob.put(marker_path, {"event_id": first}), 405)
    read_markers(bob, room, {})


def test_read_receipt_clears_unread_counts(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = alice.post("createRoom", {"preset": "private_chat", "invite": [bob.user_id], "is_direct": True}).json()["room_id"]
    assert bob.post(f"join/{enc(room)}", {}).status_code == 200
    send(alice, room, "one")
    last = send(alice, room, "two")
    before = sync(bob)["rooms"]["join"][room]
    assert before["unread_notifications"]["notification_count"] == 2
    post_receipt(bob, room, last)
    after = sync(bob)["rooms"]["join"][room]
    assert after["unread_notifications"]["notification_count"] == 0


def test_receipt_wakes_a_long_poll(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = shared_room(alice, bob)
    event_id = send(alice, room)
    token = sync(alice)["next_batch"]
    poll = Background(lambda: sync(alice, since=token, timeout=20000))
    post_receipt(bob, room, event_id)
    body = poll.join()
    assert poll.seconds < 5, poll.seconds
    assert bob.user_id in receipt_users(receipts(body, room), event_id)


def test_refused_receipts(make_user: Any, client: Client, server_name: str) -> None:
    alice, bob, eve = make_user("alice"), make_user("bob"), make_user("eve")
    room, elsewhere = shared_room(alice, bob), shared_room(alice)
    event_id, foreign = send(alice, room), send(alice, elsewhere)
    base = f"rooms/{enc(room)}/receipt"
    assert_error(bob.post(f"{base}/m.read/{enc('$unknown')}", {}), 404, "M_NOT_FOUND")
    assert_error(bob.post(f"{base}/m.read/{enc(foreign)}", {}), 404, "M_NOT_FOUND")
    assert_error(bob.post(f"{base}/m.read/not-an-event-id", {}), 400, "M_INVALID_PARAM")
    assert_error(bob.post(f"{base}/m.unknown/{enc(event_id)}", {}), 400, "M_INVALID_PARAM")
    assert_error(eve.post(f"{base}/m.read/{enc(event_id)}", {}), 403, "M_FORBIDDEN")
    assert_error(eve.post(f"rooms/{enc(f'!nowhere:{server_name}')}/receipt/m.read/{enc(event_id)}", {}), 403, "M_FORBIDDEN")
    assert_error(client.post(f"{base}/m.read/{enc(event_id)}", {}), 401, "M_MISSING_TOKEN")
    markers = f"rooms/{enc(room)}/read_markers"
    assert_error(bob.post(markers, {"m.fully_read": 42}), 400, "M_BAD_JSON")
    assert_error(bob.post(markers, {"m.read": "$unknown"}), 404, "M_NOT_FOUND")
    assert_error(eve.post(markers, {"m.fully_read": event_id}), 403, "M_FORBIDDEN")
    assert_error(bob.post(markers, data=b"[]"), 400, "M_BAD_JSON")
    # Nothing was stored by the refused requests (an empty body is accepted).
    assert receipts(sync(alice), room) is None
    resp = bob.post(f"{base}/m.read/{enc(event_id)}", data=b"")
    assert resp.status_code == 200, resp.text
