"""Membership end to end: join (by id, by alias), invite, leave, kick, ban/unban, forget,
knock, unknown rooms and /joined_rooms."""

import pytest

from tests.harness import Client
from tests.rooms.conftest import UserFactory
from tests.rooms.helpers import (
    create_room,
    get_state,
    invite,
    join,
    leave,
    members,
    path_id,
    public_room,
    send,
    set_power_levels,
    timeline,
)
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error

UNKNOWN_ROOM = "!doesnotexist:{server_name}"


def joined_rooms(client: Client) -> list[str]:
    resp = client.get("joined_rooms")
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "list_joined_rooms.yaml", "/joined_rooms", "get", 200)
    return resp.json()["joined_rooms"]  # type: ignore[no-any-return]


def membership_of(client: Client, room_id: str, user_id: str) -> dict[str, object]:
    """The content of `user_id`'s member event, read by `client`."""
    return get_state(client, room_id, "m.room.member", user_id)


# --- join -----------------------------------------------------------------------------------


def test_join_public_room_by_id(alice: Client, bob: Client, carol: Client) -> None:
    room_id = public_room(alice)
    resp = bob.post(f"rooms/{path_id(room_id)}/join", {"reason": "hi"})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "joining.yaml", "/rooms/{roomId}/join", "post", 200)
    assert resp.json() == {"room_id": room_id}

    resp = carol.post(f"join/{path_id(room_id)}", {})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "joining.yaml", "/join/{roomIdOrAlias}", "post", 200)
    assert resp.json() == {"room_id": room_id}

    assert members(alice, room_id) == {alice.user_id: "join", bob.user_id: "join", carol.user_id: "join"}
    assert membership_of(alice, room_id, bob.user_id)["reason"] == "hi"
    # The joiners can talk in the room.
    send(bob, room_id, "bob here")
    assert any(e["content"].get("body") == "bob here" for e in timeline(carol, room_id))


def test_join_by_alias(alice: Client, bob: Client, server_name: str) -> None:
    localpart = "joinme_" + alice.user_id[1:].split(":")[0]
    room_id = public_room(alice, room_alias_name=localpart)
    resp = bob.post(f"join/{path_id(f'#{localpart}:{server_name}')}", {})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "joining.yaml", "/join/{roomIdOrAlias}", "post", 200)
    assert resp.json() == {"room_id": room_id}
    assert members(alice, room_id)[bob.user_id] == "join"


