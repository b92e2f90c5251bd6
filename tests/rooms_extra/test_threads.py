"""/_matrix/client/v1/rooms/{roomId}/threads: thread roots by latest activity with their
bundled m.thread aggregation, include=participated and paging, on both engines."""

from typing import Any

from tests.harness import Client
from tests.rooms_extra.helpers import V1, create_room, enc, join, react, redact, say, thread_reply
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error


def threads(client: Client, room_id: str, **params: Any) -> dict[str, Any]:
    resp = client.get(f"{V1}/rooms/{enc(room_id)}/threads", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "threads_list.yaml", "/rooms/{roomId}/threads", "get", 200)
    return body  # type: ignore[no-any-return]


def roots(body: dict[str, Any]) -> list[str]:
    return [e["event_id"] for e in body["chunk"]]


def summary(event: dict[str, Any]) -> dict[str, Any]:
    return event["unsigned"]["m.relations"]["m.thread"]  # type: ignore[no-any-return]


def test_threads_newest_activity_first_with_summaries(make_user: Any) -> None:
    alice, bob = make_user("thr"), make_user("bob")
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    first = say(alice, room_id, "first thread")
    second = say(bob, room_id, "second thread")
    say(alice, room_id, "not a thread")
    thread_reply(bob, room_id, first, "reply 1 to first")
    latest_second = thread_reply(alice, room_id, second, "reply to second")
    # A reaction is not thread activity.
    react(bob, room_id, first, "👍")

    body = threads(alice, room_id)
    assert roots(body) == [second, first]
    assert "next_batch" not in body

    latest_first = thread_reply(bob, room_id, first, "reply 2 to first")
    body = threads(alice, room_id)
    assert roots(body) == [first, second]
    first_root, second_root = body["chunk"]
    assert first_root["content"]["body"] == "first thread"
    assert first_root["sender"] == alice.user_id

    first_summary = summary(first_root)
    assert first_summary["count"] == 2
    assert first_summary["latest_event"]["event_id"] == latest_first
    assert first_summary["latest_event"]["content"]["body"] == "reply 2 to first"
    assert first_summary["latest_event"]["sender"] == bob.user_id
    # Alice started the thread, which counts as participating.
    assert first_summary["current_user_participated"] is True
    second_summary = summary(second_root)
    assert second_summary["count"] == 1
    assert second_summary["latest_event"]["event_id"] == latest_second
    assert second_summary["current_user_participated"] is True

    # From Bob's side: he replied in the first and started the second.
    assert all(summary(e)["current_user_participated"] for e in threads(bob, room_id)["chunk"])
    carol = make_user("carol")
    join(carol, room_id)
    assert [summary(e)["current_user_participated"] for e in threads(carol, room_id)["chunk"]] == [False, False]


def test_include_participated(make_user: Any) -> None:
    alice, bob, carol = make_user("thr"), make_user("bob"), make_user("carol")
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    join(carol, room_id)
    started_by_bob = say(bob, room_id, "bob's thread")
    replied_by_bob = say(alice, room_id, "alice's thread")
    without_bob = say(alice, room_id, "another of alice's threads")
    thread_reply(alice, room_id, started_by_bob, "alice replies")
    thread_reply(bob, room_id, replied_by_bob, "bob replies")
    thread_reply(carol, room_id, without_bob, "carol replies")

    assert roots(threads(bob, room_id)) == [without_bob, replied_by_bob, started_by_bob]
    assert roots(threads(bob, room_id, include="participated")) == [replied_by_bob, started_by_bob]
    assert roots(threads(carol, room_id, include="participated")) == [without_bob]
    assert roots(threads(alice, room_id, include="participated")) == [without_bob, replied_by_bob, started_by_bob]
    dave = make_user("dave")
    join(dave, room_id)
    assert threads(dave, room_id, include="participated")["chunk"] == []
    assert_error(bob.get(f"{V1}/rooms/{enc(room_id)}/threads", params={"include": "some"}), 400)


def test_paging(make_user: Any) -> None:
    alice = make_user("thr")
    room_id = create_room(alice)
    made = []
    for i in range(5):
        root = say(alice, room_id, f"thread {i}")
        thread_reply(alice, room_id, root, f"reply {i}")
        made.append(root)

    pages = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        body = threads(alice, room_id, **params)
        pages.append(roots(body))
        if "next_batch" not in body:
            break
        params["from"] = body["next_batch"]
    assert pages == [made[:2:-1], made[2:0:-1], made[:1]]
    # Paging with the participated filter works the same way.
    first = threads(alice, room_id, include="participated", limit=3)
    rest = threads(alice, room_id, include="participated", limit=3, **{"from": first["next_batch"]})
    assert roots(first) + roots(rest) == made[::-1]
    assert "next_batch" not in rest
    assert_error(alice.get(f"{V1}/rooms/{enc(room_id)}/threads", params={"from": "garbage"}), 400)


def test_redacted_reply_leaves_the_thread(make_user: Any) -> None:
    alice = make_user("thr")
    room_id = create_room(alice)
    root = say(alice, room_id, "root")
    kept = thread_reply(alice, room_id, root, "kept")
    gone = thread_reply(alice, room_id, root, "gone")
    assert summary(threads(alice, room_id)["chunk"][0])["count"] == 2
    redact(alice, room_id, gone)
    thread = summary(threads(alice, room_id)["chunk"][0])
    assert thread["count"] == 1
    assert thread["latest_event"]["event_id"] == kept


def test_reply_from_another_room_does_not_join_the_thread(make_user: Any) -> None:
    alice = make_user("thr")
    room_id, other = create_room(alice), create_room(alice)
    root = say(alice, room_id, "root")
    reply = thread_reply(alice, room_id, root, "real reply")
    thread_reply(alice, other, root, "reply sent to another room")
    body = threads(alice, room_id)
    assert roots(body) == [root]
    assert summary(body["chunk"][0])["count"] == 1
    assert summary(body["chunk"][0])["latest_event"]["event_id"] == reply


def test_threads_of_a_private_room_are_forbidden_to_outsiders(make_user: Any, server_name: str) -> None:
    alice, outsider = make_user("thr"), make_user("out")
    room_id = create_room(alice, preset="private_chat")
    root = say(alice, room_id, "secret")
    thread_reply(alice, room_id, root, "secret reply")
    body = assert_error(outsider.get(f"{V1}/rooms/{enc(room_id)}/threads"), 403, "M_FORBIDDEN")
    assert_matches_spec(body, "threads_list.yaml", "/rooms/{roomId}/threads", "get", 403)
    assert_error(alice.get(f"{V1}/rooms/{enc(f'!unknown:{server_name}')}/threads"), 403, "M_FORBIDDEN")
