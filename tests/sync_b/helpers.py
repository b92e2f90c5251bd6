"""Helpers of the to-device and end-to-end encryption tests: syncing with spec validation,
rooms, and device keys signed with real ed25519 keys (so the server's signature checks are
exercised)."""

import itertools
from typing import Any

from signedjson.key import generate_signing_key
from signedjson.sign import sign_json
from unpaddedbase64 import encode_base64

from tests.harness import Client
from tests.matrix_helpers import enc, sync  # noqa: F401 - re-exported for the tests

_counter = itertools.count(1)




def shared_room(owner: Client, *others: Client) -> str:
    """A public room created by `owner` that every one of `others` joined."""
    resp = owner.post("createRoom", {"preset": "public_chat"})
    assert resp.status_code == 200, resp.text
    room_id: str = resp.json()["room_id"]
    for other in others:
        assert other.post(f"join/{enc(room_id)}", {}).status_code == 200
    return room_id


def second_device(client: Client) -> Client:
    """Another logged-in device of the same user."""
    other = Client(client.base_url)
    assert client.user_id is not None
    other.login(client.user_id)
    return other


class DeviceKeys:
    """A device's ed25519 identity key, signing the objects a client would upload."""

    def __init__(self, client: Client):
        assert client.user_id and client.device_id
        self.user_id, self.device_id = client.user_id, client.device_id
        self.signing_key = generate_signing_key(self.device_id)
        self.public = encode_base64(self.signing_key.verify_key.encode())

    def device_keys(self) -> dict[str, Any]:
        body = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"ed25519:{self.device_id}": self.public, f"curve25519:{self.device_id}": f"curve{self.device_id}"},
        }
        return sign_json(body, self.user_id, self.signing_key)  # type: ignore[no-any-return]

    def one_time_keys(self, count: int, fallback: bool = False) -> dict[str, Any]:
        keys = {}
        for _ in range(count):
            key_id = f"AAAA{next(_counter)}"
            key: dict[str, Any] = {"key": f"otk-{key_id}"}
            if fallback:
                key["fallback"] = True
            keys[f"signed_curve25519:{key_id}"] = sign_json(key, self.user_id, self.signing_key)
        return keys


class CrossSigningKey:
    """A master, self-signing or user-signing key."""

    def __init__(self, user_id: str, usage: str):
        self.user_id, self.usage = user_id, usage
        self.signing_key = generate_signing_key("x")
        self.public = encode_base64(self.signing_key.verify_key.encode())
        self.signing_key.version = self.public
        self.key_id = f"ed25519:{self.public}"

    def public_json(self, signed_by: "CrossSigningKey | None" = None) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": self.user_id, "usage": [self.usage], "keys": {self.key_id: self.public}}
        if signed_by is not None:
            body = sign_json(body, self.user_id, signed_by.signing_key)
        return body

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        unsigned = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
        return sign_json(unsigned, self.user_id, self.signing_key)  # type: ignore[no-any-return]
