"""Profiles on both engines: the default display name, the profile endpoints and their
errors, the member events a change sends into shared rooms (seen through /sync and
/members), joins carrying the profile; plus /account/3pid and /voip/turnServer without a TURN
server configured."""

from typing import Any

from tests.harness import Client
from tests.spec import assert_matches_spec
from tests.sync_a.helpers import assert_error, create_room, enc, join, sync

FIELD_PATH = "/profile/{userId}/{keyName}"


def localpart(client: Client) -> str:
    return (client.user_id or "")[1:].split(":")[0]


def set_field(client: Client, field: str, value: Any) -> None:
    resp = client.put(f"profile/{enc(client.user_id or '')}/{field}", {field: value})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "profile.yaml", FIELD_PATH, "put", 200)


def get_profile(client: Client, user_id: str) -> dict[str, Any]:
    resp = client.get(f"profile/{enc(user_id)}")
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "profile.yaml", "/profile/{userId}", "get", 200)
    return resp.json()  # type: ignore[no-any-return]


def member_content(client: Client, room_id: str, user_id: str) -> dict[str, Any]:
    resp = client.get(f"rooms/{enc(room_id)}/state/m.room.member/{enc(user_id)}")
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_new_user_displayname_defaults_to_localpart(make_user: Any, client: Client) -> None:
    alice = make_user("alice")
    # Profiles are public by default: no access token needed.
    assert get_profile(client, alice.user_id) == {"displayname": localpart(alice)}
    resp = client.get(f"profile/{enc(alice.user_id)}/displayname")
    assert resp.status_code == 200
    assert_matches_spec(resp.json(), "profile.yaml", FIELD_PATH, "get", 200)
    assert resp.json() == {"displayname": localpart(alice)}
    assert_error(client.get(f"profile/{enc(alice.user_id)}/avatar_url"), 404, "M_NOT_FOUND")


def test_unknown_users_and_bad_ids(client: Client, server_name: str) -> None:
    assert_error(client.get(f"profile/{enc(f'@nobody-here:{server_name}')}"), 404, "M_NOT_FOUND")
    assert_error(client.get(f"profile/{enc(f'@nobody-here:{server_name}')}/displayname"), 404, "M_NOT_FOUND")
    assert_error(client.get("profile/not-a-user-id"), 400, "M_INVALID_PARAM")


def test_set_displayname_and_avatar(make_user: Any) -> None:
    alice = make_user("alice")
    set_field(alice, "displayname", "  Alice Liddell ")
    set_field(alice, "avatar_url", "mxc://test.local/rabbit")
    assert get_profile(alice, alice.user_id) == {"displayname": "Alice Liddell", "avatar_url": "mxc://test.local/rabbit"}
    # The v1 prefix of the old API works as well.
    resp = alice.get(f"/_matrix/client/api/v1/profile/{enc(alice.user_id)}/avatar_url")
    assert resp.json() == {"avatar_url": "mxc://test.local/rabbit"}
    # An empty value removes the field.
    set_field(alice, "avatar_url", "")
    assert get_profile(alice, alice.user_id) == {"displayname": "Alice Liddell"}


def test_profile_changes_are_validated_and_private(make_user: Any) -> None:
    alice, eve = make_user("alice"), make_user("eve")
    mine = f"profile/{enc(alice.user_id)}"
    assert_error(eve.put(f"{mine}/displayname", {"displayname": "Not Alice"}), 403, "M_FORBIDDEN")
    assert_error(eve.put(f"{mine}/avatar_url", {"avatar_url": "mxc://x/y"}), 403, "M_FORBIDDEN")
    assert_error(Client(alice.base_url).put(f"{mine}/displayname", {"displayname": "x"}), 401, "M_MISSING_TOKEN")
    assert_error(alice.put(f"{mine}/displayname", {"displayname": "x" * 257}), 400, "M_INVALID_PARAM")
    assert_error(alice.put(f"{mine}/displayname", {"displayname": 5}), 400, "M_INVALID_PARAM")
    assert_error(alice.put(f"{mine}/avatar_url", {"avatar_url": None}), 400, "M_INVALID_PARAM")
    assert_error(alice.put(f"{mine}/avatar_url", {"avatar_url": ["mxc://x/y"]}), 400, "M_INVALID_PARAM")
    assert_error(alice.put(f"{mine}/displayname", {}), 400, "M_MISSING_PARAM")
    assert_error(alice.put(f"{mine}/displayname", [1]), 400, "M_BAD_JSON")
    set_field(alice, "displayname", "x" * 256)
    assert get_profile(alice, alice.user_id)["displayname"] == "x" * 256


def test_joins_carry_the_profile(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    set_field(alice, "avatar_url", "mxc://test.local/a")
    room = create_room(alice, preset="public_chat")
    assert member_content(alice, room, alice.user_id) == {
        "membership": "join", "displayname": localpart(alice), "avatar_url": "mxc://test.local/a",
    }
    join(bob, room)
    assert member_content(alice, room, bob.user_id) == {"membership": "join", "displayname": localpart(bob)}


def test_profile_change_updates_member_events_in_joined_rooms(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = create_room(alice, preset="public_chat")
    join(bob, shared)
    left = create_room(alice, preset="public_chat")
    join(bob, left)
    assert bob.post(f"rooms/{enc(left)}/leave", {}).status_code == 200
    token = sync(alice)["next_batch"]

    set_field(bob, "displayname", "Bobby Tables")
    set_field(bob, "avatar_url", "mxc://test.local/b")

    body = sync(alice, since=token)
    timeline = body["rooms"]["join"][shared]["timeline"]["events"]
    changes = [e for e in timeline if e["type"] == "m.room.member" and e["state_key"] == bob.user_id]
    assert [e["content"] for e in changes] == [
        {"membership": "join", "displayname": "Bobby Tables"},
        {"membership": "join", "displayname": "Bobby Tables", "avatar_url": "mxc://test.local/b"},
    ]
    assert changes[0]["unsigned"]["prev_content"]["displayname"] == localpart(bob)
    # Bob left the other room: nothing is sent there.
    assert left not in body["rooms"]["join"]
    members = alice.get(f"rooms/{enc(shared)}/members").json()["chunk"]
    bob_member = next(e for e in members if e["state_key"] == bob.user_id)
    assert bob_member["content"] == {"membership": "join", "displayname": "Bobby Tables", "avatar_url": "mxc://test.local/b"}
    assert member_content(alice, left, bob.user_id)["membership"] == "leave"
    joined = alice.get(f"rooms/{enc(shared)}/joined_members").json()["joined"]
    assert joined[bob.user_id] == {"display_name": "Bobby Tables", "avatar_url": "mxc://test.local/b"}


def test_threepids_are_empty(make_user: Any) -> None:
    alice = make_user("alice")
    resp = alice.get("account/3pid")
    assert resp.status_code == 200
    assert_matches_spec(resp.json(), "administrative_contact.yaml", "/account/3pid", "get", 200)
    assert resp.json() == {"threepids": []}
    assert_error(Client(alice.base_url).get("account/3pid"), 401, "M_MISSING_TOKEN")


def test_turn_server_without_configuration(make_user: Any) -> None:
    alice = make_user("alice")
    resp = alice.get("voip/turnServer")
    assert resp.status_code == 200
    assert resp.json() == {}
    assert_error(Client(alice.base_url).get("voip/turnServer"), 401, "M_MISSING_TOKEN")
