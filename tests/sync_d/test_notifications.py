"""Push rule evaluation seen from clients: unread counts in `/sync` (per room and per thread)
and `/notifications`, on both engines."""

import itertools
import threading
import time
from typing import Any

from tests.harness import Client
from tests.spec import assert_matches_spec

_txn = itertools.count()
THREADED = '{"room": {"timeline": {"unread_thread_notifications": true}}}'


def sync(client: Client, **params: Any) -> dict[str, Any]:
    resp = client.get("sync", params=params)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "sync.yaml", "/sync", "get", 200)
    return resp.json()  # type: ignore[no-any-return]


def send(client: Client, room: str, body: str, **content: Any) -> str:
    resp = client.put(f"rooms/{room}/send/m.room.message/t{next(_txn)}", {"msgtype": "m.text", "body": body, **content})
    assert resp.status_code == 200, resp.text
    return resp.json()["event_id"]  # type: ignore[no-any-return]


def counts(body: dict[str, Any], room: str) -> dict[str, int]:
    return body["rooms"]["join"][room]["unread_notifications"]  # type: ignore[no-any-return]


def shared_room(owner: Client, *others: Client) -> str:
    room = owner.post("createRoom", {"preset": "public_chat"}).json()["room_id"]
    for other in others:
        assert other.post(f"join/{room}", {}).status_code == 200
    return room


def localpart(client: Client) -> str:
    return client.user_id[1:].split(":")[0]  # type: ignore[index]


def notifications(client: Client, **params: Any) -> dict[str, Any]:
    resp = client.get("notifications", params=params)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "notifications.yaml", "/notifications", "get", 200)
    return resp.json()  # type: ignore[no-any-return]


def send_read_receipt(client: Client, room: str, event_id: str, receipt_type: str = "m.read") -> None:
    resp = client.post(f"rooms/{room}/receipt/{receipt_type}/{event_id}", {})
    assert resp.status_code == 200, resp.text


