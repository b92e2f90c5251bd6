"""Presence in every deployment shape: setting and reading it, who may read it, `set_presence` on /sync,
presence events in initial and incremental syncs (only when something changed), the presence
filter, long-polls woken by a room-mate's presence, and presence surviving a restart."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import SHAPES, Client, Deployment, ServerProcess, running_server
from tests.sync_c.helpers import (
    Background,
    assert_error,
    enc,
    get_presence,
    presence_events,
    set_presence,
    shared_room,
    sync,
)

NO_PRESENCE_LIMIT = {"rc_presence": {"per_user": {"per_second": 10000, "burst_count": 10000}}}


@pytest.fixture(scope="module", params=SHAPES)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess | Deployment]:
    if request.param == "workers":  # the shared deployment has no presence limit either
        yield request.getfixturevalue("shared_workers_deployment")
        return
    with running_server(request.param, **NO_PRESENCE_LIMIT) as process:
        yield process


def test_set_and_get_own_presence(make_user: Any) -> None:
    alice = make_user("alice")
    assert get_presence(alice, alice.user_id)["presence"] == "offline"
    set_presence(alice, "online", "Working")
    body = get_presence(alice, alice.user_id)
    assert body["presence"] == "online" and body["status_msg"] == "Working"
    assert body["currently_active"] is True
    assert 0 <= body["last_active_ago"] < 10_000
    set_presence(alice, "unavailable")
    body = get_presence(alice, alice.user_id)
    assert body["presence"] == "unavailable" and "status_msg" not in body
    assert body["currently_active"] is False
    # The legacy prefix answers too.
    assert alice.get(f"/_matrix/client/api/v1/presence/{enc(alice.user_id)}/status").json()["presence"] == "unavailable"


def test_presence_is_visible_to_room_mates_only(make_user: Any, client: Client, server_name: str) -> None:
    alice, bob, eve = make_user("alice"), make_user("bob"), make_user("eve")
    shared_room(alice, bob)
    set_presence(alice, "online", "Here")
    assert get_presence(bob, alice.user_id)["status_msg"] == "Here"
    assert_error(eve.get(f"presence/{enc(alice.user_id)}/status"), 403, "M_FORBIDDEN")
    assert_error(eve.get(f"presence/{enc(f'@nobody:{server_name}')}/status"), 403, "M_FORBIDDEN")
    assert_error(client.get(f"presence/{enc(alice.user_id)}/status"), 401, "M_MISSING_TOKEN")
    # Whatever the body, nobody sets another user's presence.
    path = f"presence/{enc(alice.user_id)}/status"
    assert_error(bob.put(path, {"presence": "offline"}), 403, "M_FORBIDDEN")
    assert get_presence(bob, alice.user_id)["presence"] == "online"


def test_refused_presence_updates(make_user: Any) -> None:
    alice = make_user("alice")
    path = f"presence/{enc(alice.user_id)}/status"
    assert_error(alice.put(path, {"presence": "busy-ish"}), 400, "M_INVALID_PARAM")
    assert_error(alice.put(path, {}), 400, "M_MISSING_PARAM")
    assert_error(alice.put(path, {"presence": "online", "status_msg": 3}), 400, "M_BAD_JSON")
    assert_error(alice.put(path, {"presence": "online", "mood": "great"}), 400, "M_BAD_JSON")
    assert_error(alice.put(path, data=b"{"), 400, "M_NOT_JSON")
    assert_error(alice.get(f"presence/{enc('not-a-user')}/status"), 400, "M_INVALID_PARAM")
    assert get_presence(alice, alice.user_id)["presence"] == "offline"


def test_set_presence_on_sync(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared_room(alice, bob)
    sync(bob, set_presence="offline")
    assert get_presence(alice, bob.user_id)["presence"] == "offline"
    sync(bob, set_presence="unavailable")
    assert get_presence(alice, bob.user_id)["presence"] == "unavailable"
    sync(bob)
    body = get_presence(alice, bob.user_id)
    assert body["presence"] == "online" and body["currently_active"] is True
    assert_error(bob.get("sync", params={"set_presence": "away"}), 400, "M_INVALID_PARAM")


def test_presence_in_sync(make_user: Any) -> None:
    alice, bob, eve = make_user("alice"), make_user("bob"), make_user("eve")
    shared_room(alice, bob)
    set_presence(alice, "online", "Lunch soon")
    set_presence(eve, "online")

    first = sync(bob, set_presence="offline")
    seen = presence_events(first)
    assert seen[alice.user_id]["presence"] == "online" and seen[alice.user_id]["status_msg"] == "Lunch soon"
    assert seen[alice.user_id]["currently_active"] is True
    assert eve.user_id not in seen and bob.user_id not in seen  # not a room-mate; offline

    # Nothing changed: no presence in the next sync.
    quiet = sync(bob, since=first["next_batch"], set_presence="offline")
    assert presence_events(quiet) == {}
    set_presence(alice, "unavailable", "At lunch")
    set_presence(eve, "unavailable")
    changed = sync(bob, since=quiet["next_batch"], set_presence="offline")
    seen = presence_events(changed)
    assert list(seen) == [alice.user_id]
    assert seen[alice.user_id]["presence"] == "unavailable" and seen[alice.user_id]["status_msg"] == "At lunch"
    assert presence_events(sync(bob, since=changed["next_batch"], set_presence="offline")) == {}
    # A user sees their own presence.
    assert presence_events(sync(alice, set_presence="offline"))[alice.user_id]["presence"] == "unavailable"


def test_presence_filter(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    shared_room(alice, bob, carol)
    set_presence(alice, "online")
    set_presence(carol, "online")
    assert presence_events(sync(bob, set_presence="offline", filter={"presence": {"not_types": ["m.presence"]}})) == {}
    only_carol = sync(bob, set_presence="offline", filter={"presence": {"senders": [carol.user_id]}})
    assert list(presence_events(only_carol)) == [carol.user_id]
    not_carol = sync(bob, set_presence="offline", filter={"presence": {"not_senders": [carol.user_id]}})
    assert carol.user_id not in presence_events(not_carol)


def test_joining_a_room_brings_its_members_presence(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = shared_room(alice)
    set_presence(alice, "online", "Host")
    token = sync(bob, set_presence="offline")["next_batch"]
    assert bob.post(f"join/{enc(room)}", {}).status_code == 200
    assert presence_events(sync(bob, since=token, set_presence="offline"))[alice.user_id]["status_msg"] == "Host"


def test_room_mates_presence_wakes_a_long_poll(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared_room(alice, bob)
    token = sync(bob, set_presence="offline")["next_batch"]
    poll = Background(lambda: sync(bob, since=token, timeout=20000, set_presence="offline"))
    sync(alice)  # syncing brings alice online
    body = poll.join()
    assert poll.seconds < 5, poll.seconds
    assert presence_events(body)[alice.user_id]["presence"] == "online"


def test_presence_survives_a_restart(server: ServerProcess, make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared_room(alice, bob)
    set_presence(alice, "unavailable", "Back in five")
    server.stop()
    server.start()
    body = get_presence(bob, alice.user_id)
    assert body["presence"] == "unavailable" and body["status_msg"] == "Back in five"
    assert presence_events(sync(bob, set_presence="offline"))[alice.user_id]["status_msg"] == "Back in five"
