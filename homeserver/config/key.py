"""The server's signing key and the other generated secrets (`macaroon_secret_key`, `form_secret`)."""

import os

from signedjson.key import decode_signing_key_base64, generate_signing_key, write_signing_keys

from homeserver.config._base import RawConfig, Section


def write_new_signing_key(path: str) -> None:
    key = generate_signing_key("a_" + os.urandom(2).hex())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        write_signing_keys(f, [key])


def read_signing_key(path: str):  # type: ignore[no-untyped-def]
    """Parse a Synapse-format key file: one line `ed25519 <version> <base64 seed>`."""
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "ed25519":
                return decode_signing_key_base64(parts[0], parts[1], parts[2])
    raise ValueError("no `ed25519 <version> <key>` line found")


class KeyConfig(Section):
    SCHEMA = {
        "signing_key_path": {"type": "string"},
        "macaroon_secret_key": {"type": "string", "minLength": 1},
        "form_secret": {"type": "string"},
        "old_signing_keys": {"type": ["object", "null"]},
        "key_refresh_interval": {"type": "string"},
        "trusted_key_servers": {"type": "array"},
        "suppress_key_server_warning": {"type": "boolean"},
        "key_server_signing_keys_path": {"type": "string"},
    }

    def read(self, raw: RawConfig) -> None:
        self.signing_key_path: str = raw.get("signing_key_path") or f"{raw.get('server_name')}.signing.key"
        try:
            self.signing_key = read_signing_key(self.signing_key_path)
        except OSError as e:
            raise raw.error(f"cannot read {self.signing_key_path}: {e.strerror}", "signing_key_path") from e
        except ValueError as e:
            raise raw.error(f"{self.signing_key_path} is not a signing key file: {e}", "signing_key_path") from e
        self.macaroon_secret_key: str | None = raw.get("macaroon_secret_key")
        self.form_secret: str | None = raw.get("form_secret")
