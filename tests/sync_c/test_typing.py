"""Typing notifications on both engines: starting, stopping, expiring and sending a message as
a room-mate sees them through /sync, long-polls woken by typing, filters, and who may type."""

import time
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


def set_typing(client: Client, room_id: str, typing: bool, timeout: int | None = None) -> None:
    body: dict[str, Any] = {"typing": typing}
    if timeout is not None:
        body["timeout"] = timeout
    resp = client.put(f"rooms/{enc(room_id)}/typing/{enc(client.user_id or '')}", body)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "typing.yaml", "/rooms/{roomId}/typing/{userId}", "put", 200)


def typing_users(body: dict[str, Any], room_id: str) -> list[str] | None:
    """The user_ids of the room's m.typing event, or None when the response has none."""
    events = ephemeral(body, room_id, "m.typing")
    if not events:
        return None
    assert len(events) == 1, events
    assert_event_matches(events[0], "m.typing.yaml")
    return events[0]["content"]["user_ids"]  # type: ignore[no-any-return]


def test_typing_starts_and_stops_for_a_room_mate(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = shared_room(alice, bob)
    first = sync(bob)
    assert typing_users(first, room) is None

    set_typing(alice, room, True, 30000)
    started = typing_becomes(bob, first["next_batch"], room, [alice.user_id])
    # An initial sync shows who is typing now; nothing changed since the last token.
    assert typing_users(sync(bob), room) == [alice.user_id]
    assert typing_users(sync(bob, since=started["next_batch"]), room) is None

    set_typing(bob, room, True)
    typing_becomes(alice, started["next_batch"], room, sorted([alice.user_id, bob.user_id]))

    set_typing(alice, room, False)
    set_typing(bob, room, False)
    typing_becomes(bob, started["next_batch"], room, [])
    assert typing_users(sync(bob), room) is None


def typing_becomes(client: Any, since: str, room: str, expected: list[str]) -> dict[str, Any]:
    """Sync from `since` until the room's m.typing event says `expected` (at once on a single
    process; with workers typing reaches the syncing worker from its writer a moment later)."""
    deadline = time.monotonic() + 10
    while True:
        body = sync(client, since=since, timeout=2000)
        seen = typing_users(body, room)
        if seen == expected:
            return body
        assert time.monotonic() < deadline, f"typing is {seen}, expected {expected}"
        if seen is not None:
            since = body["next_batch"]


def test_typing_expires_and_wakes_a_long_poll(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = shared_room(alice, bob)
    token = sync(bob)["next_batch"]

    poll = Background(lambda: sync(bob, since=token, timeout=20000))
    time.sleep(0.3)
    set_typing(alice, room, True, 1000)
    woken = poll.join()
    assert poll.seconds < 5, poll.seconds
    assert typing_users(woken, room) == [alice.user_id]

    # The expiry itself wakes the next long-poll, about a second after typing started.
    expiry = Background(lambda: sync(bob, since=woken["next_batch"], timeout=20000))
    expired = expiry.join()
    assert expiry.seconds < 5, expiry.seconds
    assert typing_users(expired, room) == []


def test_sending_a_message_or_leaving_stops_typing(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = shared_room(alice, bob, carol)
    set_typing(alice, room, True)
    set_typing(carol, room, True)
    token = sync(bob)["next_batch"]

    send(alice, room, "done typing")
    # With workers the typing writer hears of the send through replication, a moment later.
    after_send = next_typing_change(bob, token, room)
    assert typing_users(after_send, room) == [carol.user_id]
    assert carol.post(f"rooms/{enc(room)}/leave", {}).status_code == 200
    assert typing_users(next_typing_change(bob, after_send["next_batch"], room), room) == []


def next_typing_change(client: Any, since: str, room: str) -> dict[str, Any]:
    """The first sync after `since` that carries an m.typing event for `room` (long-polling
    through syncs that carry only other news)."""
    deadline = time.monotonic() + 10
    while True:
        body = sync(client, since=since, timeout=5000)
        if typing_users(body, room) is not None or time.monotonic() > deadline:
            return body
        since = body["next_batch"]


def test_typing_follows_the_ephemeral_filter(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room, other = shared_room(alice, bob), shared_room(alice, bob)
    set_typing(alice, room, True)
    set_typing(alice, other, True)
    body = sync(bob, filter={"room": {"ephemeral": {"not_types": ["m.typing"]}}})
    assert typing_users(body, room) is None and typing_users(body, other) is None
    body = sync(bob, filter={"room": {"ephemeral": {"rooms": [other]}}})
    assert typing_users(body, room) is None
    assert typing_users(body, other) == [alice.user_id]
    set_typing(alice, room, False)
    set_typing(alice, other, False)


def test_only_joined_members_set_their_own_typing(make_user: Any, client: Client, server_name: str) -> None:
    alice, bob, eve = make_user("alice"), make_user("bob"), make_user("eve")
    room = shared_room(alice, bob)
    path = f"rooms/{enc(room)}/typing/"
    assert_error(alice.put(path + enc(bob.user_id), {"typing": True}), 403, "M_FORBIDDEN")
    assert_error(eve.put(path + enc(eve.user_id), {"typing": True}), 403, "M_FORBIDDEN")
    assert_error(eve.put(f"rooms/{enc(f'!nowhere:{server_name}')}/typing/{enc(eve.user_id)}", {"typing": True}), 403, "M_FORBIDDEN")
    invited = alice.post("createRoom", {"invite": [eve.user_id]}).json()["room_id"]
    assert_error(eve.put(f"rooms/{enc(invited)}/typing/{enc(eve.user_id)}", {"typing": True}), 403, "M_FORBIDDEN")
    mine = path + enc(alice.user_id)
    assert_error(alice.put(mine, {}), 400, "M_MISSING_PARAM")
    assert_error(alice.put(mine, {"typing": "yes"}), 400, "M_BAD_JSON")
    assert_error(alice.put(mine, {"typing": True, "timeout": "soon"}), 400, "M_BAD_JSON")
    assert_error(alice.put(mine, {"typing": True, "timeout": -1}), 400, "M_BAD_JSON")
    assert_error(alice.put(mine, data=b"not json"), 400, "M_NOT_JSON")
    assert_error(client.put(mine, {"typing": True}), 401, "M_MISSING_TOKEN")
    # The legacy prefix answers too; nobody was left typing by the refused requests.
    resp = alice.put(f"/_matrix/client/api/v1/{mine}", {"typing": False})
    assert resp.status_code == 200, resp.text
    assert typing_users(sync(bob), room) is None
