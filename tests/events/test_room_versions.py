"""The room version table: formats and the version each behaviour starts in."""

import pytest

from homeserver.events.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS

# flag -> first room version where it is true
_FIRST = {
    "enforce_key_validity": 5,
    "strict_canonicaljson": 6,
    "limit_notifications_power_levels": 6,
    "knock_join_rule": 7,
    "restricted_join_rule": 8,
    "restricted_join_rule_fix": 9,
    "knock_restricted_join_rule": 10,
    "enforce_int_power_levels": 10,
    "updated_redaction_rules": 11,
    "implicit_room_creator": 11,
    "redacts_in_content": 11,
}
# flag -> last room version where it is true
_LAST = {"special_case_aliases_auth": 5, "redaction_rule_in_auth": 2, "event_id_has_domain": 2}


def test_known_versions() -> None:
    assert list(KNOWN_ROOM_VERSIONS) == [str(n) for n in range(1, 12)]
    assert DEFAULT_ROOM_VERSION == "10"
    assert all(v.identifier == k for k, v in KNOWN_ROOM_VERSIONS.items())


@pytest.mark.parametrize("number", range(1, 12))
def test_flags(number: int) -> None:
    rv = KNOWN_ROOM_VERSIONS[str(number)]
    assert rv.event_format == (1 if number <= 2 else 2 if number == 3 else 3)
    assert rv.state_res == (1 if number == 1 else 2)
    for flag, first in _FIRST.items():
        assert getattr(rv, flag) is (number >= first), flag
    for flag, last in _LAST.items():
        assert getattr(rv, flag) is (number <= last), flag


def test_frozen() -> None:
    with pytest.raises(AttributeError):
        KNOWN_ROOM_VERSIONS["1"].knock_join_rule = True  # type: ignore[misc]
