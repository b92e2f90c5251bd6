"""POST /rooms/{roomId}/upgrade: the tombstone, the replacement room's create event and copied
state, bans, aliases and directory listing moving over, and the old room silenced, on both
engines."""

import itertools
from typing import Any

from tests.harness import Client
from tests.rooms_extra.helpers import create_room, enc, get_state, join, put_state, say
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error

_n = itertools.count(1)


def upgrade(client: Client, room_id: str, version: str) -> str:
    resp = client.post(f"rooms/{enc(room_id)}/upgrade", {"new_version": version})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "room_upgrades.yaml", "/rooms/{roomId}/upgrade", "post", 200)
    assert body["replacement_room"] != room_id
    return body["replacement_room"]  # type: ignore[no-any-return]


def state_event(client: Client, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
    resp = client.get(f"rooms/{enc(room_id)}/state/{event_type}/{enc(state_key)}", params={"format": "event"})
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_upgrade_replaces_the_room(make_user: Any, server_name: str) -> None:
    alice, bob, carol, erin = make_user("up"), make_user("bob"), make_user("carol"), make_user("erin")
    localpart = f"upgraded{next(_n)}"
    old = create_room(alice, preset="public_chat", visibility="public", name="Before", topic="The topic",
                      room_alias_name=localpart, room_version="10")
    alias = f"#{localpart}:{server_name}"
    alt = f"#{localpart}-alt:{server_name}"
    assert alice.put(f"directory/room/{enc(alt)}", {"room_id": old}).status_code == 200
    put_state(alice, old, "m.room.canonical_alias", {"alias": alias, "alt_aliases": [alt]})
    put_state(alice, old, "m.room.history_visibility", {"history_visibility": "world_readable"})
    put_state(alice, old, "m.room.guest_access", {"guest_access": "can_join"})
    put_state(alice, old, "m.room.avatar", {"url": "mxc://test.local/pic"})
    join(bob, old)
    join(carol, old)
    join(erin, old)
    levels = get_state(alice, old, "m.room.power_levels")
    assert levels is not None
    levels["users"][bob.user_id] = 50
    levels["events"]["org.example.custom"] = 75
    put_state(alice, old, "m.room.power_levels", levels)
    assert alice.post(f"rooms/{enc(old)}/ban", {"user_id": carol.user_id, "reason": "spam"}).status_code == 200
    say(bob, old, "hello before the upgrade")

    new = upgrade(alice, old, "11")

    # The old room points at the new one.
    tombstone = state_event(alice, old, "m.room.tombstone")
    assert tombstone["content"]["replacement_room"] == new
    assert isinstance(tombstone["content"]["body"], str)
    assert tombstone["sender"] == alice.user_id

    # The new room names its predecessor and version.
    create = state_event(alice, new, "m.room.create")
    assert create["content"]["predecessor"] == {"room_id": old, "event_id": tombstone["event_id"]}
    assert create["content"]["room_version"] == "11"
    assert create["sender"] == alice.user_id
    assert get_state(alice, new, "m.room.member", alice.user_id) == {"membership": "join"}

    # State carried over.
    assert get_state(alice, new, "m.room.name") == {"name": "Before"}
    assert get_state(alice, new, "m.room.topic") == {"topic": "The topic"}
    assert get_state(alice, new, "m.room.join_rules") == {"join_rule": "public"}
    assert get_state(alice, new, "m.room.history_visibility") == {"history_visibility": "world_readable"}
    assert get_state(alice, new, "m.room.guest_access") == {"guest_access": "can_join"}
    assert get_state(alice, new, "m.room.avatar") == {"url": "mxc://test.local/pic"}
    assert get_state(alice, new, "m.room.power_levels") == levels
    assert get_state(alice, new, "m.room.member", carol.user_id) == {"membership": "ban"}

    # Aliases and the canonical alias moved.
    for name in (alias, alt):
        assert alice.get(f"directory/room/{enc(name)}").json()["room_id"] == new
    assert alice.get(f"rooms/{enc(old)}/aliases").json() == {"aliases": []}
    assert sorted(alice.get(f"rooms/{enc(new)}/aliases").json()["aliases"]) == sorted([alias, alt])
    assert get_state(alice, new, "m.room.canonical_alias") == {"alias": alias, "alt_aliases": [alt]}
    assert not get_state(alice, old, "m.room.canonical_alias")

    # The directory lists the new room instead of the old one.
    assert alice.get(f"directory/list/room/{enc(new)}").json() == {"visibility": "public"}
    assert alice.get(f"directory/list/room/{enc(old)}").json() == {"visibility": "private"}

    # Ordinary members can no longer talk or invite in the old room; everyone can join the new one.
    old_levels = get_state(alice, old, "m.room.power_levels")
    assert old_levels is not None
    assert old_levels["events_default"] >= 50 and old_levels["invite"] >= 50
    dave = make_user("dave")
    late = {"msgtype": "m.text", "body": "hi"}
    assert_error(erin.put(f"rooms/{enc(old)}/send/m.room.message/late", late), 403, "M_FORBIDDEN")
    assert_error(erin.post(f"rooms/{enc(old)}/invite", {"user_id": dave.user_id}), 403, "M_FORBIDDEN")
    # Bob, a moderator, still can.
    say(bob, old, "this room has moved")
    join(bob, new)
    say(bob, new, "hello after the upgrade")
    assert_error(carol.post(f"join/{enc(new)}", {}), 403, "M_FORBIDDEN")
    join(dave, alias)
    assert new in dave.get("joined_rooms").json()["joined_rooms"]


def test_private_room_upgrade_keeps_it_out_of_the_directory(make_user: Any) -> None:
    alice = make_user("up")
    old = create_room(alice, preset="private_chat", room_version="9")
    new = upgrade(alice, old, "10")
    assert alice.get(f"directory/list/room/{enc(new)}").json() == {"visibility": "private"}
    assert get_state(alice, new, "m.room.join_rules") == {"join_rule": "invite"}
    create = get_state(alice, new, "m.room.create")
    assert create is not None and create["room_version"] == "10" and create["creator"] == alice.user_id


def test_space_upgrade_keeps_the_type_and_children(make_user: Any) -> None:
    alice = make_user("up")
    child = create_room(alice, preset="public_chat")
    old = create_room(alice, preset="public_chat", creation_content={"type": "m.space"})
    put_state(alice, old, "m.space.child", {"via": ["test.local"]}, child)
    new = upgrade(alice, old, "11")
    create = get_state(alice, new, "m.room.create")
    assert create is not None and create["type"] == "m.space"
    assert get_state(alice, new, "m.space.child", child) == {"via": ["test.local"]}


def test_who_may_upgrade(make_user: Any, server_name: str) -> None:
    alice, bob, outsider = make_user("up"), make_user("bob"), make_user("out")
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    body = assert_error(bob.post(f"rooms/{enc(room_id)}/upgrade", {"new_version": "11"}), 403, "M_FORBIDDEN")
    assert_matches_spec(body, "room_upgrades.yaml", "/rooms/{roomId}/upgrade", "post", 403)
    assert_error(outsider.post(f"rooms/{enc(room_id)}/upgrade", {"new_version": "11"}), 403, "M_FORBIDDEN")
    assert get_state(alice, room_id, "m.room.tombstone") is None

    body = assert_error(alice.post(f"rooms/{enc(room_id)}/upgrade", {"new_version": "999"}), 400,
                        "M_UNSUPPORTED_ROOM_VERSION")
    assert_matches_spec(body, "room_upgrades.yaml", "/rooms/{roomId}/upgrade", "post", 400)
    assert_error(alice.post(f"rooms/{enc(room_id)}/upgrade", {}), 400)
    assert get_state(alice, room_id, "m.room.tombstone") is None
    assert_error(alice.post(f"rooms/{enc(f'!unknown:{server_name}')}/upgrade", {"new_version": "11"}), 404)
