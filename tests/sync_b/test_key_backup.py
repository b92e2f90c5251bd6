"""Server-side key backups on both engines: the version lifecycle, storing and reading keys at
every level with etag and count, the spec's rule for keeping the better copy of a session, and
the wrong-version and not-found errors."""

from typing import Any

from tests.harness import Client
from tests.spec import assert_matches_spec
from tests.sync_b.helpers import enc

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
ROOM = "!room:test.local"


def key(first_index: int = 0, forwarded: int = 0, verified: bool = False, data: str = "x") -> dict[str, Any]:
    return {"first_message_index": first_index, "forwarded_count": forwarded, "is_verified": verified,
            "session_data": {"ciphertext": data, "ephemeral": "e", "mac": "m"}}


def ok(resp: Any, path: str, method: str) -> Any:
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "key_backup.yaml", path, method, 200)
    return resp.json()


def error(resp: Any, status: int, errcode: str) -> dict[str, Any]:
    assert (resp.status_code, resp.json()["errcode"]) == (status, errcode), resp.text
    return resp.json()  # type: ignore[no-any-return]


def new_version(client: Client, public_key: str = "pk1") -> str:
    body = {"algorithm": ALGORITHM, "auth_data": {"public_key": public_key}}
    return ok(client.post("room_keys/version", body), "/room_keys/version", "post")["version"]  # type: ignore[no-any-return]


