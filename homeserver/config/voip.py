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
        "turn_uris": {
            "type": "array", "items": {"type": "string"},
            "description": "TURN server URIs handed to clients by `/voip/turnServer`, such as "
            "`turn:turn.example.org:3478?transport=udp`. Default: none, and that endpoint then "
            "answers `{}`.",
        },
        "turn_shared_secret": {
            "type": "string",
            "description": "A secret shared with the TURN server (coturn's "
            "`static-auth-secret`): clients get credentials made from it that expire after "
            "`turn_user_lifetime`. Preferred over `turn_username` and `turn_password`.",
        },
        "turn_shared_secret_path": {
            "type": "string",
            "description": "A file holding `turn_shared_secret` (surrounding whitespace is "
            "dropped). Set one of the two.",
        },
        "turn_username": {
            "type": "string",
            "description": "A fixed TURN user name handed to every client, used with "
            "`turn_password` when no shared secret is set.",
        },
        "turn_password": {
            "type": "string",
            "description": "The fixed TURN password that goes with `turn_username`.",
        },
        "turn_user_lifetime": {
            "type": ["integer", "string"],
            "description": "How long TURN credentials stay valid: milliseconds, or a number with "
            "`ms`, `s`, `m`, `h`, `d`, `w` or `y`. Default `1h`.",
        },
        "turn_allow_guests": {
            "type": "boolean",
            "description": "Whether guest accounts may fetch TURN credentials. Default `true`.",
        },
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
