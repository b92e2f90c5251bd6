"""Random identifiers and tokens, and the grammar of Matrix identifiers."""

import re
import secrets
import string

_TOKEN_ALPHABET = string.ascii_letters + string.digits
_DEVICE_ALPHABET = string.ascii_uppercase

# The user id localpart grammar of the spec (historical characters are not accepted for new users).
LOCALPART_RE = re.compile(r"^[a-z0-9._=\-/+]+$")


def random_string(length: int, alphabet: str = _TOKEN_ALPHABET) -> str:
    """A string of `length` characters drawn from a cryptographic source."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_device_id() -> str:
    return random_string(10, _DEVICE_ALPHABET)


def new_access_token(localpart: str) -> str:
    """An opaque access token; the prefix only helps admins recognise tokens in the wild."""
    return "syt_" + secrets.token_urlsafe(30)


def user_id_localpart(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


def make_user_id(localpart: str, server_name: str) -> str:
    return f"@{localpart}:{server_name}"


def is_valid_user_id(user_id: str) -> bool:
    if not user_id.startswith("@") or ":" not in user_id:
        return False
    localpart, _, domain = user_id[1:].partition(":")
    return bool(localpart) and bool(domain) and len(user_id) <= 255