def test_join_twice_is_harmless(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    join(bob, room_id)
    assert members(alice, room_id) == {alice.user_id: "join", bob.user_id: "join"}


def test_join_invite_only_room_needs_invite(alice: Client, bob: Client) -> None:
    room_id = create_room(alice, preset="private_chat")
    assert_error(bob.post(f"rooms/{path_id(room_id)}/join", {}), 403, "M_FORBIDDEN")
    assert_error(bob.post(f"join/{path_id(room_id)}", {}), 403, "M_FORBIDDEN")
    assert bob.user_id not in members(alice, room_id)


def test_invite_then_join(alice: Client, bob: Client) -> None:
    room_id = create_room(alice, preset="private_chat")
    invite(alice, room_id, bob.user_id)
    assert members(alice, room_id)[bob.user_id] == "invite"
    assert membership_of(alice, room_id, bob.user_id)["membership"] == "invite"
    assert room_id not in joined_rooms(bob)  # invited is not joined
    join(bob, room_id)
    assert members(alice, room_id)[bob.user_id] == "join"
    assert room_id in joined_rooms(bob)


def test_invite_with_reason(alice: Client, bob: Client) -> None:
    room_id = create_room(alice)
    resp = alice.post(f"rooms/{path_id(room_id)}/invite", {"user_id": bob.user_id, "reason": "come"})
    assert resp.status_code == 200, resp.text
    assert membership_of(alice, room_id, bob.user_id) == {"membership": "invite", "reason": "come"}


def test_invite_needs_invite_power_level(alice: Client, bob: Client, carol: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    # bob has 0; inviting needs 50.
    assert_error(bob.post(f"rooms/{path_id(room_id)}/invite", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")
    assert carol.user_id not in members(alice, room_id)
    set_power_levels(alice, room_id, invite=0)
    invite(bob, room_id, carol.user_id)
    assert members(alice, room_id)[carol.user_id] == "invite"


def test_invite_by_non_member_is_forbidden(alice: Client, bob: Client, carol: Client) -> None:
    room_id = public_room(alice)
    assert_error(bob.post(f"rooms/{path_id(room_id)}/invite", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")


def test_invite_of_joined_user_is_forbidden(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    assert_error(alice.post(f"rooms/{path_id(room_id)}/invite", {"user_id": bob.user_id}), 403, "M_FORBIDDEN")
    assert members(alice, room_id)[bob.user_id] == "join"


def test_invite_bad_user_id(alice: Client) -> None:
    room_id = create_room(alice)
    resp = alice.post(f"rooms/{path_id(room_id)}/invite", {"user_id": "bob"})
    assert resp.status_code == 400, resp.text
    assert_error(alice.post(f"rooms/{path_id(room_id)}/invite", {}), 400)


# --- leave, kick, ban -----------------------------------------------------------------------------


def test_leave(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    leave(bob, room_id)
    assert members(alice, room_id)[bob.user_id] == "leave"
    assert room_id not in joined_rooms(bob)
    assert_error(bob.put(f"rooms/{path_id(room_id)}/send/m.room.message/after-leave", {"body": "x"}), 403, "M_FORBIDDEN")
    # Leaving again when not in the room is refused.
    assert_error(bob.post(f"rooms/{path_id(room_id)}/leave", {}), 403, "M_FORBIDDEN")
    # A public room can be joined again.
    join(bob, room_id)
    assert members(alice, room_id)[bob.user_id] == "join"


def test_reject_invite_by_leaving(alice: Client, bob: Client) -> None:
    room_id = create_room(alice)
    invite(alice, room_id, bob.user_id)
    leave(bob, room_id)
    assert members(alice, room_id)[bob.user_id] == "leave"
    assert_error(bob.post(f"rooms/{path_id(room_id)}/join", {}), 403, "M_FORBIDDEN")


def test_kick(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    resp = alice.post(f"rooms/{path_id(room_id)}/kick", {"user_id": bob.user_id, "reason": "spam"})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "kicking.yaml", "/rooms/{roomId}/kick", "post", 200)
    assert members(alice, room_id)[bob.user_id] == "leave"
    # The kicked user sees their own membership as a leave with the reason, sent by the kicker.
    assert membership_of(bob, room_id, bob.user_id) == {"membership": "leave", "reason": "spam"}
    resp = bob.get(f"rooms/{path_id(room_id)}/state/m.room.member/{path_id(bob.user_id)}", params={"format": "event"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["sender"] == alice.user_id
    assert room_id not in joined_rooms(bob)
    # Kicked is not banned: the room is public, bob can come back.
    join(bob, room_id)


def test_kick_needs_kick_level_and_higher_level_than_target(alice: Client, bob: Client, carol: Client,
                                                            new_user: UserFactory) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    join(carol, room_id)
    # bob at 0 cannot kick (kick level 50).
    assert_error(bob.post(f"rooms/{path_id(room_id)}/kick", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")
    # At 50, bob may kick users below him but not carol at 50 too, nor alice at 100.
    set_power_levels(alice, room_id, users={bob.user_id: 50, carol.user_id: 50})
    assert_error(bob.post(f"rooms/{path_id(room_id)}/kick", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")
    assert_error(bob.post(f"rooms/{path_id(room_id)}/kick", {"user_id": alice.user_id}), 403, "M_FORBIDDEN")
    dave = new_user("dave")
    join(dave, room_id)
    resp = bob.post(f"rooms/{path_id(room_id)}/kick", {"user_id": dave.user_id})
    assert resp.status_code == 200, resp.text
    assert members(alice, room_id) == {
        alice.user_id: "join", bob.user_id: "join", carol.user_id: "join", dave.user_id: "leave",
    }


def test_ban_and_unban(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    resp = alice.post(f"rooms/{path_id(room_id)}/ban", {"user_id": bob.user_id, "reason": "rude"})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "banning.yaml", "/rooms/{roomId}/ban", "post", 200)
    assert members(alice, room_id)[bob.user_id] == "ban"
    assert membership_of(bob, room_id, bob.user_id) == {"membership": "ban", "reason": "rude"}
    assert room_id not in joined_rooms(bob)
    # Banned: cannot join, even though the room is public.
    assert_error(bob.post(f"rooms/{path_id(room_id)}/join", {}), 403, "M_FORBIDDEN")
    assert_error(bob.post(f"join/{path_id(room_id)}", {}), 403, "M_FORBIDDEN")

    resp = alice.post(f"rooms/{path_id(room_id)}/unban", {"user_id": bob.user_id})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "banning.yaml", "/rooms/{roomId}/unban", "post", 200)
    assert members(alice, room_id)[bob.user_id] == "leave"
    join(bob, room_id)
    assert members(alice, room_id)[bob.user_id] == "join"


def test_ban_of_user_never_in_room(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    resp = alice.post(f"rooms/{path_id(room_id)}/ban", {"user_id": bob.user_id})
    assert resp.status_code == 200, resp.text
    assert_error(bob.post(f"join/{path_id(room_id)}", {}), 403, "M_FORBIDDEN")


def test_ban_and_unban_need_ban_level(alice: Client, bob: Client, carol: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    join(carol, room_id)
    assert_error(bob.post(f"rooms/{path_id(room_id)}/ban", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")
    assert members(alice, room_id)[carol.user_id] == "join"
    resp = alice.post(f"rooms/{path_id(room_id)}/ban", {"user_id": carol.user_id})
    assert resp.status_code == 200, resp.text
    assert_error(bob.post(f"rooms/{path_id(room_id)}/unban", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")
    assert members(alice, room_id)[carol.user_id] == "ban"


def test_unban_of_user_not_banned(alice: Client, bob: Client, carol: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    assert_error(alice.post(f"rooms/{path_id(room_id)}/unban", {"user_id": bob.user_id}), 403, "M_FORBIDDEN")
    assert_error(alice.post(f"rooms/{path_id(room_id)}/unban", {"user_id": carol.user_id}), 403, "M_FORBIDDEN")
    assert members(alice, room_id)[bob.user_id] == "join"


# --- forget ------------------------------------------------------------------------------------


def test_forget(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    assert_error(bob.post(f"rooms/{path_id(room_id)}/forget", {}), 400)
    leave(bob, room_id)
    resp = bob.post(f"rooms/{path_id(room_id)}/forget", {})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "leaving.yaml", "/rooms/{roomId}/forget", "post", 200)
    assert room_id not in joined_rooms(bob)
    # Forgetting is not leaving the room's history: the membership stays "leave" for others.
    assert members(alice, room_id)[bob.user_id] == "leave"


def test_forget_while_invited(alice: Client, bob: Client) -> None:
    room_id = create_room(alice)
    invite(alice, room_id, bob.user_id)
    assert_error(bob.post(f"rooms/{path_id(room_id)}/forget", {}), 400)


# --- knock -------------------------------------------------------------------------------------


def knock_room(alice: Client) -> str:
    return create_room(alice, room_version="10", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}},
    ])


def test_knock(alice: Client, bob: Client) -> None:
    room_id = knock_room(alice)
    resp = bob.post(f"knock/{path_id(room_id)}", {"reason": "let me in"})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "knocking.yaml", "/knock/{roomIdOrAlias}", "post", 200)
    assert resp.json() == {"room_id": room_id}
    assert members(alice, room_id, membership="knock") == {bob.user_id: "knock"}
    assert membership_of(alice, room_id, bob.user_id) == {"membership": "knock", "reason": "let me in"}
    # Knocking is not joining; an invite lets the knocker in.
    assert room_id not in joined_rooms(bob)
    assert_error(bob.post(f"rooms/{path_id(room_id)}/join", {}), 403, "M_FORBIDDEN")
    invite(alice, room_id, bob.user_id)
    join(bob, room_id)
    assert members(alice, room_id)[bob.user_id] == "join"


def test_knock_by_alias(alice: Client, bob: Client, server_name: str) -> None:
    localpart = "knock_" + alice.user_id[1:].split(":")[0]
    room_id = create_room(alice, room_version="10", room_alias_name=localpart, initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}},
    ])
    resp = bob.post(f"knock/{path_id(f'#{localpart}:{server_name}')}", {})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"room_id": room_id}
    assert members(alice, room_id)[bob.user_id] == "knock"


def test_knock_on_public_room_is_forbidden(alice: Client, bob: Client) -> None:
    room_id = public_room(alice, room_version="10")
    assert_error(bob.post(f"knock/{path_id(room_id)}", {}), 403, "M_FORBIDDEN")
    assert bob.user_id not in members(alice, room_id)


def test_knock_needs_room_version_7(alice: Client, bob: Client) -> None:
    room_id = create_room(alice, room_version="6", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}},
    ])
    assert_error(bob.post(f"knock/{path_id(room_id)}", {}), 403, "M_FORBIDDEN")


def test_knock_when_joined_is_forbidden(alice: Client) -> None:
    room_id = knock_room(alice)
    assert_error(alice.post(f"knock/{path_id(room_id)}", {}), 403, "M_FORBIDDEN")


# --- unknown rooms --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "rooms/{room}/join",
    "join/{room}",
    "knock/{room}",
    "join/{alias}",
    "knock/{alias}",
])
def test_unknown_room(alice: Client, path: str, server_name: str) -> None:
    room, alias = UNKNOWN_ROOM.format(server_name=server_name), f"#no-such-alias:{server_name}"
    assert_error(alice.post(path.format(room=path_id(room), alias=path_id(alias)), {}), 404, "M_NOT_FOUND")


@pytest.mark.parametrize("action", ["invite", "kick", "ban", "unban"])
def test_membership_action_in_unknown_room(alice: Client, bob: Client, action: str, server_name: str) -> None:
    room = UNKNOWN_ROOM.format(server_name=server_name)
    resp = alice.post(f"rooms/{path_id(room)}/{action}", {"user_id": bob.user_id})
    assert resp.status_code in (403, 404), resp.text
    assert_error(resp, resp.status_code, "M_NOT_FOUND" if resp.status_code == 404 else "M_FORBIDDEN")


# --- /joined_rooms --------------------------------------------------------------------------------


def test_joined_rooms(alice: Client, new_user: UserFactory) -> None:
    erin = new_user("erin")
    assert joined_rooms(erin) == []
    own = create_room(erin)
    other_public = public_room(alice)
    join(erin, other_public)
    left = public_room(alice)
    join(erin, left)
    leave(erin, left)
    invited = create_room(alice)
    invite(alice, invited, erin.user_id)
    knocked = knock_room(alice)
    resp = erin.post(f"knock/{path_id(knocked)}", {})
    assert resp.status_code == 200, resp.text
    assert sorted(joined_rooms(erin)) == sorted([own, other_public])


def test_joined_rooms_requires_auth(client: Client) -> None:
    assert_error(client.get("joined_rooms"), 401, "M_MISSING_TOKEN")
