"""The `rc_*` rate-limit settings: each a token bucket of `per_second` and `burst_count`."""

from dataclasses import dataclass
from typing import Any

from homeserver.config._base import RawConfig, Section

_LIMIT = {
    "type": "object",
    "properties": {
        "per_second": {
            "type": "number", "minimum": 0,
            "description": "How fast the allowance refills: actions per second in the long run. "
            "A limit whose `per_second` and `burst_count` are both 0 is switched off.",
        },
        "burst_count": {
            "type": "number", "minimum": 0,
            "description": "How many actions may come in quick succession before the rate "
            "applies.",
        },
    },
}


def _limit(description: str) -> dict[str, Any]:
    """`_LIMIT`, described."""
    return {**_LIMIT, "description": description}


def _nested(description: str, **parts: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {name: _limit(text) for name, text in parts.items()},
    }


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
        "rc_message": _limit(
            "Limits how fast each user may send events with `PUT /rooms/{roomId}/send/...`. "
            "Default 0.2 per second, burst 10."
        ),
        "rc_registration": _limit(
            "Limits registration requests (`/register`, `/register/available`) per client "
            "address. Default 0.17 per second, burst 3."
        ),
        "rc_registration_token_validity": _limit(
            "Synapse's limit on checking registration tokens. Accepted and ignored: registration "
            "tokens are not supported."
        ),
        "rc_login": _nested(
            "Limits on `/login`, in three parts.",
            address="Login attempts per client address. Default 0.003 per second, burst 5.",
            account="Successful logins per account. Default 0.003 per second, burst 5.",
            failed_attempts="Failed logins per account name tried. Default 0.17 per second, "
            "burst 3.",
        ),
        "rc_admin_redaction": _limit(
            "Limit on redactions by room admins. Read (default 1 per second, burst 50) but not "
            "enforced yet."
        ),
        "rc_joins": _nested(
            "Limits on joining rooms, per user.",
            local="Joins to rooms this server is in (re-joining a room one is in does not count). "
            "Default 0.1 per second, burst 10.",
            remote="Joins to rooms on other servers (read; no federation yet). Default 0.01 per "
            "second, burst 10.",
        ),
        "rc_joins_per_room": _limit(
            "Synapse's limit on joins to any one room. Accepted and ignored."
        ),
        "rc_3pid_validation": _limit(
            "Limit on requests to validate an email address or phone number. Read (default "
            "0.003 per second, burst 5) but not enforced yet."
        ),
        "rc_invites": _nested(
            "Limits on invites; an invite must fit all three.",
            per_room="Invites into one room. Default 0.3 per second, burst 10.",
            per_user="Invites received by one user. Default 0.003 per second, burst 5.",
            per_issuer="Invites sent by one user. Default 0.3 per second, burst 10.",
        ),
        "rc_third_party_invite": _limit(
            "Synapse's limit on invites by email address. Accepted and ignored."
        ),
        "rc_key_requests": _limit(
            "Limit on requests for other users' encryption keys. Read (default 20 per second, "
            "burst 100) but not enforced yet."
        ),
        "rc_presence": _nested(
            "Limits on presence updates.",
            per_user="Presence changes per user: `PUT /presence/{userId}/status` answers 429 "
            "over the limit, while `/sync` with `set_presence` has a bucket of its own and over "
            "the limit just leaves presence as it is. Default 0.1 per second, burst 1.",
        ),
        "rc_delayed_event_mgmt": _limit(
            "Limit on managing delayed events. Read (default 1 per second, burst 5) but not "
            "enforced yet."
        ),
        "rc_reports": _limit(
            "Limits how often each user may report events and rooms. Default 1 per second, "
            "burst 5."
        ),
        "rc_federation": {
            "type": "object",
            "description": "Synapse's limits on requests from other servers. Accepted and "
            "ignored: this server does not federate yet.",
        },
        "federation_rr_transactions_per_room_per_second": {
            "type": "integer",
            "description": "Synapse's pacing of read receipts sent to other servers. Accepted and "
            "ignored: this server does not federate yet.",
        },
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
