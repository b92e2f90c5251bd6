"""Account data and room tags on both engines: round trips, privacy, the types the server
controls, and their arrival through /sync (initial, incremental with only the changes, rooms
joined since the token, filters, long-polling)."""

from typing import Any

from tests.harness import Client
from tests.matrix_helpers import long_poll
from tests.spec import assert_matches_spec
from tests.sync_a.helpers import (
    assert_error,
    create_room,
    enc,
    global_account_data,
    join,
    room_account_data,
    sync,
)

API = "account-data.yaml"
GLOBAL_PATH = "/user/{userId}/account_data/{type}"
ROOM_PATH = "/user/{userId}/rooms/{roomId}/account_data/{type}"


def put_global(client: Client, data_type: str, content: dict[str, Any]) -> None:
    resp = client.put(f"user/{enc(client.user_id or '')}/account_data/{enc(data_type)}", content)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), API, GLOBAL_PATH, "put", 200)


def put_room(client: Client, room_id: str, data_type: str, content: dict[str, Any]) -> None:
    resp = client.put(f"user/{enc(client.user_id or '')}/rooms/{enc(room_id)}/account_data/{enc(data_type)}", content)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), API, ROOM_PATH, "put", 200)


def tag_path(client: Client, room_id: str, tag: str | None = None) -> str:
    path = f"user/{enc(client.user_id or '')}/rooms/{enc(room_id)}/tags"
    return path if tag is None else f"{path}/{enc(tag)}"


def get_tags(client: Client, room_id: str) -> dict[str, Any]:
    resp = client.get(tag_path(client, room_id))
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "tags.yaml", "/user/{userId}/rooms/{roomId}/tags", "get", 200)
    return resp.json()["tags"]  # type: ignore[no-any-return]


def test_global_account_data_round_trip(make_user: Any) -> None:
    alice = make_user("alice")
    me = enc(alice.user_id)
    assert_error(alice.get(f"user/{me}/account_data/org.example.missing"), 404, "M_NOT_FOUND")
    put_global(alice, "org.example.settings", {"theme": "dark", "n": [1, 2]})
    resp = alice.get(f"user/{me}/account_data/org.example.settings")
    assert resp.status_code == 200
    assert_matches_spec(resp.json(), API, GLOBAL_PATH, "get", 200)
    assert resp.json() == {"theme": "dark", "n": [1, 2]}
    put_global(alice, "org.example.settings", {"theme": "light"})
    assert alice.get(f"user/{me}/account_data/org.example.settings").json() == {"theme": "light"}


def test_room_account_data_round_trip(make_user: Any) -> None:
    alice = make_user("alice")
    room = create_room(alice)
    path = f"user/{enc(alice.user_id)}/rooms/{enc(room)}/account_data/org.example.note"
    assert_error(alice.get(path), 404, "M_NOT_FOUND")
    put_room(alice, room, "org.example.note", {"text": "remember"})
    resp = alice.get(path)
    assert resp.status_code == 200
    assert_matches_spec(resp.json(), API, ROOM_PATH, "get", 200)
    assert resp.json() == {"text": "remember"}
    # Room and global account data of the same type are separate.
    assert_error(alice.get(f"user/{enc(alice.user_id)}/account_data/org.example.note"), 404, "M_NOT_FOUND")


