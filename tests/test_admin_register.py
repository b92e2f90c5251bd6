"""Shared-secret registration: /_synapse/admin/v1/register (nonce + HMAC-SHA1) and the
`register_new_matrix_user` console script."""

import os
import subprocess
import sys
from typing import Any

from tests.harness import Client, ServerProcess
from tests.test_accounts import PASSWORD, admin_mac, assert_error, try_login, user_row

ADMIN_REGISTER = "/_synapse/admin/v1/register"


def get_nonce(client: Client) -> str:
    resp = client.get(ADMIN_REGISTER, auth=False)
    assert resp.status_code == 200, resp.text
    nonce = resp.json()["nonce"]
    assert isinstance(nonce, str) and nonce
    return nonce  # type: ignore[no-any-return]


def admin_register(client: Client, username: str, password: str = PASSWORD, admin: bool = False,
                   nonce: str | None = None, mac: str | None = None) -> Any:
    nonce = nonce or get_nonce(client)
    body = {"nonce": nonce, "username": username, "password": password, "admin": admin,
            "mac": mac if mac is not None else admin_mac(nonce, username, password, admin)}
    return client.post(ADMIN_REGISTER, body, auth=False)


def test_nonces_are_fresh(client: Client) -> None:
    assert get_nonce(client) != get_nonce(client)


def test_register_user(server: ServerProcess, client: Client, server_name: str) -> None:
    resp = admin_register(client, "sharedsecret")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["user_id"] == f"@sharedsecret:{server_name}"
    who = Client(server.url, body["access_token"]).get("account/whoami")
    assert who.status_code == 200, who.text
    assert who.json() == {"user_id": f"@sharedsecret:{server_name}", "device_id": body["device_id"], "is_guest": False}
    assert try_login(server, "sharedsecret", PASSWORD).status_code == 200
    row = user_row(server, f"@sharedsecret:{server_name}")
    assert row is not None and row["admin"] is False


def test_register_admin(server: ServerProcess, client: Client, server_name: str) -> None:
    resp = admin_register(client, "theadmin", admin=True)
    assert resp.status_code == 200, resp.text
    row = user_row(server, f"@theadmin:{server_name}")
    assert row is not None and row["admin"] is True
    assert try_login(server, "theadmin", PASSWORD).status_code == 200


def test_bad_mac(server: ServerProcess, client: Client, server_name: str) -> None:
    assert_error(admin_register(client, "badmac", mac="00" * 20), 403, "M_FORBIDDEN")
    # A mac for a regular user does not register an admin, nor one made with another secret.
    nonce = get_nonce(client)
    not_admin_mac = admin_mac(nonce, "badmac", PASSWORD, False)
    assert_error(admin_register(client, "badmac", admin=True, nonce=nonce, mac=not_admin_mac), 403, "M_FORBIDDEN")
    nonce = get_nonce(client)
    other_secret = admin_mac(nonce, "badmac", PASSWORD, False, secret="not-the-secret")
    assert_error(admin_register(client, "badmac", nonce=nonce, mac=other_secret), 403, "M_FORBIDDEN")
    assert user_row(server, f"@badmac:{server_name}") is None
    assert client.get("register/available", params={"username": "badmac"}, auth=False).status_code == 200


def test_nonce_cannot_be_reused(server: ServerProcess, client: Client, server_name: str) -> None:
    nonce = get_nonce(client)
    assert admin_register(client, "firstuse", nonce=nonce).status_code == 200
    assert_error(admin_register(client, "seconduse", nonce=nonce), 400)
    assert_error(admin_register(client, "madeup", nonce="not-a-nonce"), 400)
    assert user_row(server, f"@seconduse:{server_name}") is None


def test_invalid_and_taken_usernames(client: Client) -> None:
    assert_error(admin_register(client, "has space"), 400, "M_INVALID_USERNAME")
    assert admin_register(client, "adminTaken").status_code == 200
    assert_error(admin_register(client, "admintaken"), 400, "M_USER_IN_USE")


def test_bad_requests(client: Client) -> None:
    nonce = get_nonce(client)
    assert_error(client.post(ADMIN_REGISTER, {"nonce": nonce, "username": "x", "password": "y"}, auth=False),
                 400, "M_MISSING_PARAM")
    assert_error(client.post(ADMIN_REGISTER, {"nonce": nonce, "username": 1, "password": "y", "mac": "z"}, auth=False),
                 400, "M_BAD_JSON")


def _script() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "register_new_matrix_user")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "homeserver.app.register_new_matrix_user"]


def test_console_script(server: ServerProcess, server_name: str) -> None:
    result = subprocess.run(
        [*_script(), "-k", "test-shared-secret", "-u", "scripted", "-p", "script pw", "--no-admin", server.url],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"@scripted:{server_name}" in result.stdout
    assert try_login(server, "scripted", "script pw").status_code == 200
    row = user_row(server, f"@scripted:{server_name}")
    assert row is not None and row["admin"] is False


def test_console_module_admin_and_wrong_secret(server: ServerProcess, server_name: str) -> None:
    base = [sys.executable, "-m", "homeserver.app.register_new_matrix_user"]
    ok = subprocess.run([*base, "-k", "test-shared-secret", "-u", "scriptadmin", "-p", "pw", "-a", server.url],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    row = user_row(server, f"@scriptadmin:{server_name}")
    assert row is not None and row["admin"] is True
    assert try_login(server, "scriptadmin", "pw").status_code == 200

    bad = subprocess.run([*base, "-k", "wrong-secret", "-u", "scriptbad", "-p", "pw", "--no-admin", server.url],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert bad.returncode != 0
    assert "M_FORBIDDEN" in bad.stderr
    assert user_row(server, f"@scriptbad:{server_name}") is None