def test_version_lifecycle(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    error(alice.get("room_keys/version"), 404, "M_NOT_FOUND")
    first = new_version(alice)
    info = ok(alice.get("room_keys/version"), "/room_keys/version", "get")
    assert info == {"algorithm": ALGORITHM, "auth_data": {"public_key": "pk1"}, "version": first, "etag": info["etag"], "count": 0}
    assert ok(alice.get(f"room_keys/version/{first}"), "/room_keys/version/{version}", "get") == info
    # Other users have their own backups: Alice's is invisible to Bob.
    error(bob.get("room_keys/version"), 404, "M_NOT_FOUND")
    error(bob.get(f"room_keys/version/{first}"), 404, "M_NOT_FOUND")

    update = {"algorithm": ALGORITHM, "auth_data": {"public_key": "pk1", "signatures": {}}, "version": first}
    ok(alice.put(f"room_keys/version/{first}", update), "/room_keys/version/{version}", "put")
    assert alice.get("room_keys/version").json()["auth_data"] == update["auth_data"]
    error(alice.put(f"room_keys/version/{first}", dict(update, version="999")), 400, "M_INVALID_PARAM")
    error(alice.put(f"room_keys/version/{first}", dict(update, algorithm="other")), 400, "M_INVALID_PARAM")
    error(alice.put("room_keys/version/999", dict(update, version="999")), 404, "M_NOT_FOUND")
    error(alice.post("room_keys/version", {"algorithm": ALGORITHM}), 400, "M_MISSING_PARAM")
    error(alice.post("room_keys/version", {"algorithm": ALGORITHM, "auth_data": "text"}), 400, "M_BAD_JSON")

    second = new_version(alice, "pk2")
    assert int(second) > int(first)
    assert alice.get("room_keys/version").json()["version"] == second
    ok(alice.delete(f"room_keys/version/{second}"), "/room_keys/version/{version}", "delete")
    # Deleting again succeeds; a version that never existed is not found.
    ok(alice.delete(f"room_keys/version/{second}"), "/room_keys/version/{version}", "delete")
    error(alice.delete("room_keys/version/12345"), 404, "M_NOT_FOUND")
    error(alice.delete("room_keys/version/abc"), 404, "M_NOT_FOUND")
    error(alice.get(f"room_keys/version/{second}"), 404, "M_NOT_FOUND")
    assert alice.get("room_keys/version").json()["version"] == first
    # Numbers are not reused after a deletion.
    assert int(new_version(alice)) > int(second)


def test_keys_etag_count_and_better_copies(make_user: Any) -> None:
    alice = make_user("alice")
    version = new_version(alice)
    params = {"version": version}
    put_all = ok(alice.put("room_keys/keys", {"rooms": {ROOM: {"sessions": {"s1": key(5, 1), "s2": key()}}}}, params=params),
                 "/room_keys/keys", "put")
    assert put_all["count"] == 2
    one = ok(alice.put(f"room_keys/keys/{enc(ROOM)}/s3", key(), params=params), "/room_keys/keys/{roomId}/{sessionId}", "put")
    assert one["count"] == 3 and one["etag"] != put_all["etag"]
    info = alice.get("room_keys/version").json()
    assert (info["count"], info["etag"]) == (3, one["etag"])

    # Worse copies do not replace s1 (and leave the etag alone); better ones do.
    worse = ok(alice.put(f"room_keys/keys/{enc(ROOM)}", {"sessions": {"s1": key(6, 0, data="worse")}}, params=params),
               "/room_keys/keys/{roomId}", "put")
    assert worse == one
    stored = alice.get(f"room_keys/keys/{enc(ROOM)}/s1", params=params).json()
    assert stored["session_data"]["ciphertext"] == "x"
    for better in (key(4, 9, data="lower index"), key(4, 0, data="fewer forwards"), key(9, 9, verified=True, data="verified")):
        alice.put(f"room_keys/keys/{enc(ROOM)}/s1", better, params=params)
        current = ok(alice.get(f"room_keys/keys/{enc(ROOM)}/s1", params=params), "/room_keys/keys/{roomId}/{sessionId}", "get")
        assert current == better
    # An unverified copy never replaces a verified one, whatever its index.
    alice.put(f"room_keys/keys/{enc(ROOM)}/s1", key(0, 0, data="unverified"), params=params)
    assert alice.get(f"room_keys/keys/{enc(ROOM)}/s1", params=params).json()["session_data"]["ciphertext"] == "verified"

    everything = ok(alice.get("room_keys/keys", params=params), "/room_keys/keys", "get")
    assert set(everything["rooms"][ROOM]["sessions"]) == {"s1", "s2", "s3"}
    room = ok(alice.get(f"room_keys/keys/{enc(ROOM)}", params=params), "/room_keys/keys/{roomId}", "get")
    assert room == everything["rooms"][ROOM]
    assert alice.get(f"room_keys/keys/{enc('!other:test.local')}", params=params).json() == {"sessions": {}}
    error(alice.get(f"room_keys/keys/{enc(ROOM)}/nosuch", params=params), 404, "M_NOT_FOUND")

    deleted = ok(alice.delete(f"room_keys/keys/{enc(ROOM)}/s2", params=params), "/room_keys/keys/{roomId}/{sessionId}", "delete")
    assert deleted["count"] == 2
    emptied = ok(alice.delete("room_keys/keys", params=params), "/room_keys/keys", "delete")
    assert emptied["count"] == 0 and emptied["etag"] != deleted["etag"]
    assert alice.get("room_keys/keys", params=params).json() == {"rooms": {}}


def test_wrong_version_and_missing_backups(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    body = {"rooms": {ROOM: {"sessions": {"s1": key()}}}}
    error(alice.put("room_keys/keys", body, params={"version": "1"}), 404, "M_NOT_FOUND")
    old = new_version(alice)
    alice.put("room_keys/keys", body, params={"version": old})
    current = new_version(alice)
    wrong = error(alice.put("room_keys/keys", body, params={"version": old}), 403, "M_WRONG_ROOM_KEYS_VERSION")
    assert wrong["current_version"] == current
    error(alice.put(f"room_keys/keys/{enc(ROOM)}/s1", key(), params={"version": old}), 403, "M_WRONG_ROOM_KEYS_VERSION")
    error(alice.put("room_keys/keys", body, params={"version": "999"}), 404, "M_NOT_FOUND")
    # Older versions can still be read.
    assert "s1" in alice.get(f"room_keys/keys/{enc(ROOM)}", params={"version": old}).json()["sessions"]
    error(alice.get("room_keys/keys"), 400, "M_MISSING_PARAM")
    error(alice.get("room_keys/keys", params={"version": "999"}), 404, "M_NOT_FOUND")
    error(alice.delete("room_keys/keys", params={"version": "999"}), 404, "M_NOT_FOUND")
    # Bob cannot read or write Alice's backup, even knowing its version.
    error(bob.get("room_keys/keys", params={"version": current}), 404, "M_NOT_FOUND")
    error(bob.put("room_keys/keys", body, params={"version": current}), 404, "M_NOT_FOUND")
    error(bob.delete(f"room_keys/version/{current}"), 404, "M_NOT_FOUND")
    bad_key = {"rooms": {ROOM: {"sessions": {"s1": dict(key(), is_verified="yes")}}}}
    error(alice.put("room_keys/keys", bad_key, params={"version": current}), 400, "M_BAD_JSON")
    error(alice.put("room_keys/keys", {"rooms": {ROOM: {}}}, params={"version": current}), 400, "M_BAD_JSON")
