"""Room previews: GET /_matrix/client/v1/room_summary/{roomIdOrAlias} and the unstable
im.nheko.summary paths, with and without a token, on both engines."""

import itertools
from typing import Any

from tests.harness import Client
from tests.rooms_extra.helpers import create_room, enc, invite, join, put_state
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error

STABLE = "/_matrix/client/v1/room_summary/"
UNSTABLE = "/_matrix/client/unstable/im.nheko.summary"
_n = itertools.count(1)


def summary(client: Client, room: str, auth: bool = True) -> dict[str, Any]:
    resp = client.get(STABLE + enc(room), auth=auth)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "room_summary.yaml", "/room_summary/{roomIdOrAlias}", "get", 200)
    return body  # type: ignore[no-any-return]


def test_public_room_without_a_token(make_user: Any, server_name: str) -> None:
    alice, bob = make_user("sum"), make_user("bob")
    localpart = f"summary{next(_n)}"
    room_id = create_room(alice, preset="public_chat", name="Summary room", topic="What it is about",
                          room_alias_name=localpart, room_version="10")
    put_state(alice, room_id, "m.room.avatar", {"url": "mxc://test.local/avatar"})
    put_state(alice, room_id, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"})
    join(bob, room_id)

    body = summary(Client(alice.base_url), room_id, auth=False)
    assert body == {
        "room_id": room_id, "name": "Summary room", "topic": "What it is about",
        "canonical_alias": f"#{localpart}:{server_name}", "avatar_url": "mxc://test.local/avatar",
        "num_joined_members": 2, "world_readable": False, "guest_can_join": False, "join_rule": "public",
        "room_version": "10", "encryption": "m.megolm.v1.aes-sha2",
    }
    # The alias works as well as the id, on the stable and the unstable path.
    assert summary(Client(alice.base_url), f"#{localpart}:{server_name}", auth=False) == body
    resp = Client(alice.base_url).get(f"{UNSTABLE}/rooms/{enc(room_id)}/summary", auth=False)
    assert resp.status_code == 200, resp.text
    assert resp.json() == body


def test_membership_when_authenticated(make_user: Any) -> None:
    alice, bob, carol = make_user("sum"), make_user("bob"), make_user("carol")
    room_id = create_room(alice, preset="public_chat", creation_content={"type": "m.space"})
    assert summary(alice, room_id)["membership"] == "join"
    assert summary(alice, room_id)["room_type"] == "m.space"
    assert summary(bob, room_id)["membership"] == "leave"
    invite(alice, room_id, carol.user_id)
    assert summary(carol, room_id)["membership"] == "invite"
    assert alice.post(f"rooms/{enc(room_id)}/ban", {"user_id": carol.user_id}).status_code == 200
    assert summary(carol, room_id)["membership"] == "ban"
    assert "membership" not in summary(Client(alice.base_url), room_id, auth=False)


def test_private_room(make_user: Any) -> None:
    alice, bob = make_user("sum"), make_user("bob")
    room_id = create_room(alice, preset="private_chat", name="Secret")
    for client, auth in ((bob, True), (Client(alice.base_url), False)):
        body = assert_error(client.get(STABLE + enc(room_id), auth=auth), 404, "M_NOT_FOUND")
        assert_matches_spec(body, "room_summary.yaml", "/room_summary/{roomIdOrAlias}", "get", 404)
    # Invited, Bob can preview it.
    invite(alice, room_id, bob.user_id)
    body = summary(bob, room_id)
    assert body["name"] == "Secret" and body["membership"] == "invite" and body["join_rule"] == "invite"
    # A world-readable room can be previewed by anyone.
    put_state(alice, room_id, "m.room.history_visibility", {"history_visibility": "world_readable"})
    assert summary(Client(alice.base_url), room_id, auth=False)["world_readable"] is True


def test_unknown_rooms_and_aliases(make_user: Any, server_name: str) -> None:
    alice = make_user("sum")
    assert_error(alice.get(STABLE + enc(f"!unknown:{server_name}")), 404, "M_NOT_FOUND")
    assert_error(alice.get(STABLE + enc(f"#unknown:{server_name}")), 404, "M_NOT_FOUND")
    assert_error(alice.get(STABLE + "not-a-room"), 400)
    assert_error(alice.get(STABLE + enc(f"!x:{server_name}"), headers={"Authorization": "Bearer nope"}, auth=False), 401,
                 "M_UNKNOWN_TOKEN")


def test_restricted_room(make_user: Any) -> None:
    alice, bob, carol = make_user("sum"), make_user("bob"), make_user("carol")
    space = create_room(alice, preset="public_chat", creation_content={"type": "m.space"})
    room_id = create_room(alice, preset="private_chat", name="Members of the space")
    put_state(alice, room_id, "m.room.join_rules",
              {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]})
    join(bob, space)
    body = summary(bob, room_id)
    assert body["join_rule"] == "restricted"
    assert body["allowed_room_ids"] == [space]
    assert body["membership"] == "leave"
    assert_error(carol.get(STABLE + enc(room_id)), 404, "M_NOT_FOUND")
