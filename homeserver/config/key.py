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
        "signing_key_path": {
            "type": "string",
            "description": "The file holding the server's ed25519 signing key, in Synapse's "
            "format (`ed25519 <version> <key>`). Default `<server_name>.signing.key`, relative to "
            "the working directory. `--generate-config` creates one.",
        },
        "macaroon_secret_key": {
            "type": "string", "minLength": 1,
            "description": "A secret made by `--generate-config`. Accepted and kept, but not used "
            "yet: access tokens here are random strings looked up in the database.",
        },
        "form_secret": {
            "type": "string",
            "description": "A secret made by `--generate-config`. Accepted and kept, but not used "
            "yet.",
        },
        "old_signing_keys": {
            "type": ["object", "null"],
            "description": "Synapse's record of retired signing keys, for other servers to check "
            "old events. Accepted and ignored: this server does not federate yet.",
        },
        "key_refresh_interval": {
            "type": "string",
            "description": "How long other servers may cache Synapse's published keys. Accepted "
            "and ignored.",
        },
        "trusted_key_servers": {
            "type": "array",
            "description": "Servers Synapse asks for other servers' keys. Accepted and ignored: "
            "this server does not federate yet.",
        },
        "suppress_key_server_warning": {
            "type": "boolean",
            "description": "Silences Synapse's warning about using matrix.org as a key server. "
            "Accepted and ignored.",
        },
        "key_server_signing_keys_path": {
            "type": "string",
            "description": "Extra keys Synapse signs key-server answers with. Accepted and "
            "ignored.",
        },
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
