"""User directory search on both engines: who can be found (room-mates, members of public
rooms; never strangers in private rooms or deactivated users), word-prefix and
case-insensitive matching on ids and display names, limits and bad input."""

import secrets
from typing import Any

from tests.harness import Client
from tests.spec import assert_matches_spec
from tests.sync_a.helpers import assert_error, create_room, enc, join, leave


def search(client: Client, term: str, **extra: Any) -> dict[str, Any]:
    resp = client.post("user_directory/search", {"search_term": term, **extra})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "users.yaml", "/user_directory/search", "post", 200)
    return body  # type: ignore[no-any-return]


def found(client: Client, term: str) -> set[str]:
    return {r["user_id"] for r in search(client, term)["results"]}


def named(make_user: Any, displayname: str, prefix: str = "dir") -> Client:
    user = make_user(prefix)
    resp = user.put(f"profile/{enc(user.user_id)}/displayname", {"displayname": displayname})
    assert resp.status_code == 200, resp.text
    return user


def test_room_mates_are_found_and_strangers_are_not(make_user: Any) -> None:
    tag = secrets.token_hex(3)
    searcher = make_user("searcher")
    mate = named(make_user, f"Mate {tag}")
    stranger = named(make_user, f"Stranger {tag}")
    private = create_room(searcher, preset="private_chat", invite=[mate.user_id])
    join(mate, private)
    create_room(stranger, preset="private_chat")  # a room of the stranger's own
    assert found(searcher, tag) == {mate.user_id}
    # The relation is symmetric, and nobody finds the stranger.
    assert found(mate, tag) == set()  # the only other match is the stranger
    assert searcher.user_id in found(mate, searcher.user_id)
    assert found(stranger, tag) == set()

    # After leaving, the private room no longer makes them visible to each other.
    leave(mate, private)
    assert found(searcher, tag) == set()


def test_members_of_public_rooms_are_found_by_everyone(make_user: Any) -> None:
    tag = secrets.token_hex(3)
    searcher = make_user("searcher")
    public_member = named(make_user, f"Public {tag}")
    create_room(public_member, preset="public_chat")
    world_readable = named(make_user, f"Reader {tag}")
    room = create_room(world_readable, preset="private_chat")
    resp = world_readable.put(
        f"rooms/{enc(room)}/state/m.room.history_visibility/", {"history_visibility": "world_readable"}
    )
    assert resp.status_code == 200, resp.text
    assert found(searcher, tag) == {public_member.user_id, world_readable.user_id}


def test_matching_is_case_insensitive_on_word_prefixes(make_user: Any) -> None:
    tag = secrets.token_hex(3)
    searcher = make_user("searcher")
    zoe = named(make_user, f"Zoë Washburne-{tag}", prefix=f"zw{tag}x")
    room = create_room(searcher, preset="public_chat")
    join(zoe, room)
    for term in ("zoë", "ZOË", "wash", "Washburne", f"zo washb {tag}", tag, zoe.user_id, f"ZW{tag}"):
        assert found(searcher, term) == {zoe.user_id}, term
    for term in ("oë", "burne", f"{tag}x", "zoë smith"):
        assert zoe.user_id not in found(searcher, term), term
    result = search(searcher, f"washburne {tag}")["results"]
    assert result == [{"user_id": zoe.user_id, "display_name": f"Zoë Washburne-{tag}"}]


def test_avatar_and_exact_matches_come_first(make_user: Any) -> None:
    tag = secrets.token_hex(3)
    searcher = make_user("searcher")
    prefix_only = named(make_user, f"{tag}ish")
    exact = named(make_user, f"{tag}")
    resp = exact.put(f"profile/{enc(exact.user_id)}/avatar_url", {"avatar_url": "mxc://test.local/e"})
    assert resp.status_code == 200
    room = create_room(searcher, preset="public_chat")
    join(prefix_only, room)
    join(exact, room)
    results = search(searcher, tag)["results"]
    assert [r["user_id"] for r in results] == [exact.user_id, prefix_only.user_id]
    assert results[0] == {"user_id": exact.user_id, "display_name": tag, "avatar_url": "mxc://test.local/e"}


def test_limit_and_limited(make_user: Any) -> None:
    tag = secrets.token_hex(3)
    searcher = make_user("searcher")
    room = create_room(searcher, preset="public_chat")
    users = [named(make_user, f"Crowd {tag} {i}") for i in range(3)]
    for user in users:
        join(user, room)
    assert search(searcher, tag)["limited"] is False
    assert len(search(searcher, tag)["results"]) == 3
    two = search(searcher, tag, limit=2)
    assert len(two["results"]) == 2 and two["limited"] is True


def test_deactivated_users_are_not_found(server: Any, make_user: Any) -> None:
    tag = secrets.token_hex(3)
    searcher = make_user("searcher")
    leaver = named(make_user, f"Gone {tag}")
    room = create_room(searcher, preset="public_chat")
    join(leaver, room)
    assert found(searcher, tag) == {leaver.user_id}
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": leaver.user_id},
            "password": "correct horse"}  # make_user's default
    session = leaver.post("account/deactivate", {}).json()["session"]
    resp = leaver.post("account/deactivate", {"auth": {**auth, "session": session}})
    assert resp.status_code == 200, resp.text
    assert found(searcher, tag) == set()


def test_bad_requests(make_user: Any) -> None:
    searcher = make_user("searcher")
    assert_error(searcher.post("user_directory/search", {}), 400, "M_MISSING_PARAM")
    assert_error(searcher.post("user_directory/search", {"search_term": 5}), 400, "M_BAD_JSON")
    assert_error(searcher.post("user_directory/search", {"search_term": "a", "limit": "ten"}), 400, "M_BAD_JSON")
    assert_error(Client(searcher.base_url).post("user_directory/search", {"search_term": "a"}), 401, "M_MISSING_TOKEN")
    assert search(searcher, "   ") == {"results": [], "limited": False}
    assert search(searcher, "%_%") == {"results": [], "limited": False}
