"""Room aliases: /directory/room/{alias}, /rooms/{roomId}/aliases, m.room.canonical_alias
validation and createRoom's room_alias_name, on both engines."""

import itertools
from typing import Any

from tests.harness import ServerProcess
from tests.rooms_extra.helpers import create_room, enc, get_state, join, make_admin, put_state
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error

_n = itertools.count(1)


def _alias(name: str, server_name: str) -> str:
    return f"#{name}{next(_n)}:{server_name}"


def _put_alias(client: Any, alias: str, room_id: str) -> Any:
    return client.put(f"directory/room/{enc(alias)}", {"room_id": room_id})


def test_create_resolve_and_delete_alias(make_user: Any, server_name: str) -> None:
    alice = make_user("alias")
    room_id = create_room(alice)
    alias = _alias("lounge", server_name)

    resp = _put_alias(alice, alias, room_id)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "directory.yaml", "/directory/room/{roomAlias}", "put", 200)

    # Anyone (even without a token) can resolve it.
    for auth in (True, False):
        resp = alice.get(f"directory/room/{enc(alias)}", auth=auth)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert_matches_spec(body, "directory.yaml", "/directory/room/{roomAlias}", "get", 200)
        assert body == {"room_id": room_id, "servers": [server_name]}

    resp = alice.delete(f"directory/room/{enc(alias)}")
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "directory.yaml", "/directory/room/{roomAlias}", "delete", 200)
    assert_error(alice.get(f"directory/room/{enc(alias)}"), 404, "M_NOT_FOUND")
    assert_error(alice.delete(f"directory/room/{enc(alias)}"), 404, "M_NOT_FOUND")
    # The alias is free again.
    assert _put_alias(alice, alias, room_id).status_code == 200


def test_alias_taken_twice_is_conflict(make_user: Any, server_name: str) -> None:
    alice = make_user("alias")
    first, second = create_room(alice), create_room(alice)
    alias = _alias("taken", server_name)
    assert _put_alias(alice, alias, first).status_code == 200
    assert_error(_put_alias(alice, alias, second), 409)
    assert_error(_put_alias(alice, alias, first), 409)
    assert alice.get(f"directory/room/{enc(alias)}").json()["room_id"] == first


def test_alias_of_another_server_or_malformed_is_rejected(make_user: Any, server_name: str) -> None:
    alice = make_user("alias")
    room_id = create_room(alice)
    assert_error(_put_alias(alice, "#elsewhere:other.example", room_id), 400)
    assert_error(alice.delete(f"directory/room/{enc('#elsewhere:other.example')}"), 400)
    assert_error(_put_alias(alice, "#no-domain", room_id), 400)
    for malformed in ("#no-domain", f"no-hash:{server_name}", f"#:{server_name}"):
        body = assert_error(alice.get(f"directory/room/{enc(malformed)}"), 400, "M_INVALID_PARAM")
        assert_matches_spec(body, "directory.yaml", "/directory/room/{roomAlias}", "get", 400)
    # Unknown but well-formed: not found.
    body = assert_error(alice.get(f"directory/room/{enc(f'#unknown:{server_name}')}"), 404, "M_NOT_FOUND")
    assert_matches_spec(body, "directory.yaml", "/directory/room/{roomAlias}", "get", 404)


def test_alias_for_unknown_room(make_user: Any, server_name: str) -> None:
    alice = make_user("alias")
    resp = _put_alias(alice, _alias("ghost", server_name), f"!nosuchroom:{server_name}")
    assert resp.status_code in (400, 403, 404), resp.text
    assert_error(resp, resp.status_code)


def test_non_member_may_not_create_alias(make_user: Any, server_name: str) -> None:
    alice, mallory = make_user("alias"), make_user("mallory")
    room_id = create_room(alice, preset="public_chat")
    alias = _alias("hijack", server_name)
    assert_error(_put_alias(mallory, alias, room_id), 403, "M_FORBIDDEN")
    assert_error(alice.get(f"directory/room/{enc(alias)}"), 404, "M_NOT_FOUND")


def test_who_may_delete_an_alias(server: ServerProcess, make_user: Any, server_name: str) -> None:
    alice, bob, carol = make_user("alias"), make_user("bob"), make_user("carol")
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    join(carol, room_id)

    # Bob (a plain member) creates an alias; Carol (another plain member) may not delete it.
    bobs = _alias("bobs", server_name)
    assert _put_alias(bob, bobs, room_id).status_code == 200
    assert_error(carol.delete(f"directory/room/{enc(bobs)}"), 403, "M_FORBIDDEN")
    # Its creator may.
    assert bob.delete(f"directory/room/{enc(bobs)}").status_code == 200

    # Alice's alias: Bob may not delete it, Alice as room admin may delete Bob's.
    alices = _alias("alices", server_name)
    assert _put_alias(alice, alices, room_id).status_code == 200
    assert_error(bob.delete(f"directory/room/{enc(alices)}"), 403, "M_FORBIDDEN")
    bobs2 = _alias("bobs", server_name)
    assert _put_alias(bob, bobs2, room_id).status_code == 200
    assert alice.delete(f"directory/room/{enc(bobs2)}").status_code == 200

    # A server admin, not in the room, may delete any local alias.
    admin = make_admin(server.url, f"aliasadmin{next(_n)}")
    assert admin.delete(f"directory/room/{enc(alices)}").status_code == 200
    assert_error(alice.get(f"directory/room/{enc(alices)}"), 404, "M_NOT_FOUND")


