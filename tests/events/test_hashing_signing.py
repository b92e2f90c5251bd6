"""Content hashes, reference-hash event ids and signatures, checked against the spec's
test vectors and against values computed here from the spec's definitions."""

import base64
import hashlib
import json
import re
from typing import Any

import pytest
from signedjson.key import decode_signing_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import SignatureVerifyException, verify_signed_json

from homeserver.events.builder import create_local_event
from homeserver.events.event import Event
from homeserver.events.hashing import (
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
)
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import sign_pdu, verify_pdu_signature

V1 = KNOWN_ROOM_VERSIONS["1"]
SPEC_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"


def _canonical(obj: Any) -> bytes:
    """Canonical JSON for plain ASCII data, straight from the appendix's definition."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _unpadded(data: bytes, urlsafe: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return encoded.decode().rstrip("=")


# --- the appendix's cryptographic test vectors (room version 1 redaction rules) -----------

def test_spec_vector_minimal_event() -> None:
    key = decode_signing_key_base64("ed25519", "1", SPEC_SEED)
    pdu: dict[str, Any] = {
        "room_id": "!x:domain", "sender": "@a:domain", "origin": "domain",
        "origin_server_ts": 1000000, "signatures": {}, "hashes": {}, "type": "X",
        "content": {}, "prev_events": [], "auth_events": [], "depth": 3,
        "unsigned": {"age_ts": 1000000},
    }
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    sign_pdu(pdu, "domain", key, V1)
    assert pdu["hashes"]["sha256"] == "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    assert pdu["signatures"] == {"domain": {"ed25519:1": (
        "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
    )}}
    assert pdu["unsigned"] == {"age_ts": 1000000}


def test_spec_vector_redactable_event() -> None:
    key = decode_signing_key_base64("ed25519", "1", SPEC_SEED)
    pdu: dict[str, Any] = {
        "content": {"body": "Here is the message content"}, "event_id": "$0:domain",
        "origin": "domain", "origin_server_ts": 1000000, "type": "m.room.message",
        "room_id": "!r:domain", "sender": "@u:domain", "signatures": {},
        "unsigned": {"age_ts": 1000000},
    }
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    sign_pdu(pdu, "domain", key, V1)
    assert pdu["hashes"]["sha256"] == "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"
    assert pdu["signatures"]["domain"]["ed25519:1"] == (
        "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
    )
    verify_pdu_signature(V1, pdu, "domain", get_verify_key(key))


# --- content hash ------------------------------------------------------------------------

def test_content_hash_ignores_unsigned_signatures_hashes() -> None:
    pdu = {"type": "m.room.message", "content": {"body": "x"}, "depth": 1}
    expected = _unpadded(hashlib.sha256(_canonical(pdu)).digest())
    decorated = {**pdu, "unsigned": {"age": 1}, "signatures": {"a": {}}, "hashes": {"x": "y"}}
    assert compute_content_hash(pdu) == expected
    assert compute_content_hash(decorated) == expected
    assert compute_content_hash({**pdu, "depth": 2}) != expected


def test_check_content_hash() -> None:
    pdu: dict[str, Any] = {"type": "t", "content": {"a": 1}}
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    assert check_content_hash(pdu)
    pdu["content"]["a"] = 2
    assert not check_content_hash(pdu)
    assert not check_content_hash({"type": "t"})
    assert not check_content_hash({"type": "t", "hashes": {"sha256": "!!"}})


# --- reference hashes and event ids ------------------------------------------------------

def _member_pdu() -> dict[str, Any]:
    return {
        "type": "m.room.member", "room_id": "!r:test", "sender": "@u:test", "state_key": "@u:test",
        "content": {"membership": "join", "displayname": "U", "avatar_url": "mxc://a/b"},
        "origin": "test", "origin_server_ts": 1600000000000, "depth": 4,
        "prev_events": ["$prev"], "auth_events": ["$create", "$pl"],
        "hashes": {"sha256": "abc"}, "signatures": {"test": {"ed25519:k": "sig"}},
        "unsigned": {"age": 10}, "not_protected": True,
    }


def _expected_reference_hash(keep_origin: bool) -> bytes:
    """The spec's steps by hand: redact (listing the kept keys for this event), drop
    signatures and unsigned, encode canonically, sha256."""
    pdu = _member_pdu()
    kept = ["type", "room_id", "sender", "state_key", "content", "hashes", "depth",
            "prev_events", "auth_events", "origin_server_ts"] + (["origin"] if keep_origin else [])
    redacted = {k: pdu[k] for k in kept}
    redacted["content"] = {"membership": "join"}
    return hashlib.sha256(_canonical(redacted)).digest()


@pytest.mark.parametrize("version", ["3", "4", "10", "11"])
def test_reference_hash_matches_spec_definition(version: str) -> None:
    rv = KNOWN_ROOM_VERSIONS[version]
    expected = _expected_reference_hash(keep_origin=not rv.updated_redaction_rules)
    assert compute_reference_hash(rv, _member_pdu()) == expected
    urlsafe = rv.event_format == 3
    event_id = "$" + _unpadded(expected, urlsafe=urlsafe)
    assert compute_event_id(rv, _member_pdu()) == event_id
    assert Event(_member_pdu(), rv).event_id == event_id


def test_event_id_shapes() -> None:
    key = generate_signing_key("k")
    ids = {}
    for version in ("1", "3", "4"):
        rv = KNOWN_ROOM_VERSIONS[version]
        # Vary the content until the hash has a character that tells the alphabets apart.
        for n in range(200):
            event = create_local_event(
                rv, {"type": "m.room.message", "room_id": "!r:test", "sender": "@u:test",
                     "content": {"n": n}}, [], [], 1, "test", key, origin_server_ts=1)
            if version == "1" or re.search(r"[-_+/]", event.event_id):
                break
        ids[version] = event.event_id
    assert re.fullmatch(r"\$[A-Za-z0-9]+:test", ids["1"])
    assert re.fullmatch(r"\$[A-Za-z0-9+/]{43}", ids["3"]) and re.search(r"[+/]", ids["3"])
    assert re.fullmatch(r"\$[A-Za-z0-9_-]{43}", ids["4"]) and re.search(r"[-_]", ids["4"])


def test_event_id_of_v1_is_refused() -> None:
    with pytest.raises(ValueError):
        compute_event_id(V1, _member_pdu())


# --- signatures --------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "3", "6", "10", "11"])
def test_built_event_verifies_and_tampering_fails(version: str) -> None:
    rv = KNOWN_ROOM_VERSIONS[version]
    key = generate_signing_key("a_1")
    verify_key = get_verify_key(key)
    event = create_local_event(
        rv, {"type": "m.room.message", "room_id": "!r:test", "sender": "@u:test",
             "content": {"body": "hello"}}, ["$p:test"], ["$a:test"], 5, "test", key)
    pdu = event.get_pdu_json()
    assert set(pdu["signatures"]) == {"test"} and "ed25519:a_1" in pdu["signatures"]["test"]
    assert check_content_hash(pdu)
    verify_pdu_signature(rv, pdu, "test", verify_key)
    # signedjson directly, over the redacted form (content emptied for a message)
    redacted = {k: v for k, v in pdu.items() if k not in ("content", "unsigned")}
    redacted["content"] = {}
    verify_signed_json(redacted, "test", verify_key)

    # Changing redactable content breaks the hash but not the signature...
    body_changed = event.get_pdu_json()
    body_changed["content"]["body"] = "evil"
    assert not check_content_hash(body_changed)
    verify_pdu_signature(rv, body_changed, "test", verify_key)
    # ...changing a protected key breaks the signature.
    tampered = event.get_pdu_json()
    tampered["sender"] = "@mallory:test"
    with pytest.raises(SignatureVerifyException):
        verify_pdu_signature(rv, tampered, "test", verify_key)
    tampered_hash = event.get_pdu_json()
    tampered_hash["hashes"]["sha256"] = compute_content_hash(body_changed)
    with pytest.raises(SignatureVerifyException):
        verify_pdu_signature(rv, tampered_hash, "test", verify_key)
    with pytest.raises(SignatureVerifyException):
        verify_pdu_signature(rv, pdu, "test", get_verify_key(generate_signing_key("a_1")))
    with pytest.raises(SignatureVerifyException):
        verify_pdu_signature(rv, pdu, "elsewhere", verify_key)


def test_signature_survives_redaction() -> None:
    from homeserver.events.redaction import prune_event_dict

    rv = KNOWN_ROOM_VERSIONS["10"]
    key = generate_signing_key("k")
    event = create_local_event(
        rv, {"type": "m.room.message", "room_id": "!r:test", "sender": "@u:test",
             "content": {"body": "secret"}}, [], [], 1, "test", key)
    redacted = prune_event_dict(rv, event.get_pdu_json())
    verify_pdu_signature(rv, redacted, "test", get_verify_key(key))
    assert Event(redacted, rv).event_id == event.event_id
