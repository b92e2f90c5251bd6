"""The `rc_*` rate-limit settings: each a token bucket of `per_second` and `burst_count`."""

from dataclasses import dataclass
from typing import Any

from homeserver.config._base import RawConfig, Section

_LIMIT = {
    "type": "object",
    "properties": {
        "per_second": {"type": "number", "minimum": 0},
        "burst_count": {"type": "number", "minimum": 0},
    },
}


def _nested(*names: str) -> dict[str, Any]:
    return {"type": "object", "properties": {n: _LIMIT for n in names}}


@dataclass(frozen=True)
class RateLimit:
    per_second: float
    burst_count: float


# Synapse's documented defaults.
DEFAULTS = {
    "rc_message": RateLimit(0.2, 10),
    "rc_registration": RateLimit(0.17, 3),
    "rc_login.address": RateLimit(0.003, 5),
    "rc_login.account": RateLimit(0.003, 5),
    "rc_login.failed_attempts": RateLimit(0.17, 3),
    "rc_admin_redaction": RateLimit(1, 50),
    "rc_joins.local": RateLimit(0.1, 10),
    "rc_joins.remote": RateLimit(0.01, 10),
    "rc_3pid_validation": RateLimit(0.003, 5),
    "rc_invites.per_room": RateLimit(0.3, 10),
    "rc_invites.per_user": RateLimit(0.003, 5),
    "rc_invites.per_issuer": RateLimit(0.3, 10),
    "rc_key_requests": RateLimit(20, 100),
    "rc_presence.per_user": RateLimit(0.1, 1),
    "rc_delayed_event_mgmt": RateLimit(1, 5),
    "rc_reports": RateLimit(1, 5),
}


class RatelimitConfig(Section):
    SCHEMA = {
        "rc_message": _LIMIT,
        "rc_registration": _LIMIT,
        "rc_registration_token_validity": _LIMIT,
        "rc_login": _nested("address", "account", "failed_attempts"),
        "rc_admin_redaction": _LIMIT,
        "rc_joins": _nested("local", "remote"),
        "rc_joins_per_room": _LIMIT,
        "rc_3pid_validation": _LIMIT,
        "rc_invites": _nested("per_room", "per_user", "per_issuer"),
        "rc_third_party_invite": _LIMIT,
        "rc_key_requests": _LIMIT,
        "rc_presence": _nested("per_user"),
        "rc_delayed_event_mgmt": _LIMIT,
        "rc_reports": _LIMIT,
        "rc_federation": {"type": "object"},
        "federation_rr_transactions_per_room_per_second": {"type": "integer"},
    }

    def read(self, raw: RawConfig) -> None:
        self.limits: dict[str, RateLimit] = {}
        for key, default in DEFAULTS.items():
            top, _, sub = key.partition(".")
            section = raw.get(top) or {}
            if sub:
                section = section.get(sub) or {}
            self.limits[key] = RateLimit(
                float(section.get("per_second", default.per_second)),
                float(section.get("burst_count", default.burst_count)),
            )

    def get(self, key: str) -> RateLimit:
        return self.limits[key]
