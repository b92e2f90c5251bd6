"""Access control of credentials: a logged-out device's token and a deactivated account's
token are dead everywhere (401 M_UNKNOWN_TOKEN), a request without a token is 401
M_MISSING_TOKEN, and the admin API does not take a regular user's access token as authority
(the only admin endpoint, shared-secret registration, answers 403 M_FORBIDDEN without the
secret's HMAC; admin paths that do not exist are not found, never served)."""

import time
from typing import Any

import pytest
import requests

from tests.harness import Client, ServerProcess
from tests.matrix_helpers import assert_error, enc
from tests.rooms.helpers import create_room, join, path_id, timeline, txn
from tests.test_accounts import admin_mac, login_as, password_auth, try_login, user_row

ADMIN_REGISTER = "/_synapse/admin/v1/register"


def authenticated_calls(client: Client, room_id: str) -> dict[str, requests.Response]:
    """whoami, a sync and a send, each with `client`'s current token."""
    return {
        "whoami": client.get("account/whoami"),
        "sync": client.get("sync", params={"timeout": 0}),
        "send": client.put(f"rooms/{path_id(room_id)}/send/m.room.message/{txn()}",
                           {"msgtype": "m.text", "body": "from a dead token"}),
    }


def wait_until_revoked(client: Client) -> None:
    """In the workers shape a revocation reaches the other processes' token caches through
    replication, a few milliseconds after the answer (measured: up to ~50 ms under load);
    wait for that, then a little more so that every process has it, before asserting."""
    deadline = time.monotonic() + 5
    while client.get("account/whoami").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)


def assert_all_rejected(responses: dict[str, requests.Response], errcode: str) -> None:
    for name, resp in responses.items():
        body = assert_error(resp, 401, errcode)
        assert set(body) <= {"errcode", "error", "soft_logout"}, (name, body)


