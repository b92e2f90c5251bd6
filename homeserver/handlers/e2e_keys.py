"""End-to-end encryption keys: uploading, querying and claiming device keys, one-time and
fallback keys (`/keys/upload`, `/keys/query`, `/keys/claim`, `/keys/changes`), and
cross-signing (`/keys/device_signing/upload`, `/keys/signatures/upload`), with signatures
checked against the keys that must have made them.

Only local users are served: keys of users on other servers need federation, so those servers
are reported under `failures`."""

import logging
from typing import TYPE_CHECKING, Any

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from signedjson.types import VerifyKey
from unpaddedbase64 import decode_base64

from homeserver.http.auth import Requester
from homeserver.http.errors import MatrixError, bad_json, invalid_param, not_found
from homeserver.storage.stores.end_to_end_keys import Signature
from homeserver.tokens import StreamToken
from homeserver.util.clock import now_ms
from homeserver.util.stringutils import is_valid_user_id

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
CROSS_SIGNING_FIELDS = {"master_key": "master", "self_signing_key": "self_signing", "user_signing_key": "user_signing"}
REMOTE_FAILURE = {"status": 503, "message": "Federation is not supported yet"}


def invalid_signature(msg: str = "Invalid signature") -> MatrixError:
    return MatrixError(400, msg, "M_INVALID_SIGNATURE")


