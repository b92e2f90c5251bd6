"""Room versions 1 to 11: one frozen record per version naming each behaviour that differs.

Code elsewhere asks a flag (`room_version.knock_join_rule`) rather than comparing version
strings, so that a new version is one new record here.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class RoomVersion:
    """The behaviour switches of one room version."""

    identifier: str
    # 1: event_id inside the PDU ($random:server); 2: reference-hash ids, standard base64;
    # 3: reference-hash ids, URL-safe base64.
    event_format: int
    # 1: the original state resolution algorithm; 2: state resolution v2.
    state_res: int
    # Signing keys must be used within their valid_until_ts (v5+).
    enforce_key_validity: bool
    # m.room.aliases is authorised by the sender's server only, and its `aliases`
    # survive redaction (v1-v5).
    special_case_aliases_auth: bool
    # Integers must be within +/-(2**53-1) and floats are forbidden (v6+).
    strict_canonicaljson: bool
    # The `notifications` key of m.room.power_levels is checked like the others (v6+).
    limit_notifications_power_levels: bool
    # The `knock` join rule and membership exist (v7+).
    knock_join_rule: bool
    # The `restricted` join rule exists; join_rules keep `allow` under redaction (v8+).
    restricted_join_rule: bool
    # Member events keep `join_authorised_via_users_server` under redaction (v9+).
    restricted_join_rule_fix: bool
    # The `knock_restricted` join rule exists (v10+).
    knock_restricted_join_rule: bool
    # Power levels must be JSON integers, not strings (v10+).
    enforce_int_power_levels: bool
    # The redaction algorithm of v11 (create keeps all content, power levels keep
    # `invite`, redaction keeps `redacts`, top-level origin/membership/prev_state dropped).
    updated_redaction_rules: bool
    # m.room.create has no `creator`; the sender is the creator (v11+).
    implicit_room_creator: bool
    # m.room.redaction carries `redacts` in content rather than at top level (v11+).
    redacts_in_content: bool
    # The authorization rules check m.room.redaction against the redact level or the
    # event id domains (v1/v2); from v3 that check happens when applying the redaction.
    redaction_rule_in_auth: bool
    # The event id must have the sender's domain (v1/v2 only: ids are `$x:server`).
    event_id_has_domain: bool


def _version(identifier: str, **flags: object) -> RoomVersion:
    """Build a version from the defaults of v1 overridden by `flags`."""
    base: dict[str, object] = {
        "identifier": identifier,
        "event_format": 1,
        "state_res": 1,
        "enforce_key_validity": False,
        "special_case_aliases_auth": True,
        "strict_canonicaljson": False,
        "limit_notifications_power_levels": False,
        "knock_join_rule": False,
        "restricted_join_rule": False,
        "restricted_join_rule_fix": False,
        "knock_restricted_join_rule": False,
        "enforce_int_power_levels": False,
        "updated_redaction_rules": False,
        "implicit_room_creator": False,
        "redacts_in_content": False,
        "redaction_rule_in_auth": True,
        "event_id_has_domain": True,
    }
    base.update(flags)
    return RoomVersion(**base)  # type: ignore[arg-type]


_V2 = {"state_res": 2}
_V3 = {**_V2, "event_format": 2, "redaction_rule_in_auth": False, "event_id_has_domain": False}
_V4 = {**_V3, "event_format": 3}
_V5 = {**_V4, "enforce_key_validity": True}
_V6 = {
    **_V5,
    "special_case_aliases_auth": False,
    "strict_canonicaljson": True,
    "limit_notifications_power_levels": True,
}
_V7 = {**_V6, "knock_join_rule": True}
_V8 = {**_V7, "restricted_join_rule": True}
_V9 = {**_V8, "restricted_join_rule_fix": True}
_V10 = {**_V9, "knock_restricted_join_rule": True, "enforce_int_power_levels": True}
_V11 = {
    **_V10,
    "updated_redaction_rules": True,
    "implicit_room_creator": True,
    "redacts_in_content": True,
}

V1 = _version("1")
V2 = _version("2", **_V2)
V3 = _version("3", **_V3)
V4 = _version("4", **_V4)
V5 = _version("5", **_V5)
V6 = _version("6", **_V6)
V7 = _version("7", **_V7)
V8 = _version("8", **_V8)
V9 = _version("9", **_V9)
V10 = _version("10", **_V10)
V11 = _version("11", **_V11)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v for v in (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11)
}

DEFAULT_ROOM_VERSION = "10"
