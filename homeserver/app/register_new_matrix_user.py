"""`register_new_matrix_user`: create an account through the admin shared-secret API.

    register_new_matrix_user -c homeserver.yaml [-u USER] [-p PASSWORD] [-a|--no-admin] [URL]

The shared secret is read from the config (`registration_shared_secret` or its `_path`) or
given with `-k`. The URL defaults to http://localhost:8008.
"""

import argparse
import getpass
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from homeserver.handlers.register import shared_secret_mac


def _request(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:
        try:
            err = json.loads(e.read())
            message = f"{err.get('errcode')}: {err.get('error')}"
        except ValueError:
            message = str(e)
        raise SystemExit(f"Error: {message}") from None
    except urllib.error.URLError as e:
        raise SystemExit(f"Error: cannot reach {url}: {e.reason}") from None


def register(server_url: str, secret: str, user: str, password: str, admin: bool, user_type: str | None = None) -> dict[str, Any]:
    url = server_url.rstrip("/") + "/_synapse/admin/v1/register"
    nonce = _request(url)["nonce"]
    body = {
        "nonce": nonce, "username": user, "password": password, "admin": admin,
        "mac": shared_secret_mac(secret, nonce, user, password, admin, user_type),
    }
    if user_type:
        body["user_type"] = user_type
    return _request(url, body)


def _secret_from_config(paths: list[str]) -> str | None:
    from homeserver.config.homeserver import read_raw

    raw = read_raw(paths)
    secret = raw.get("registration_shared_secret")
    path = raw.get("registration_shared_secret_path")
    if not secret and path:
        with open(path) as f:
            secret = f.read().strip()
    return secret  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Register a new user on a homeserver using the shared secret.")
    parser.add_argument("-u", "--user", help="local part of the new user")
    parser.add_argument("-p", "--password", help="the new user's password (asked for when missing)")
    parser.add_argument("-t", "--user_type", help="user type, e.g. 'bot' or 'support'")
    admin = parser.add_mutually_exclusive_group()
    admin.add_argument("-a", "--admin", action="store_true", default=None, help="make the user a server admin")
    admin.add_argument("--no-admin", dest="admin", action="store_false", help="make a regular user")
    parser.add_argument("-c", "--config", action="append", default=[], help="config file(s) holding the shared secret")
    parser.add_argument("-k", "--shared-secret", help="the shared secret, instead of a config file")
    parser.add_argument("server_url", nargs="?", default="http://localhost:8008")
    args = parser.parse_args(argv)

    secret = args.shared_secret
    if not secret and args.config:
        from homeserver.config import ConfigError

        try:
            secret = _secret_from_config(args.config)
        except (ConfigError, OSError) as e:
            raise SystemExit(f"Error: {e}") from None
    if not secret:
        raise SystemExit("Error: no shared secret: give -k SECRET or -c a config with registration_shared_secret")
    user = args.user or input("New user localpart: ").strip()
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Confirm password: "):
            raise SystemExit("Error: passwords do not match")
    is_admin = args.admin
    if is_admin is None:
        is_admin = input("Make admin [no]: ").strip().lower() in ("y", "yes", "true")
    result = register(args.server_url, secret, user, password, bool(is_admin), args.user_type)
    print(f"Registered {result['user_id']}")


if __name__ == "__main__":
    main(sys.argv[1:])