class E2eKeysHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.e2e_keys

    def _is_mine(self, user_id: str) -> bool:
        return user_id.partition(":")[2] == self.hs.hostname

    # --- /keys/upload --------------------------------------------------------------------------

    async def upload_keys(self, requester: Requester, body: JsonDict) -> JsonDict:
        user_id, device_id = requester.user_id, requester.device_id
        if device_id is None:
            raise invalid_param("To upload keys, the access token must belong to a device")
        ts = now_ms()
        if "device_keys" in body:
            device_keys = _check_device_keys(body["device_keys"], user_id, device_id)
            if await self.store.set_device_keys(user_id, device_id, device_keys, ts):
                await self.hs.device_list_handler.notify_device_change(user_id)
        one_time_keys = _parse_key_map(body.get("one_time_keys"), "one_time_keys")
        if one_time_keys:
            await self._add_one_time_keys(user_id, device_id, one_time_keys, ts)
        fallback_keys = _parse_key_map(body.get("fallback_keys"), "fallback_keys")
        if fallback_keys:
            await self.store.set_fallback_keys(user_id, device_id, fallback_keys)
        counts = {"signed_curve25519": 0}
        counts.update((await self.store.get_key_counts(user_id, device_id)).one_time)
        return {"one_time_key_counts": counts}

    async def _add_one_time_keys(self, user_id: str, device_id: str, keys: list[tuple[str, str, Any]], ts: int) -> None:
        existing = await self.store.get_one_time_keys(user_id, device_id, [(a, k) for a, k, _ in keys])
        new = []
        for algorithm, key_id, key in keys:
            if (algorithm, key_id) not in existing:
                new.append((algorithm, key_id, key))
            elif _without_signatures(existing[(algorithm, key_id)]) != _without_signatures(key):
                raise invalid_param(f"One-time key {algorithm}:{key_id} already exists with different content")
        await self.store.add_one_time_keys(user_id, device_id, new, ts)

    # --- /keys/query ---------------------------------------------------------------------------

    async def query_keys(self, requester: Requester, body: JsonDict) -> JsonDict:
        query = body.get("device_keys")
        if not isinstance(query, dict):
            raise bad_json("'device_keys' must be an object")
        local: dict[str, list[str]] = {}
        failures: dict[str, Any] = {}
        for user_id, device_ids in query.items():
            if not is_valid_user_id(user_id):
                raise invalid_param(f"Invalid user id {user_id!r}")
            if device_ids is None:
                device_ids = []
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise bad_json("'device_keys' values must be lists of device ids")
            if self._is_mine(user_id):
                local[user_id] = device_ids
            else:
                failures[user_id.partition(":")[2]] = REMOTE_FAILURE
        found = await self.store.get_device_keys(
            [(u, None) for u, ids in local.items() if not ids] + [(u, d) for u, ids in local.items() for d in ids]
        )
        result: JsonDict = {"device_keys": {u: found.get(u, {}) for u in local}, "failures": failures}
        result.update(await self._cross_signing_keys_for(list(local), requester.user_id))
        return result

    async def _cross_signing_keys_for(self, user_ids: list[str], requester_id: str) -> JsonDict:
        keys = await self.store.get_cross_signing_keys(user_ids, from_user_id=requester_id)
        sections: JsonDict = {"master_keys": {}, "self_signing_keys": {}, "user_signing_keys": {}}
        for user_id, by_type in keys.items():
            if "master" in by_type:
                sections["master_keys"][user_id] = by_type["master"]
            if "self_signing" in by_type:
                sections["self_signing_keys"][user_id] = by_type["self_signing"]
            if user_id == requester_id and "user_signing" in by_type:
                sections["user_signing_keys"][user_id] = by_type["user_signing"]
        return sections

    # --- /keys/claim ---------------------------------------------------------------------------

    async def claim_keys(self, body: JsonDict) -> JsonDict:
        wanted = body.get("one_time_keys")
        if not isinstance(wanted, dict):
            raise bad_json("'one_time_keys' must be an object")
        query: list[tuple[str, str, str]] = []
        failures: dict[str, Any] = {}
        for user_id, devices in wanted.items():
            if not is_valid_user_id(user_id):
                raise invalid_param(f"Invalid user id {user_id!r}")
            if not isinstance(devices, dict) or not all(isinstance(a, str) for a in devices.values()):
                raise bad_json("'one_time_keys' must map user ids to {device_id: algorithm}")
            if self._is_mine(user_id):
                query += [(user_id, device_id, algorithm) for device_id, algorithm in devices.items()]
            else:
                failures[user_id.partition(":")[2]] = REMOTE_FAILURE
        claimed = await self.store.claim_keys(query)
        logger.info("Claimed %d one-time or fallback keys", sum(len(d) for u in claimed.values() for d in u.values()))
        return {"one_time_keys": claimed, "failures": failures}

    # --- /keys/changes -------------------------------------------------------------------------

    async def key_changes(self, user_id: str, from_token: str, to_token: str | None) -> JsonDict:
        since = StreamToken.parse(from_token)
        now = self.hs.sync_handler.current_token()
        if to_token is not None:
            upto = StreamToken.parse(to_token)
            now = StreamToken(**{k: min(getattr(upto, k), getattr(now, k)) for k in ("events", "device_lists")})
        changes = await self.hs.device_list_handler.get_changes(user_id, since, now)
        return {"changed": sorted(changes.changed), "left": sorted(changes.left)}

    # --- cross-signing keys --------------------------------------------------------------------

    async def signing_keys_upload_needs_auth(self, user_id: str, body: JsonDict) -> bool:
        """Replacing existing cross-signing keys needs user-interactive auth; the first upload
        (no master key yet) and re-uploading the same keys do not."""
        stored = (await self.store.get_cross_signing_keys([user_id])).get(user_id, {})
        if "master" not in stored:
            return False
        return any(field in body and body[field] != stored.get(keytype) for field, keytype in CROSS_SIGNING_FIELDS.items())

    async def upload_signing_keys(self, user_id: str, body: JsonDict) -> None:
        uploaded = {keytype: body[field] for field, keytype in CROSS_SIGNING_FIELDS.items() if body.get(field) is not None}
        stored = (await self.store.get_cross_signing_keys([user_id])).get(user_id, {})
        if "master" in uploaded:
            _check_cross_signing_key(uploaded["master"], user_id, "master")
        master = uploaded.get("master") or stored.get("master")
        if master is None:
            raise MatrixError(400, "No master key available", "M_MISSING_PARAM")
        _, master_verify_key = _verify_key_of(master)
        for keytype in ("self_signing", "user_signing"):
            if keytype in uploaded:
                _check_cross_signing_key(uploaded[keytype], user_id, keytype, master_verify_key)
        changed = {t: k for t, k in uploaded.items() if k != stored.get(t)}
        if not changed:
            return
        device_ids = {d.device_id for d in await self.hs.stores.devices.get_devices(user_id)}
        if any(_public_key(k) in device_ids for k in changed.values()):
            raise MatrixError(403, "Key ID in use", "M_FORBIDDEN")
        await self.store.set_cross_signing_keys(user_id, changed)
        await self.hs.device_list_handler.notify_device_change(user_id)

    # --- /keys/signatures/upload ---------------------------------------------------------------

    async def upload_signatures(self, user_id: str, body: JsonDict) -> JsonDict:
        for target, signed in body.items():
            if not isinstance(signed, dict) or not all(isinstance(v, dict) for v in signed.values()):
                raise invalid_param(f"Signatures for {target!r} must map key ids to signed objects")
        failures: dict[str, dict[str, Any]] = {}
        signatures = await self._own_signatures(user_id, body.get(user_id, {}), failures)
        for target, signed in body.items():
            if target != user_id:
                signatures += await self._signatures_of_other(user_id, target, signed, failures)
        await self.store.store_signatures(user_id, signatures)
        if any(s.target_user_id == user_id for s in signatures):
            await self.hs.device_list_handler.notify_device_change(user_id)
        elif signatures:
            self.hs.notifier.wake(users=[user_id])
        return {"failures": failures}

    async def _own_signatures(self, user_id: str, signed: JsonDict, failures: dict[str, dict[str, Any]]) -> list[Signature]:
        """Signatures of the user's devices by their self-signing key, and of their master key
        by their devices."""
        if not signed:
            return []
        keys = (await self.store.get_cross_signing_keys([user_id])).get(user_id, {})
        devices = (await self.store.get_device_keys([(user_id, None)])).get(user_id, {})
        result: list[Signature] = []
        for key_id, obj in signed.items():
            try:
                if "master" in keys and key_id == _public_key(keys["master"]):
                    result += _check_master_signed_by_devices(user_id, key_id, obj, keys["master"], devices)
                else:
                    result.append(_check_device_signed(user_id, key_id, obj, keys.get("self_signing"), devices.get(key_id)))
            except MatrixError as e:
                failures.setdefault(user_id, {})[key_id] = _failure(e)
        return result

    async def _signatures_of_other(self, user_id: str, target: str, signed: JsonDict, failures: dict[str, dict[str, Any]]) -> list[Signature]:
        """A signature of another user's master key by the user's user-signing key."""
        own = (await self.store.get_cross_signing_keys([user_id])).get(user_id, {})
        theirs = (await self.store.get_cross_signing_keys([target])).get(target, {}) if is_valid_user_id(target) else {}
        result: list[Signature] = []
        for key_id, obj in signed.items():
            try:
                if "user_signing" not in own:
                    raise not_found("No user-signing key found")
                if "master" not in theirs or key_id != _public_key(theirs["master"]):
                    raise not_found("Unknown master key")
                signing_key_id, verify_key = _verify_key_of(own["user_signing"])
                _check_signature(user_id, verify_key, obj, theirs["master"])
                result.append(Signature(signing_key_id, target, key_id, obj["signatures"][user_id][signing_key_id]))
            except MatrixError as e:
                failures.setdefault(target, {})[key_id] = _failure(e)
        return result