def test_logged_out_device_token_is_dead(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("alice")
    room_id = create_room(alice, preset="public_chat")
    phone = login_as(server, alice.user_id)
    join(phone, room_id)
    resp = phone.post("logout", {})
    assert resp.status_code == 200, resp.text
    wait_until_revoked(phone)
    assert_all_rejected(authenticated_calls(phone, room_id), "M_UNKNOWN_TOKEN")
    # Logging out again with the dead token is refused too, and the other device lives on.
    assert_error(phone.post("logout", {}), 401, "M_UNKNOWN_TOKEN")
    assert alice.get("account/whoami").json()["device_id"] == alice.device_id
    assert "from a dead token" not in str(timeline(alice, room_id))


def test_logout_all_kills_every_token(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("alice")
    room_id = create_room(alice, preset="public_chat")
    phone = login_as(server, alice.user_id)
    resp = phone.post("logout/all", {})
    assert resp.status_code == 200, resp.text
    wait_until_revoked(alice)
    wait_until_revoked(phone)
    assert_all_rejected(authenticated_calls(alice, room_id), "M_UNKNOWN_TOKEN")
    assert_all_rejected(authenticated_calls(phone, room_id), "M_UNKNOWN_TOKEN")


def test_deactivated_account_token_is_dead(server: ServerProcess, make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room_id = create_room(bob, preset="public_chat")
    join(alice, room_id)
    laptop = login_as(server, alice.user_id)
    first = alice.post("account/deactivate", {})
    assert first.status_code == 401, first.text
    resp = alice.post("account/deactivate", {"auth": password_auth(alice, first.json()["session"])})
    assert resp.status_code == 200, resp.text
    wait_until_revoked(alice)
    wait_until_revoked(laptop)
    assert_all_rejected(authenticated_calls(alice, room_id), "M_UNKNOWN_TOKEN")
    assert_all_rejected(authenticated_calls(laptop, room_id), "M_UNKNOWN_TOKEN")
    assert_error(try_login(server, alice.user_id, "correct horse"), 403, "M_FORBIDDEN")
    assert "from a dead token" not in str(timeline(bob, room_id))


def test_missing_token_is_rejected(make_user: Any) -> None:
    alice = make_user("alice")
    room_id = create_room(alice, preset="public_chat")
    anonymous = Client(alice.base_url)
    calls = authenticated_calls(anonymous, room_id)
    calls["account_data"] = anonymous.get(f"user/{enc(alice.user_id)}/account_data/m.push_rules")
    calls["messages"] = anonymous.get(f"rooms/{path_id(room_id)}/messages", params={"dir": "b"})
    calls["devices"] = anonymous.get("devices")
    calls["room_keys"] = anonymous.get("room_keys/version")
    calls["notifications"] = anonymous.get("notifications")
    assert_all_rejected(calls, "M_MISSING_TOKEN")


def test_unknown_token_is_rejected(make_user: Any) -> None:
    alice = make_user("alice")
    room_id = create_room(alice, preset="public_chat")
    forged = Client(alice.base_url, access_token=alice.access_token + "x")  # type: ignore[operator]
    assert_all_rejected(authenticated_calls(forged, room_id), "M_UNKNOWN_TOKEN")


def test_admin_registration_ignores_a_users_access_token(server: ServerProcess, make_user: Any,
                                                         server_name: str) -> None:
    """A logged-in user calling the admin registration API, with a wrong HMAC or none, does not
    create a user, let alone an admin."""
    mallory = make_user("mallory")
    nonce = mallory.get(ADMIN_REGISTER).json()["nonce"]
    body = {"nonce": nonce, "username": "sneaky_admin", "password": "pw", "admin": True,
            "mac": admin_mac(nonce, "sneaky_admin", "pw", True, secret="guessed-secret")}
    assert_error(mallory.post(ADMIN_REGISTER, body), 403, "M_FORBIDDEN")
    nonce = mallory.get(ADMIN_REGISTER).json()["nonce"]
    # A mac for a regular user does not make an admin.
    body = {"nonce": nonce, "username": "sneaky_admin", "password": "pw", "admin": True,
            "mac": admin_mac(nonce, "sneaky_admin", "pw", False)}
    assert_error(mallory.post(ADMIN_REGISTER, body), 403, "M_FORBIDDEN")
    nonce = mallory.get(ADMIN_REGISTER).json()["nonce"]
    resp = mallory.post(ADMIN_REGISTER, {"nonce": nonce, "username": "sneaky_admin", "password": "pw", "admin": True})
    assert resp.status_code in (400, 403), resp.text
    assert user_row(server, f"@sneaky_admin:{server_name}") is None
    assert try_login(server, "sneaky_admin", "pw").status_code == 403


def test_admin_paths_are_not_served_to_a_regular_user(make_user: Any) -> None:
    """Synapse's admin API for users and rooms: this server has none of it, so a regular
    user's token reaches nothing (never a 200, never data)."""
    mallory = make_user("mallory")
    for method, path in (
        ("GET", f"/_synapse/admin/v2/users/{enc(mallory.user_id)}"),
        ("PUT", f"/_synapse/admin/v2/users/{enc(mallory.user_id)}"),
        ("GET", "/_synapse/admin/v2/users"),
        ("GET", "/_synapse/admin/v1/rooms"),
        ("POST", f"/_synapse/admin/v1/deactivate/{enc(mallory.user_id)}"),
        ("GET", "/_synapse/admin/v1/server_version"),
    ):
        resp = mallory.request(method, path, json={"admin": True} if method != "GET" else None)
        assert resp.status_code in (403, 404), (method, path, resp.status_code, resp.text)
        if resp.status_code == 403:
            assert resp.json()["errcode"] == "M_FORBIDDEN", resp.text
        else:
            assert resp.headers.get("content-type", "").startswith("application/json"), resp.text
            assert resp.json()["errcode"] in ("M_UNRECOGNIZED", "M_NOT_FOUND"), resp.text
    assert mallory.get("account/whoami").status_code == 200


def test_replication_api_does_not_take_a_users_token(make_user: Any, server: ServerProcess) -> None:
    """In the workers shape the replication endpoints need the replication secret: a user's
    access token is not it, whether through the proxy or straight at a process's listener.
    (A single process has no secret configured and serves replication on loopback only, as
    Synapse does; there is nothing to check there.)"""
    processes = getattr(server, "processes", None)
    if processes is None:
        pytest.skip("single process: no replication secret is configured")
    alice, mallory = make_user("alice"), make_user("mallory")
    body = {"user_id": alice.user_id, "room_id": None, "type": "org.example.forged", "content": {"x": 1}}
    path = f"/_synapse/replication/account_data/{txn()}"
    resp = mallory.post(path, body)
    assert resp.status_code in (401, 403, 404), resp.text
    for process in processes.values():
        direct = Client(process.url, mallory.access_token)
        resp = direct.post(f"/_synapse/replication/account_data/{txn()}", body)
        if resp.status_code != 404:  # a listener without the replication resource
            assert_error(resp, 401, "M_UNAUTHORIZED")
    assert_error(alice.get(f"user/{enc(alice.user_id)}/account_data/org.example.forged"), 404, "M_NOT_FOUND")
