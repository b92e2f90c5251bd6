"""`presence` (and the older top-level `use_presence`): whether users' online status is
tracked and shared, and the timers of the presence state machine."""

from typing import Any

from homeserver.config._base import RawConfig, Section
from homeserver.config.voip import parse_duration_ms

_DURATION = {"type": ["integer", "string"]}


class PresenceConfig(Section):
    SCHEMA = {
        "use_presence": {
            "type": "boolean",
            "description": "The older form of `presence.enabled`, read only when that is not "
            "set. Default `true`.",
        },
        "presence": {
            "type": ["object", "null"],
            "description": "Whether users' online status is tracked and shared, and the timers "
            "that move users between online, unavailable and offline.",
            "properties": {
                "enabled": {
                    "anyOf": [{"type": "boolean"}, {"const": "untracked"}],
                    "description": "`true` tracks and shares presence. `false` switches it off: "
                    "nothing in `/sync`, `GET` answers offline and `PUT` is accepted and "
                    "ignored. `untracked` serves stored presence but ignores clients' updates and "
                    "activity. Default `true`.",
                },
                "include_offline_users_on_sync": {
                    "type": "boolean",
                    "description": "When true, an initial sync also lists room-mates who are "
                    "offline. Default `false`.",
                },
                "last_active_granularity": {
                    **_DURATION,
                    "description": "How long after their last activity a user still counts as "
                    "currently active. Default `1m`. Durations are milliseconds or a number with "
                    "`ms`, `s`, `m`, `h`, `d`, `w` or `y`. This server's own setting (Synapse "
                    "fixes the value).",
                },
                "sync_online_timeout": {
                    **_DURATION,
                    "description": "A user with no sync in progress whose last sync ended this "
                    "long ago becomes offline. Default `30s`. This server's own setting.",
                },
                "idle_timeout": {
                    **_DURATION,
                    "description": "An online user with no activity for this long becomes "
                    "unavailable; it must be longer than `last_active_granularity`. Default `5m`. "
                    "This server's own setting.",
                },
            },
        },
    }

    def read(self, raw: RawConfig) -> None:
        section = raw.get("presence") or {}
        enabled = section.get("enabled")
        if enabled is None:
            enabled = raw.get("use_presence", True)
        # Whether presence is served at all, and whether clients' activity changes it.
        self.enabled = bool(enabled)
        self.track = self.enabled and enabled != "untracked"
        self.include_offline_users_on_sync = bool(section.get("include_offline_users_on_sync", False))
        self.last_active_granularity_ms = self._duration(raw, section, "last_active_granularity", "1m")
        self.sync_online_timeout_ms = self._duration(raw, section, "sync_online_timeout", "30s")
        self.idle_timeout_ms = self._duration(raw, section, "idle_timeout", "5m")
        if self.idle_timeout_ms <= self.last_active_granularity_ms:
            raise raw.error("must be greater than presence.last_active_granularity", "presence", "idle_timeout")

    @staticmethod
    def _duration(raw: RawConfig, section: dict[str, Any], key: str, default: str) -> int:
        try:
            value = parse_duration_ms(section.get(key, default))
        except ValueError as e:
            raise raw.error(str(e), "presence", key) from e
        if value <= 0:
            raise raw.error("must be a positive duration", "presence", key)
        return value