# --- validation helpers -----------------------------------------------------------------------


def _check_device_keys(device_keys: Any, user_id: str, device_id: str) -> JsonDict:
    if not isinstance(device_keys, dict):
        raise bad_json("'device_keys' must be an object")
    if device_keys.get("user_id") != user_id:
        raise bad_json("'device_keys.user_id' does not match the authenticated user")
    if device_keys.get("device_id") != device_id:
        raise bad_json("'device_keys.device_id' does not match the authenticated device")
    algorithms, keys, signatures = device_keys.get("algorithms"), device_keys.get("keys"), device_keys.get("signatures")
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise bad_json("'device_keys.algorithms' must be a list of strings")
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise bad_json("'device_keys.keys' must map key ids to strings")
    if not isinstance(signatures, dict) or not all(isinstance(v, dict) for v in signatures.values()):
        raise bad_json("'device_keys.signatures' must map user ids to signatures")
    return {k: v for k, v in device_keys.items() if k != "unsigned"}


def _parse_key_map(value: Any, name: str) -> list[tuple[str, str, Any]]:
    """`{"<algorithm>:<key_id>": key}` -> [(algorithm, key_id, key)]; a key is a string or a
    signed object with a `key` string."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise bad_json(f"'{name}' must be an object")
    parsed = []
    for name_of_key, key in value.items():
        parts = name_of_key.split(":")
        if len(parts) != 2 or not all(parts):
            raise bad_json(f"Invalid key id {name_of_key!r} in '{name}': expected <algorithm>:<key_id>")
        if not isinstance(key, str) and not (isinstance(key, dict) and isinstance(key.get("key"), str)):
            raise bad_json(f"Key {name_of_key!r} in '{name}' must be a string or an object with a 'key'")
        parsed.append((parts[0], parts[1], key))
    return parsed


def _without_signatures(key: Any) -> Any:
    if isinstance(key, dict):
        return {k: v for k, v in key.items() if k != "signatures"}
    return key


def _stripped(obj: JsonDict) -> JsonDict:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def _public_key(key: JsonDict) -> str:
    return str(next(iter(key["keys"].values())))


def _verify_key_of(key: JsonDict) -> tuple[str, VerifyKey]:
    """(key id, verify key) of a cross-signing key; 400 when it is not a usable ed25519 key."""
    try:
        ((key_id, public),) = key["keys"].items()
        return key_id, decode_verify_key_bytes(key_id, decode_base64(public))
    except Exception as e:
        raise invalid_param("Invalid cross-signing key") from e


def _check_cross_signing_key(key: Any, user_id: str, usage: str, signed_by: VerifyKey | None = None) -> None:
    if (
        not isinstance(key, dict) or key.get("user_id") != user_id
        or not isinstance(key.get("usage"), list) or usage not in key["usage"]
        or not isinstance(key.get("keys"), dict) or len(key["keys"]) != 1
    ):
        raise invalid_param(f"Invalid {usage} key")
    _verify_key_of(key)
    if signed_by is not None:
        try:
            verify_signed_json(key, user_id, signed_by)
        except SignatureVerifyException as e:
            raise invalid_signature(f"Invalid signature on {usage} key") from e


def _check_signature(user_id: str, verify_key: VerifyKey, signed: JsonDict, stored: JsonDict) -> None:
    """`signed` must be the stored object (signatures aside), signed by `verify_key`."""
    if _stripped(signed) != _stripped(stored):
        raise invalid_param("The signed object does not match the stored key")
    try:
        verify_signed_json(signed, user_id, verify_key)
    except SignatureVerifyException as e:
        raise invalid_signature() from e


def _check_device_signed(user_id: str, device_id: str, obj: JsonDict, self_signing: JsonDict | None, stored: JsonDict | None) -> Signature:
    if self_signing is None:
        raise not_found("No self-signing key found")
    signing_key_id, verify_key = _verify_key_of(self_signing)
    if signing_key_id not in obj.get("signatures", {}).get(user_id, {}):
        raise invalid_signature("Missing signature by the self-signing key")
    if stored is None:
        raise not_found("Unknown device")
    _check_signature(user_id, verify_key, obj, stored)
    return Signature(signing_key_id, user_id, device_id, obj["signatures"][user_id][signing_key_id])


def _check_master_signed_by_devices(
    user_id: str, master_id: str, obj: JsonDict, stored_master: JsonDict, devices: dict[str, JsonDict],
) -> list[Signature]:
    """Signatures of the user's master key made with their devices' ed25519 keys (the master
    key's signature of itself, if present, is left alone)."""
    result = []
    for signing_key_id, signature in obj.get("signatures", {}).get(user_id, {}).items():
        algorithm, _, signing_device = signing_key_id.partition(":")
        if signing_device == master_id:
            continue
        public = devices.get(signing_device, {}).get("keys", {}).get(signing_key_id)
        if algorithm != "ed25519" or not isinstance(public, str):
            raise invalid_signature("Signature by an unknown device")
        try:
            verify_key = decode_verify_key_bytes(signing_key_id, decode_base64(public))
        except Exception as e:
            raise invalid_signature("The signing device's key is unusable") from e
        _check_signature(user_id, verify_key, obj, stored_master)
        result.append(Signature(signing_key_id, user_id, master_id, signature))
    if not result:
        raise invalid_signature("No signature by one of the user's devices")
    return result


def _failure(error: MatrixError) -> JsonDict:
    return {"status": error.code, "errcode": error.errcode, "error": error.msg}
