"""Content hashes, reference hashes and the event ids derived from them.

All functions take the PDU as a plain dict; for room versions 1 and 2 the dict includes
its `event_id`, which those versions hash like any other key.
"""

import hashlib
from typing import Any

from canonicaljson import encode_canonical_json
from unpaddedbase64 import decode_base64, encode_base64

from homeserver.events.redaction import pruned_view
from homeserver.events.room_versions import RoomVersion

_NOT_IN_CONTENT_HASH = ("unsigned", "signatures", "hashes")


def _content_hash_bytes(pdu: dict[str, Any]) -> bytes:
    hashed = {key: value for key, value in pdu.items() if key not in _NOT_IN_CONTENT_HASH}
    return hashlib.sha256(encode_canonical_json(hashed)).digest()


def compute_content_hash(pdu: dict[str, Any]) -> str:
    """The sha256 content hash of the whole PDU, in unpadded base64 (for `hashes.sha256`)."""
    return encode_base64(_content_hash_bytes(pdu))


def check_content_hash(pdu: dict[str, Any]) -> bool:
    """Whether `pdu["hashes"]["sha256"]` matches its content; False when missing or garbled."""
    hashes = pdu.get("hashes")
    claimed = hashes.get("sha256") if isinstance(hashes, dict) else None
    if not isinstance(claimed, str):
        return False
    try:
        return decode_base64(claimed) == _content_hash_bytes(pdu)
    except Exception:  # malformed base64
        return False


def compute_reference_hash(room_version: RoomVersion, pdu: dict[str, Any]) -> bytes:
    """sha256 over the canonical JSON of the redacted PDU without signatures or unsigned."""
    redacted = pruned_view(room_version, pdu)
    redacted.pop("signatures", None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def compute_event_id(room_version: RoomVersion, pdu: dict[str, Any]) -> str:
    """The `$`-prefixed reference-hash event id (room versions 3 and later)."""
    if room_version.event_format == 1:
        raise ValueError(f"room version {room_version.identifier} event ids are not hashes")
    digest = compute_reference_hash(room_version, pdu)
    return "$" + encode_base64(digest, urlsafe=room_version.event_format >= 3)
