"""TURN credentials for VoIP clients: time-limited ones derived from a secret shared with the
TURN server (the TURN REST API scheme), or a static username and password."""

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from homeserver.util.clock import now_ms

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def turn_password(secret: str, username: str) -> str:
    """base64 of HMAC-SHA1(secret, username), which the TURN server recomputes."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class VoipHandler:
    def __init__(self, hs: "HomeServer"):
        self.config = hs.config.voip

    def turn_server(self, user_id: str) -> dict[str, Any]:
        """The `/voip/turnServer` body; `{}` when no TURN server is configured."""
        config = self.config
        lifetime = config.turn_user_lifetime_ms
        if not config.turn_uris or lifetime <= 0:
            return {}
        if config.turn_shared_secret:
            username = f"{(now_ms() + lifetime) // 1000}:{user_id}"
            password = turn_password(config.turn_shared_secret, username)
        elif config.turn_username and config.turn_password:
            username, password = config.turn_username, config.turn_password
        else:
            return {}
        return {"username": username, "password": password, "ttl": lifetime // 1000, "uris": list(config.turn_uris)}
