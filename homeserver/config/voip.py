"""TURN servers handed to VoIP clients by `/voip/turnServer`: `turn_uris`, a shared secret
for time-limited credentials or a static username and password, their lifetime and whether
guests may have them."""

import re

from homeserver.config._base import RawConfig, Section

_DURATION_RE = re.compile(r"^(\d+)\s*(ms|s|m|h|d|w|y)?$")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}


def parse_duration_ms(value: int | str) -> int:
    """Synapse's durations: an int is milliseconds; a string is a number with an optional
    unit (`ms`, `s`, `m`, `h`, `d`, `w`, `y`; none means milliseconds)."""
    if isinstance(value, int):
        return value
    match = _DURATION_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 30s, 1h or 7d")
    return int(match.group(1)) * _DURATION_MS[match.group(2) or "ms"]


class VoipConfig(Section):
    SCHEMA = {
        "turn_uris": {"type": "array", "items": {"type": "string"}},
        "turn_shared_secret": {"type": "string"},
        "turn_shared_secret_path": {"type": "string"},
        "turn_username": {"type": "string"},
        "turn_password": {"type": "string"},
        "turn_user_lifetime": {"type": ["integer", "string"]},
        "turn_allow_guests": {"type": "boolean"},
    }

    def read(self, raw: RawConfig) -> None:
        self.turn_uris: list[str] = list(raw.get("turn_uris") or [])
        self.turn_shared_secret: str | None = raw.get("turn_shared_secret")
        path = raw.get("turn_shared_secret_path")
        if path and self.turn_shared_secret:
            raise raw.error("set one of turn_shared_secret and its _path, not both", "turn_shared_secret_path")
        if path:
            try:
                with open(path) as f:
                    self.turn_shared_secret = f.read().strip()
            except OSError as e:
                raise raw.error(f"cannot read the file: {e.strerror}", "turn_shared_secret_path") from e
        self.turn_username: str | None = raw.get("turn_username")
        self.turn_password: str | None = raw.get("turn_password")
        try:
            self.turn_user_lifetime_ms = parse_duration_ms(raw.get("turn_user_lifetime", "1h"))
        except ValueError as e:
            raise raw.error(str(e), "turn_user_lifetime") from e
        self.turn_allow_guests = bool(raw.get("turn_allow_guests", True))
