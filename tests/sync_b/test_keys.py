"""Device keys, one-time and fallback keys between two users, and device list tracking in
`/sync` and `/keys/changes`, on both engines."""

from typing import Any

from tests.harness import Client
from tests.matrix_helpers import long_poll
from tests.spec import assert_matches_spec
from tests.sync_b.helpers import DeviceKeys, enc, second_device, shared_room, sync


def upload(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("keys/upload", body)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "keys.yaml", "/keys/upload", "post", 200)
    return resp.json()  # type: ignore[no-any-return]


def query(client: Client, device_keys: dict[str, list[str]]) -> dict[str, Any]:
    resp = client.post("keys/query", {"device_keys": device_keys})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "keys.yaml", "/keys/query", "post", 200)
    return resp.json()  # type: ignore[no-any-return]


def claim(client: Client, user: Client) -> dict[str, Any]:
    resp = client.post("keys/claim", {"one_time_keys": {user.user_id: {user.device_id: "signed_curve25519"}}})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "keys.yaml", "/keys/claim", "post", 200)
    assert resp.json()["failures"] == {}
    return resp.json()["one_time_keys"].get(user.user_id, {}).get(user.device_id, {})  # type: ignore[no-any-return]


def changes(client: Client, since: str, to: str) -> dict[str, Any]:
    resp = client.get("keys/changes", params={"from": since, "to": to})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "keys.yaml", "/keys/changes", "get", 200)
    return resp.json()  # type: ignore[no-any-return]


def test_upload_query_claim_and_fallback(make_user: Any, server_name: str) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    alice.put(f"devices/{alice.device_id}", {"display_name": "Alice's laptop"})
    keys = DeviceKeys(alice)
    otks = keys.one_time_keys(2)
    fallback = keys.one_time_keys(1, fallback=True)
    counts = upload(alice, {"device_keys": keys.device_keys(), "one_time_keys": otks, "fallback_keys": fallback})
    assert counts["one_time_key_counts"] == {"signed_curve25519": 2}
    # Re-uploading the same keys is harmless.
    assert upload(alice, {"one_time_keys": otks})["one_time_key_counts"] == {"signed_curve25519": 2}

    result = query(bob, {alice.user_id: [], f"@nobody:{server_name}": []})
    device = result["device_keys"][alice.user_id][alice.device_id]
    assert device["keys"] == keys.device_keys()["keys"]
    assert device["signatures"] == keys.device_keys()["signatures"]
    assert device["unsigned"] == {"device_display_name": "Alice's laptop"}
    assert result["device_keys"][f"@nobody:{server_name}"] == {}
    assert result["failures"] == {}
    assert query(bob, {alice.user_id: ["OTHER"]})["device_keys"] == {alice.user_id: {}}

    token = sync(alice)
    assert token["device_one_time_keys_count"] == {"signed_curve25519": 2}
    assert token["device_unused_fallback_key_types"] == ["signed_curve25519"]

    claimed = [claim(bob, alice), claim(bob, alice)]
    assert sorted(k for c in claimed for k in c) == sorted(otks)
    assert sync(alice)["device_one_time_keys_count"] == {"signed_curve25519": 0}

    # One-time keys exhausted: the fallback key is handed out, and stays, marked used.
    assert claim(bob, alice) == fallback
    assert claim(bob, alice) == fallback
    after = sync(alice)
    assert after["device_unused_fallback_key_types"] == []
    upload(alice, {"fallback_keys": keys.one_time_keys(1, fallback=True)})
    assert sync(alice)["device_unused_fallback_key_types"] == ["signed_curve25519"]


def test_deleted_devices_lose_their_keys(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    phone = second_device(alice)
    upload(phone, {"device_keys": DeviceKeys(phone).device_keys(), "one_time_keys": DeviceKeys(phone).one_time_keys(1)})
    assert phone.device_id in query(bob, {alice.user_id: []})["device_keys"][alice.user_id]
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id}, "password": "correct horse"}
    assert alice.delete(f"devices/{phone.device_id}", {"auth": auth}).status_code == 200
    assert query(bob, {alice.user_id: []})["device_keys"][alice.user_id] == {}
    assert claim(bob, phone) == {}


