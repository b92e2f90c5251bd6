"""Cross-signing on both engines: the first key upload without user-interactive auth, replacing
keys with it, signature checks, and signatures of devices and of other users' master keys
showing up in `/keys/query` (to the right people only)."""

from typing import Any

from signedjson.sign import sign_json

from tests.harness import Client
from tests.spec import assert_matches_spec
from tests.sync_b.helpers import CrossSigningKey, DeviceKeys, shared_room, sync


class Identity:
    """A user's three cross-signing keys."""

    def __init__(self, client: Client):
        assert client.user_id
        self.master = CrossSigningKey(client.user_id, "master")
        self.self_signing = CrossSigningKey(client.user_id, "self_signing")
        self.user_signing = CrossSigningKey(client.user_id, "user_signing")

    def upload_body(self) -> dict[str, Any]:
        return {
            "master_key": self.master.public_json(),
            "self_signing_key": self.self_signing.public_json(signed_by=self.master),
            "user_signing_key": self.user_signing.public_json(signed_by=self.master),
        }


def password_auth(client: Client, session: str) -> dict[str, Any]:
    return {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": client.user_id},
            "password": "correct horse", "session": session}


def query(client: Client, *users: Client) -> dict[str, Any]:
    resp = client.post("keys/query", {"device_keys": {u.user_id: [] for u in users}})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "keys.yaml", "/keys/query", "post", 200)
    return resp.json()  # type: ignore[no-any-return]


def upload_signatures(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("keys/signatures/upload", body)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "cross_signing.yaml", "/keys/signatures/upload", "post", 200)
    return resp.json()["failures"]  # type: ignore[no-any-return]


def test_first_upload_needs_no_auth_and_replacing_needs_password(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    identity = Identity(alice)
    first = alice.post("keys/device_signing/upload", identity.upload_body())
    assert first.status_code == 200, first.text
    assert_matches_spec(first.json(), "cross_signing.yaml", "/keys/device_signing/upload", "post", 200)
    # The same keys again: nothing changes, so no auth is needed either.
    assert alice.post("keys/device_signing/upload", identity.upload_body()).status_code == 200

    seen_by_bob = query(bob, alice)
    assert seen_by_bob["master_keys"][alice.user_id]["keys"] == {identity.master.key_id: identity.master.public}
    assert alice.user_id in seen_by_bob["self_signing_keys"]
    assert seen_by_bob["user_signing_keys"] == {}
    assert alice.user_id in query(alice, alice)["user_signing_keys"]

    replacement = Identity(alice)
    challenge = alice.post("keys/device_signing/upload", replacement.upload_body())
    assert challenge.status_code == 401
    assert {"stages": ["m.login.password"]} in challenge.json()["flows"]
    session = challenge.json()["session"]
    wrong = alice.post("keys/device_signing/upload", {"auth": dict(password_auth(alice, session), password="wrong")})
    assert wrong.status_code == 401 and wrong.json()["errcode"] == "M_FORBIDDEN"
    done = alice.post("keys/device_signing/upload", {**replacement.upload_body(), "auth": password_auth(alice, session)})
    assert done.status_code == 200, done.text
    assert query(bob, alice)["master_keys"][alice.user_id]["keys"] == {replacement.master.key_id: replacement.master.public}


def test_invalid_cross_signing_uploads(make_user: Any) -> None:
    alice = make_user("alice")
    identity, stranger = Identity(alice), CrossSigningKey(alice.user_id, "master")
    no_master = alice.post("keys/device_signing/upload", {"self_signing_key": identity.self_signing.public_json(identity.master)})
    assert (no_master.status_code, no_master.json()["errcode"]) == (400, "M_MISSING_PARAM")
    badly_signed = {"master_key": identity.master.public_json(), "self_signing_key": identity.self_signing.public_json(stranger)}
    resp = alice.post("keys/device_signing/upload", badly_signed)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_INVALID_SIGNATURE")
    wrong_usage = {"master_key": identity.self_signing.public_json()}
    resp = alice.post("keys/device_signing/upload", wrong_usage)
    assert (resp.status_code, resp.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_signatures_upload_visible_in_query(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared_room(alice, bob)
    alice_device, bob_device = DeviceKeys(alice), DeviceKeys(bob)
    for client, device in ((alice, alice_device), (bob, bob_device)):
        assert client.post("keys/upload", {"device_keys": device.device_keys()}).status_code == 200
    alice_id, bob_id = Identity(alice), Identity(bob)
    for client, identity in ((alice, alice_id), (bob, bob_id)):
        assert client.post("keys/device_signing/upload", identity.upload_body()).status_code == 200
    token = sync(bob)["next_batch"]

    # Alice signs her device with her self-signing key, and Bob's master key with her
    # user-signing key.
    signed_device = alice_id.self_signing.sign(alice_device.device_keys())
    signed_device["signatures"][alice.user_id].update(alice_device.device_keys()["signatures"][alice.user_id])
    signed_bob = alice_id.user_signing.sign(bob_id.master.public_json())
    assert upload_signatures(alice, {alice.user_id: {alice.device_id: signed_device},
                                     bob.user_id: {bob_id.master.public: signed_bob}}) == {}

    seen_by_bob = query(bob, alice, bob)
    device_sigs = seen_by_bob["device_keys"][alice.user_id][alice.device_id]["signatures"][alice.user_id]
    assert device_sigs[alice_id.self_signing.key_id] == signed_device["signatures"][alice.user_id][alice_id.self_signing.key_id]
    # Alice's signature of Bob's master key is hers to see, not Bob's.
    assert alice.user_id not in seen_by_bob["master_keys"][bob.user_id].get("signatures", {})
    seen_by_alice = query(alice, bob)
    assert seen_by_alice["master_keys"][bob.user_id]["signatures"][alice.user_id] == {
        alice_id.user_signing.key_id: signed_bob["signatures"][alice.user_id][alice_id.user_signing.key_id]
    }
    # Alice's device signs her master key: she sees that signature on it.
    signed_master = sign_json(alice_id.master.public_json(), alice.user_id, alice_device.signing_key)
    assert upload_signatures(alice, {alice.user_id: {alice_id.master.public: signed_master}}) == {}
    own_master = query(alice, alice)["master_keys"][alice.user_id]
    assert own_master["signatures"][alice.user_id][f"ed25519:{alice.device_id}"] == (
        signed_master["signatures"][alice.user_id][f"ed25519:{alice.device_id}"]
    )
    # Bob's client learns that Alice's keys changed (her device got a new signature).
    assert alice.user_id in sync(bob, since=token)["device_lists"]["changed"]

    # Signatures that do not verify are reported per key, and not stored.
    forged = alice_id.user_signing.sign(bob_id.master.public_json())
    forged["signatures"][alice.user_id][alice_id.user_signing.key_id] = "AAAA" + "A" * 82
    failures = upload_signatures(alice, {bob.user_id: {bob_id.master.public: forged, "NOTAKEY": forged}})
    assert failures[bob.user_id][bob_id.master.public]["errcode"] == "M_INVALID_SIGNATURE"
    assert failures[bob.user_id]["NOTAKEY"]["errcode"] == "M_NOT_FOUND"
    unknown_device = upload_signatures(alice, {alice.user_id: {"NOSUCHDEVICE": alice_id.self_signing.sign({"x": 1})}})
    assert unknown_device[alice.user_id]["NOSUCHDEVICE"]["errcode"] == "M_NOT_FOUND"