def test_messages_from_others_count_and_own_never(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = shared_room(alice, bob, carol)
    start = sync(bob)
    assert counts(start, room) == {"notification_count": 0, "highlight_count": 0}

    send(alice, room, "hello everyone")
    send(alice, room, "anyone there?")
    send(bob, room, "me!")
    body = sync(bob, since=start["next_batch"])
    assert counts(body, room) == {"notification_count": 2, "highlight_count": 0}
    assert counts(sync(alice), room) == {"notification_count": 1, "highlight_count": 0}
    # Notices and member events do not notify.
    alice.put(f"rooms/{room}/send/m.room.message/notice", {"msgtype": "m.notice", "body": "bot says hi"})
    assert counts(sync(carol), room) == {"notification_count": 3, "highlight_count": 0}


def test_mentions_highlight(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = shared_room(alice, bob, carol)
    send(alice, room, "ping", **{"m.mentions": {"user_ids": [bob.user_id]}})
    assert counts(sync(bob), room) == {"notification_count": 1, "highlight_count": 1}
    assert counts(sync(carol), room) == {"notification_count": 1, "highlight_count": 0}

    send(alice, room, f"hey {localpart(bob)}, lunch?")
    assert counts(sync(bob), room) == {"notification_count": 2, "highlight_count": 2}

    resp = bob.put(f"rooms/{room}/state/m.room.member/{bob.user_id}", {"membership": "join", "displayname": "Bobby Tables"})
    assert resp.status_code == 200, resp.text
    send(alice, room, "where is bobby tables?")
    assert counts(sync(bob), room) == {"notification_count": 3, "highlight_count": 3}
    # With m.mentions present the legacy body rules are off: naming bob is not a mention.
    send(alice, room, f"{localpart(bob)} and Bobby Tables", **{"m.mentions": {}})
    assert counts(sync(bob), room) == {"notification_count": 4, "highlight_count": 3}
    # @room from a sender allowed to notify the room highlights everyone.
    send(alice, room, "hear ye", **{"m.mentions": {"room": True}})
    assert counts(sync(carol), room) == {"notification_count": 5, "highlight_count": 1}
    send(bob, room, "me too", **{"m.mentions": {"room": True}})  # bob's power level is too low
    assert counts(sync(carol), room) == {"notification_count": 6, "highlight_count": 1}


def test_disabled_rules_and_own_rules_change_counts(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = shared_room(alice, bob, carol)
    send(alice, room, "one")
    assert bob.put("pushrules/global/underride/.m.rule.message/enabled", {"enabled": False}).status_code == 200
    send(alice, room, "two")
    assert counts(sync(bob), room)["notification_count"] == 1
    # A room rule with no actions silences the room; a sender rule can make a sender highlight.
    assert bob.put("pushrules/global/underride/.m.rule.message/enabled", {"enabled": True}).status_code == 200
    assert bob.put(f"pushrules/global/sender/{alice.user_id}", {"actions": ["notify", {"set_tweak": "highlight"}]}).status_code == 200
    send(alice, room, "three")
    assert counts(sync(bob), room) == {"notification_count": 2, "highlight_count": 1}
    assert bob.put(f"pushrules/global/room/{room}", {"actions": []}).status_code == 200
    send(alice, room, "four")
    assert counts(sync(bob), room) == {"notification_count": 2, "highlight_count": 1}
    assert carol.put("pushrules/global/override/.m.rule.master/enabled", {"enabled": True}).status_code == 200
    send(alice, room, "five")
    assert counts(sync(carol), room)["notification_count"] == 4


def test_count_arrives_with_the_event_on_long_poll(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = shared_room(alice, bob, carol)
    token = sync(bob)["next_batch"]
    result: dict[str, Any] = {}

    def poll() -> None:
        result["body"] = sync(bob, since=token, timeout=20000)

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.3)
    send(alice, room, "wake up")
    thread.join(30)
    body = result["body"]
    assert [e["content"]["body"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == ["wake up"]
    assert counts(body, room) == {"notification_count": 1, "highlight_count": 0}


def test_thread_counts(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = shared_room(alice, bob, carol)
    root = send(alice, room, "thread root")
    thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    reply = send(alice, room, "in thread", **thread)
    send(alice, room, f"{localpart(bob)}: also in thread", **thread)
    reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": reply, "key": "x"}}
    # An event relating to a threaded reply belongs to the thread too; edits and reactions
    # do not notify.
    send(alice, room, "see above", **{"m.relates_to": {"rel_type": "m.reference", "event_id": reply}})
    assert alice.put(f"rooms/{room}/send/m.room.message/edit", {
        "msgtype": "m.text", "body": "* edited", "m.new_content": {"msgtype": "m.text", "body": "edited"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": reply},
    }).status_code == 200
    assert alice.put(f"rooms/{room}/send/m.reaction/r1", reaction).status_code == 200

    plain = sync(bob)
    assert counts(plain, room) == {"notification_count": 4, "highlight_count": 1}
    assert "unread_thread_notifications" not in plain["rooms"]["join"][room]
    threaded = sync(bob, filter=THREADED)
    assert counts(threaded, room) == {"notification_count": 1, "highlight_count": 0}
    assert threaded["rooms"]["join"][room]["unread_thread_notifications"] == {
        root: {"notification_count": 3, "highlight_count": 1}
    }


def test_notifications_list_paging_and_highlights(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = shared_room(alice, bob, carol)
    first = send(alice, room, "first")
    second = send(alice, room, "second", **{"m.mentions": {"user_ids": [bob.user_id]}})
    third = send(alice, room, "third")
    mine = send(bob, room, "mine")

    body = notifications(bob)
    assert [n["event"]["event_id"] for n in body["notifications"]] == [third, second, first]
    assert "next_token" not in body
    top = body["notifications"][0]
    assert top["room_id"] == room and top["read"] is False and top["actions"] == ["notify"]
    assert top["event"]["content"]["body"] == "third" and isinstance(top["ts"], int)
    assert body["notifications"][1]["actions"] == [
        "notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"},
    ]

    page1 = notifications(bob, limit=2)
    assert [n["event"]["event_id"] for n in page1["notifications"]] == [third, second]
    page2 = notifications(bob, limit=2, **{"from": page1["next_token"]})
    assert [n["event"]["event_id"] for n in page2["notifications"]] == [first]
    assert "next_token" not in page2

    highlights = notifications(bob, only="highlight")
    assert [n["event"]["event_id"] for n in highlights["notifications"]] == [second]
    assert [n["event"]["event_id"] for n in notifications(alice)["notifications"]] == [mine]
    assert [n["event"]["event_id"] for n in notifications(carol)["notifications"]] == [mine, third, second, first]

    for params in ({"from": "abc"}, {"from": "²"}, {"from": "9" * 30}, {"limit": "-1"}, {"limit": "many"}):
        resp = bob.get("notifications", params=params)
        assert resp.status_code == 400 and resp.json()["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON"), resp.text


def test_invites_notify_the_invitee(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = alice.post("createRoom", {"preset": "private_chat", "invite": [bob.user_id]}).json()["room_id"]
    listed = notifications(bob)["notifications"]
    assert len(listed) == 1
    assert listed[0]["room_id"] == room and listed[0]["event"]["type"] == "m.room.member"
    assert listed[0]["event"]["state_key"] == bob.user_id
    # Joining does not turn the invite into an unread message.
    assert bob.post(f"join/{room}", {}).status_code == 200
    assert counts(sync(bob), room) == {"notification_count": 0, "highlight_count": 0}
    # Two members: messages use the one-to-one rule (with a sound).
    send(alice, room, "psst")
    assert counts(sync(bob), room)["notification_count"] == 1
    assert notifications(bob)["notifications"][0]["actions"] == ["notify", {"set_tweak": "sound", "value": "default"}]


def test_read_receipts_clear_counts(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = shared_room(alice, bob, carol)
    send(alice, room, "one")
    last = send(alice, room, "two", **{"m.mentions": {"user_ids": [bob.user_id]}})
    before = sync(bob)
    assert counts(before, room) == {"notification_count": 2, "highlight_count": 1}
    result: dict[str, Any] = {}

    def poll() -> None:
        result["body"] = sync(bob, since=before["next_batch"], timeout=20000)

    # The receipt wakes a waiting sync, and the room comes back with its counts at zero
    # although it has no new events.
    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.3)
    send_read_receipt(bob, room, last)
    thread.join(30)
    after = result["body"]
    assert after["rooms"]["join"][room]["timeline"]["events"] == []
    assert counts(after, room) == {"notification_count": 0, "highlight_count": 0}
    assert all(n["read"] for n in notifications(bob)["notifications"])

    three = send(alice, room, "three")
    four = send(alice, room, "four")
    assert counts(sync(bob), room) == {"notification_count": 2, "highlight_count": 0}
    listed = notifications(bob)["notifications"]
    assert [(n["event"]["event_id"], n["read"]) for n in listed[:3]] == [(four, False), (three, False), (last, True)]
    # A private read receipt counts as reading too.
    send_read_receipt(bob, room, three, "m.read.private")
    assert counts(sync(bob), room) == {"notification_count": 1, "highlight_count": 0}
    # Carol's receipt changes nothing for bob.
    send_read_receipt(carol, room, four)
    assert counts(sync(bob), room) == {"notification_count": 1, "highlight_count": 0}
    assert counts(sync(carol), room) == {"notification_count": 0, "highlight_count": 0}
