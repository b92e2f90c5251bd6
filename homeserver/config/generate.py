"""`--generate-config`: write a commented starting config with freshly generated secrets."""

import json
import os
import secrets

from homeserver.config.key import write_new_signing_key

TEMPLATE = """\
# Configuration of the Matrix homeserver {server_name}.
# Key names follow Synapse's documented configuration; see docs/configuration.md.
# This file holds secrets: keep it readable only by the user the server runs as.

# The domain part of every user id on this server. It cannot be changed later.
server_name: "{server_name}"

# The URL clients use to reach the server (through your reverse proxy).
public_baseurl: "{public_baseurl}"

# Where the main process writes its pid (used by synctl).
pid_file: "{data_dir}/homeserver.pid"

listeners:
  # Client (and later federation) traffic. Put a TLS-terminating reverse proxy in front.
  - port: {port}
    type: http
    bind_addresses: ["127.0.0.1"]
    x_forwarded: true
    resources:
      - names: [client, federation, health]
  # Prometheus metrics; keep it private.
  # - port: 9000
  #   type: metrics
  #   bind_addresses: ["127.0.0.1"]

# SQLite suits a single process. Workers need PostgreSQL:
#   database:
#     name: psycopg2
#     args: {{user: synapse, password: secret, dbname: synapse, host: localhost, cp_min: 5, cp_max: 10}}
{database_section}
# Redis carries replication between processes; required once you add workers.
redis:
  enabled: false
  # host: localhost
  # port: 6379

# Log to stderr at INFO unless a Python logging config file is given here.
# log_config: "{data_dir}/log.config"

# Anyone may register an account when both are true (no email or captcha check exists yet).
enable_registration: {open_registration}
enable_registration_without_verification: {open_registration}

# Lets admins create users with register_new_matrix_user. Keep it secret.
registration_shared_secret: "{registration_shared_secret}"

# Secrets used to sign tokens and forms. Keep them secret; changing them logs out sessions.
macaroon_secret_key: "{macaroon_secret_key}"
form_secret: "{form_secret}"

# The server's ed25519 signing key, generated with this file.
signing_key_path: "{signing_key_path}"

# Largest media upload accepted.
max_upload_size: 50M

# Cost factor of password hashes.
bcrypt_rounds: 12

# Rate limits (per_second, burst_count). These are the defaults:
# rc_message: {{per_second: 0.2, burst_count: 10}}
# rc_registration: {{per_second: 0.17, burst_count: 3}}
# rc_login:
#   address: {{per_second: 0.003, burst_count: 5}}
#   account: {{per_second: 0.003, burst_count: 5}}
#   failed_attempts: {{per_second: 0.17, burst_count: 3}}

report_stats: false
"""


def generate_config(
    config_path: str,
    server_name: str,
    data_dir: str | None = None,
    port: int = 8008,
    public_baseurl: str | None = None,
    open_registration: bool = False,
    postgres: dict[str, str | int] | None = None,
) -> None:
    """Write `config_path` and a signing key beside it; refuses to overwrite an existing config."""
    if os.path.exists(config_path):
        raise FileExistsError(f"{config_path} already exists; not overwriting it")
    data_dir = os.path.abspath(data_dir or os.path.dirname(os.path.abspath(config_path)))
    os.makedirs(data_dir, exist_ok=True)
    signing_key_path = os.path.join(data_dir, f"{server_name}.signing.key")
    if not os.path.exists(signing_key_path):
        write_new_signing_key(signing_key_path)
    text = TEMPLATE.format(
        server_name=server_name,
        public_baseurl=public_baseurl or f"http://localhost:{port}/",
        data_dir=data_dir,
        port=port,
        registration_shared_secret=secrets.token_urlsafe(32),
        macaroon_secret_key=secrets.token_urlsafe(32),
        form_secret=secrets.token_urlsafe(32),
        signing_key_path=signing_key_path,
        open_registration="true" if open_registration else "false",
        database_section=_database_section(data_dir, postgres),
    )
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _database_section(data_dir: str, postgres: dict[str, str | int] | None) -> str:
    if postgres is None:
        return f'database:\n  name: sqlite3\n  args:\n    database: "{data_dir}/homeserver.db"\n'
    lines = ["database:", "  name: psycopg2", "  args:"]
    lines += [f"    {key}: {json.dumps(value)}" for key, value in postgres.items()]
    lines += ["    cp_min: 5", "    cp_max: 10"]
    return "\n".join(lines) + "\n"