def test_account_data_of_others_is_private(make_user: Any) -> None:
    alice, eve = make_user("alice"), make_user("eve")
    room = create_room(alice)
    put_global(alice, "org.example.secret", {"pin": 1234})
    put_room(alice, room, "org.example.secret", {"pin": 5678})
    theirs = enc(alice.user_id)
    assert_error(eve.get(f"user/{theirs}/account_data/org.example.secret"), 403, "M_FORBIDDEN")
    assert_error(eve.put(f"user/{theirs}/account_data/org.example.secret", {"pin": 0}), 403, "M_FORBIDDEN")
    room_path = f"user/{theirs}/rooms/{enc(room)}/account_data/org.example.secret"
    assert_error(eve.get(room_path), 403, "M_FORBIDDEN")
    assert_error(eve.put(room_path, {"pin": 0}), 403, "M_FORBIDDEN")
    assert_error(eve.get(f"user/{theirs}/rooms/{enc(room)}/tags"), 403, "M_FORBIDDEN")
    assert_error(eve.put(f"user/{theirs}/rooms/{enc(room)}/tags/u.x", {}), 403, "M_FORBIDDEN")
    assert_error(eve.delete(f"user/{theirs}/rooms/{enc(room)}/tags/u.x"), 403, "M_FORBIDDEN")
    # Nothing changed, and eve's own namespace does not see alice's data.
    me = enc(alice.user_id)
    assert alice.get(f"user/{me}/account_data/org.example.secret").json() == {"pin": 1234}
    assert_error(eve.get(f"user/{enc(eve.user_id)}/account_data/org.example.secret"), 404, "M_NOT_FOUND")
    assert_error(Client(alice.base_url).get(f"user/{me}/account_data/org.example.secret"), 401, "M_MISSING_TOKEN")


def test_server_controlled_types_and_bad_input(make_user: Any) -> None:
    alice = make_user("alice")
    room = create_room(alice)
    me = enc(alice.user_id)
    for data_type in ("m.fully_read", "m.push_rules"):
        assert_error(alice.put(f"user/{me}/account_data/{data_type}", {"event_id": "$x"}), 405, "M_BAD_JSON")
        assert_error(alice.put(f"user/{me}/rooms/{enc(room)}/account_data/{data_type}", {"event_id": "$x"}), 405, "M_BAD_JSON")
    assert_error(alice.put(f"user/{me}/account_data/org.example.list", [1, 2]), 400, "M_BAD_JSON")
    assert_error(alice.request("PUT", f"user/{me}/account_data/org.example.x", data=b"{nope"), 400, "M_NOT_JSON")
    assert_error(alice.put(f"user/{me}/rooms/not-a-room/account_data/org.example.x", {}), 400, "M_INVALID_PARAM")
    assert_error(alice.get(f"user/{me}/rooms/not-a-room/account_data/org.example.x"), 400, "M_INVALID_PARAM")


def test_tags(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = create_room(alice)
    assert get_tags(alice, room) == {}
    resp = alice.put(tag_path(alice, room, "u.work"), {"order": 0.25})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "tags.yaml", "/user/{userId}/rooms/{roomId}/tags/{tag}", "put", 200)
    assert alice.put(tag_path(alice, room, "m.favourite"), {}).status_code == 200
    assert get_tags(alice, room) == {"u.work": {"order": 0.25}, "m.favourite": {}}
    # Tags are the room account data m.tag.
    tag_data = alice.get(f"user/{enc(alice.user_id)}/rooms/{enc(room)}/account_data/m.tag").json()
    assert tag_data == {"tags": {"u.work": {"order": 0.25}, "m.favourite": {}}}

    resp = alice.delete(tag_path(alice, room, "u.work"))
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "tags.yaml", "/user/{userId}/rooms/{roomId}/tags/{tag}", "delete", 200)
    assert get_tags(alice, room) == {"m.favourite": {}}
    assert alice.delete(tag_path(alice, room, "u.never")).status_code == 200

    # Only rooms the user has a membership in; tags are at most 255 bytes; order is a number.
    assert_error(bob.put(tag_path(bob, room, "u.x"), {}), 403, "M_FORBIDDEN")
    assert_error(alice.put(tag_path(alice, room, "u." + "x" * 300), {}), 400, "M_INVALID_PARAM")
    assert_error(alice.put(tag_path(alice, room, "u.y"), {"order": "first"}), 400, "M_BAD_JSON")
    assert get_tags(bob, room) == {}


