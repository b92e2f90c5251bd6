"""ed25519 signatures on PDUs: signing our own events and checking another server's.

Signatures cover the redacted form of the event (which includes the content hash), so they
stay valid when the event is later redacted.
"""

from typing import Any

from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json

from homeserver.events.redaction import pruned_view
from homeserver.events.room_versions import RoomVersion

__all__ = ["SignatureVerifyException", "sign_pdu", "verify_pdu_signature"]


def sign_pdu(
    pdu: dict[str, Any], server_name: str, signing_key: Any, room_version: RoomVersion
) -> None:
    """Add `signatures[server_name]["ed25519:<key version>"]` to `pdu` in place.

    `pdu` should already carry its `hashes`. `room_version` decides what redaction keeps,
    hence what the signature covers.
    """
    redacted = pruned_view(room_version, pdu)
    redacted.pop("signatures", None)
    signed = sign_json(redacted, server_name, signing_key)
    signatures = pdu.setdefault("signatures", {})
    signatures.setdefault(server_name, {}).update(signed["signatures"][server_name])


def verify_pdu_signature(
    room_version: RoomVersion, pdu: dict[str, Any], server_name: str, verify_key: Any
) -> None:
    """Raise SignatureVerifyException unless `pdu` carries a valid signature of
    `server_name` made with `verify_key` (whose `version` names the key)."""
    redacted = pruned_view(room_version, pdu)
    verify_signed_json(redacted, server_name, verify_key)