def test_bad_uploads_and_claims_are_rejected(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    keys = DeviceKeys(alice)
    wrong_user = dict(keys.device_keys(), user_id=bob.user_id)
    wrong_device = dict(keys.device_keys(), device_id="SOMEOTHER")
    for body in ({"device_keys": wrong_user}, {"device_keys": wrong_device}, {"one_time_keys": {"nocolon": "k"}},
                 {"one_time_keys": {"signed_curve25519:A": 5}}, {"fallback_keys": []}):
        resp = alice.post("keys/upload", body)
        assert resp.status_code == 400 and resp.json()["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM"), (body, resp.text)
    upload(alice, {"one_time_keys": {"signed_curve25519:K1": {"key": "one"}}})
    clash = alice.post("keys/upload", {"one_time_keys": {"signed_curve25519:K1": {"key": "two"}}})
    assert clash.status_code == 400 and clash.json()["errcode"] == "M_INVALID_PARAM"
    for body in ({}, {"one_time_keys": {alice.user_id: {alice.device_id: 5}}}, {"one_time_keys": {"bad": {}}}):
        resp = bob.post("keys/claim", body)
        assert resp.status_code == 400, resp.text
    for body in ({}, {"device_keys": {alice.user_id: "ALL"}}):
        assert bob.post("keys/query", body).status_code == 400
    remote = bob.post("keys/query", {"device_keys": {"@carol:elsewhere.example": []}}).json()
    assert "elsewhere.example" in remote["failures"] and "@carol:elsewhere.example" not in remote["device_keys"]


def test_device_lists_in_sync_and_keys_changes(make_user: Any) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = shared_room(alice, bob)
    start = sync(alice)["next_batch"]

    # Bob logs in a new device and uploads keys for it: Alice must re-fetch Bob's keys.
    phone = second_device(bob)
    upload(phone, {"device_keys": DeviceKeys(phone).device_keys()})
    body = sync(alice, since=start)
    assert bob.user_id in body["device_lists"]["changed"]
    assert carol.user_id not in body["device_lists"]["changed"]
    assert body["device_lists"]["left"] == []
    # Bob sees his own change too.
    assert bob.user_id in sync(bob, since=start)["device_lists"]["changed"]

    # A key upload by someone Alice shares no room with is not her business.
    after_login = body["next_batch"]
    upload(carol, {"device_keys": DeviceKeys(carol).device_keys()})
    quiet = sync(alice, since=after_login)
    assert quiet["device_lists"] == {"changed": [], "left": []}

    # Carol joins the room: Alice now shares a room with her, so she is "changed".
    assert carol.post(f"join/{enc(room)}", {}).status_code == 200
    joined = sync(alice, since=quiet["next_batch"])
    assert carol.user_id in joined["device_lists"]["changed"]

    # Bob leaves the only room he shared with Alice: she stops tracking him, and he them.
    bob_token = sync(bob)["next_batch"]
    assert bob.post(f"rooms/{enc(room)}/leave", {}).status_code == 200
    left = sync(alice, since=joined["next_batch"])
    assert left["device_lists"]["left"] == [bob.user_id]
    assert bob.user_id not in left["device_lists"]["changed"]
    assert sorted(sync(bob, since=bob_token)["device_lists"]["left"]) == sorted([alice.user_id, carol.user_id])

    # /keys/changes answers the same questions between any two sync tokens.
    now = left["next_batch"]
    between = changes(alice, start, now)
    assert carol.user_id in between["changed"]
    assert between["left"] == [bob.user_id]
    assert changes(alice, now, now) == {"changed": [], "left": []}
    bad = alice.get("keys/changes", params={"from": "nonsense", "to": now})
    assert bad.status_code == 400 and bad.json()["errcode"] == "M_INVALID_PARAM"
    assert alice.get("keys/changes").json()["errcode"] == "M_MISSING_PARAM"


def test_long_poll_wakes_when_a_room_mate_uploads_keys(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared_room(alice, bob)
    token = sync(alice)["next_batch"]
    body, seconds = long_poll(alice, token, lambda: upload(bob, {"device_keys": DeviceKeys(bob).device_keys()}))
    assert body["device_lists"]["changed"] == [bob.user_id]
    assert seconds < 5, seconds
