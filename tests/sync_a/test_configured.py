"""Features a config key switches on, on both engines, with one server configured for all of
them: time-limited TURN credentials (checked by recomputing the HMAC), a user directory that
searches every user, and profile lookups that need a token and a shared room."""

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import ENGINES, Client, ServerProcess, running_server
from tests.spec import assert_matches_spec
from tests.sync_a.helpers import assert_error, create_room, enc, join

TURN_SECRET = "turn-" + secrets.token_hex(8)
TURN_URIS = ["turn:turn.test.local:3478?transport=udp", "turns:turn.test.local:443?transport=tcp"]


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with running_server(
        request.param,
        turn_uris=TURN_URIS,
        turn_shared_secret=TURN_SECRET,
        turn_user_lifetime="2h",
        user_directory={"enabled": True, "search_all_users": True},
        require_auth_for_profile_requests=True,
        limit_profile_requests_to_users_who_share_rooms=True,
    ) as process:
        yield process


def test_turn_credentials_are_time_limited_hmacs(make_user: Any) -> None:
    alice = make_user("caller")
    before = int(time.time())
    resp = alice.get("voip/turnServer")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "voip.yaml", "/voip/turnServer", "get", 200)
    assert body["uris"] == TURN_URIS
    assert body["ttl"] == 7200
    expiry, _, user_id = body["username"].partition(":")
    assert user_id == alice.user_id
    assert before + 7200 <= int(expiry) <= int(time.time()) + 7200
    expected = base64.b64encode(hmac.new(TURN_SECRET.encode(), body["username"].encode(), hashlib.sha1).digest())
    assert body["password"] == expected.decode()
    # The legacy r0 and api/v1 prefixes answer too.
    assert alice.get("/_matrix/client/r0/voip/turnServer").status_code == 200
    assert alice.get("/_matrix/client/api/v1/voip/turnServer").status_code == 200


def test_search_all_users_finds_users_in_no_shared_room(make_user: Any) -> None:
    tag = secrets.token_hex(3)
    searcher, loner = make_user("searcher"), make_user("loner")
    resp = loner.put(f"profile/{enc(loner.user_id)}/displayname", {"displayname": f"Loner {tag}"})
    assert resp.status_code == 200, resp.text
    body = searcher.post("user_directory/search", {"search_term": tag}).json()
    assert_matches_spec(body, "users.yaml", "/user_directory/search", "post", 200)
    assert body == {"results": [{"user_id": loner.user_id, "display_name": f"Loner {tag}"}], "limited": False}
    # The searcher is never among their own results.
    mine = searcher.post("user_directory/search", {"search_term": searcher.user_id}).json()
    assert searcher.user_id not in {r["user_id"] for r in mine["results"]}


def test_profile_lookups_need_a_token_and_a_shared_room(make_user: Any, client: Client) -> None:
    alice, bob, eve = make_user("alice"), make_user("bob"), make_user("eve")
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    path = f"profile/{enc(alice.user_id)}"
    assert_error(client.get(path), 401, "M_MISSING_TOKEN")
    assert_error(client.get(f"{path}/displayname"), 401, "M_MISSING_TOKEN")
    assert_error(eve.get(path), 403, "M_FORBIDDEN")
    assert_error(eve.get(f"{path}/displayname"), 403, "M_FORBIDDEN")
    assert bob.get(path).status_code == 200
    assert bob.get(f"{path}/displayname").json() == {"displayname": alice.user_id[1:].split(":")[0]}
    assert eve.get(f"profile/{enc(eve.user_id)}").status_code == 200