def test_room_aliases_list(make_user: Any, server_name: str) -> None:
    alice, bob, outsider = make_user("alias"), make_user("bob"), make_user("out")
    room_id = create_room(alice, preset="private_chat")
    aliases = sorted([_alias("one", server_name), _alias("two", server_name)])
    for alias in aliases:
        assert _put_alias(alice, alias, room_id).status_code == 200
    resp = alice.get(f"rooms/{enc(room_id)}/aliases")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "directory.yaml", "/rooms/{roomId}/aliases", "get", 200)
    assert sorted(body["aliases"]) == aliases

    # Not in the (private) room: forbidden.
    body = assert_error(outsider.get(f"rooms/{enc(room_id)}/aliases"), 403, "M_FORBIDDEN")
    assert_matches_spec(body, "directory.yaml", "/rooms/{roomId}/aliases", "get", 403)

    # A room without aliases lists none.
    public = create_room(bob, preset="public_chat")
    join(alice, public)
    assert alice.get(f"rooms/{enc(public)}/aliases").json() == {"aliases": []}


def test_canonical_alias_must_exist_and_point_to_the_room(make_user: Any, server_name: str) -> None:
    alice = make_user("alias")
    room_id, other_room = create_room(alice), create_room(alice)
    missing = _alias("missing", server_name)
    elsewhere = _alias("elsewhere", server_name)
    assert _put_alias(alice, elsewhere, other_room).status_code == 200
    mine = _alias("mine", server_name)
    alt = _alias("alt", server_name)
    for alias in (mine, alt):
        assert _put_alias(alice, alias, room_id).status_code == 200

    url = f"rooms/{enc(room_id)}/state/m.room.canonical_alias/"
    assert_error(alice.put(url, {"alias": missing}), 400, "M_BAD_ALIAS")
    assert_error(alice.put(url, {"alias": elsewhere}), 400, "M_BAD_ALIAS")
    assert_error(alice.put(url, {"alias": mine, "alt_aliases": [elsewhere]}), 400, "M_BAD_ALIAS")
    assert get_state(alice, room_id, "m.room.canonical_alias") is None

    put_state(alice, room_id, "m.room.canonical_alias", {"alias": mine, "alt_aliases": [alt]})
    assert get_state(alice, room_id, "m.room.canonical_alias") == {"alias": mine, "alt_aliases": [alt]}


def test_deleting_canonical_alias_updates_the_event(make_user: Any, server_name: str) -> None:
    alice = make_user("alias")
    room_id = create_room(alice)
    main, alt, keep = _alias("main", server_name), _alias("alt", server_name), _alias("keep", server_name)
    for alias in (main, alt, keep):
        assert _put_alias(alice, alias, room_id).status_code == 200
    put_state(alice, room_id, "m.room.canonical_alias", {"alias": main, "alt_aliases": [alt, keep]})

    assert alice.delete(f"directory/room/{enc(main)}").status_code == 200
    assert get_state(alice, room_id, "m.room.canonical_alias") == {"alt_aliases": [alt, keep]}
    assert alice.delete(f"directory/room/{enc(alt)}").status_code == 200
    assert get_state(alice, room_id, "m.room.canonical_alias") == {"alt_aliases": [keep]}


def test_create_room_with_alias_name(make_user: Any, server_name: str) -> None:
    alice, bob = make_user("alias"), make_user("bob")
    localpart = f"created{next(_n)}"
    resp = alice.post("createRoom", {"room_alias_name": localpart, "preset": "public_chat"})
    assert resp.status_code == 200, resp.text
    room_id = resp.json()["room_id"]
    alias = f"#{localpart}:{server_name}"
    assert resp.json().get("room_alias", alias) == alias
    assert bob.get(f"directory/room/{enc(alias)}").json()["room_id"] == room_id
    assert get_state(alice, room_id, "m.room.canonical_alias") == {"alias": alias}
    # Joining by the alias lands in the room.
    join(bob, alias)
    assert room_id in bob.get("joined_rooms").json()["joined_rooms"]

    # The name is now taken.
    assert_error(alice.post("createRoom", {"room_alias_name": localpart}), 400, "M_ROOM_IN_USE")