def test_initial_sync_carries_all_account_data(make_user: Any) -> None:
    alice = make_user("alice")
    room = create_room(alice)
    put_global(alice, "org.example.a", {"a": 1})
    put_room(alice, room, "org.example.r", {"r": 1})
    assert alice.put(tag_path(alice, room, "u.work"), {"order": 0.5}).status_code == 200
    body = sync(alice)
    assert global_account_data(body)["org.example.a"] == {"a": 1}
    assert room_account_data(body, room) == {"org.example.r": {"r": 1}, "m.tag": {"tags": {"u.work": {"order": 0.5}}}}


def test_incremental_sync_carries_only_changes(make_user: Any) -> None:
    alice = make_user("alice")
    room, quiet = create_room(alice), create_room(alice)
    put_global(alice, "org.example.old", {"v": 0})
    put_room(alice, quiet, "org.example.old", {"v": 0})
    token = sync(alice)["next_batch"]

    put_global(alice, "org.example.new", {"v": 1})
    assert alice.put(tag_path(alice, room, "u.later"), {}).status_code == 200
    body = sync(alice, since=token)
    assert global_account_data(body) == {"org.example.new": {"v": 1}}
    assert room_account_data(body, room) == {"m.tag": {"tags": {"u.later": {}}}}
    # The room had no new events: it is present only for its account data.
    assert body["rooms"]["join"][room]["timeline"]["events"] == []
    assert quiet not in body["rooms"]["join"]

    # Nothing changed since: nothing is repeated.
    again = sync(alice, since=body["next_batch"])
    assert again["account_data"]["events"] == []
    assert again["rooms"]["join"] == {}
    assert again["next_batch"] == body["next_batch"]

    # A removed tag arrives as the new m.tag content.
    assert alice.delete(tag_path(alice, room, "u.later")).status_code == 200
    after_delete = sync(alice, since=again["next_batch"])
    assert room_account_data(after_delete, room) == {"m.tag": {"tags": {}}}


def test_newly_joined_room_brings_its_account_data(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = create_room(alice, preset="public_chat")
    # Account data of a room bob is not (yet) in stays private to bob until he joins.
    put_room(bob, room, "org.example.prejoin", {"x": 1})
    token = sync(bob)["next_batch"]
    assert room not in sync(bob)["rooms"]["join"]
    join(bob, room)
    body = sync(bob, since=token)
    assert room_account_data(body, room) == {"org.example.prejoin": {"x": 1}}


def test_sync_filter_on_account_data_types(make_user: Any) -> None:
    alice = make_user("alice")
    room = create_room(alice)
    put_global(alice, "org.example.keep", {"k": 1})
    put_global(alice, "org.example.drop", {"d": 1})
    put_room(alice, room, "org.example.keep", {"k": 2})
    put_room(alice, room, "org.example.drop", {"d": 2})
    sync_filter = {
        "account_data": {"not_types": ["org.example.drop"]},
        "room": {"account_data": {"types": ["org.example.k*"]}},
    }
    body = sync(alice, filter=sync_filter)
    assert "org.example.drop" not in global_account_data(body)
    assert global_account_data(body)["org.example.keep"] == {"k": 1}
    assert room_account_data(body, room) == {"org.example.keep": {"k": 2}}
    # A room excluded by the room filter gets no account data either.
    body = sync(alice, filter={"room": {"not_rooms": [room]}})
    assert room not in body["rooms"]["join"]


def test_account_data_wakes_a_long_poll(make_user: Any) -> None:
    alice = make_user("alice")
    token = sync(alice)["next_batch"]
    body, seconds = long_poll(alice, token, lambda: put_global(alice, "org.example.ping", {"at": 1}))
    assert global_account_data(body) == {"org.example.ping": {"at": 1}}
    assert seconds < 5, seconds


def test_other_users_account_data_does_not_reach_my_sync(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    token = sync(bob)["next_batch"]
    put_global(alice, "org.example.mine", {"v": 1})
    put_room(alice, room, "org.example.mine", {"v": 1})
    body = sync(bob, since=token, timeout=300)
    assert body["account_data"]["events"] == []
    assert room not in body["rooms"]["join"]
