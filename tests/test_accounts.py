"""Account endpoints end to end: /versions, /account/whoami, /account/password,
/account/deactivate and /capabilities, on both engines.

The helpers at the top are shared with test_register, test_login, test_devices and
test_admin_register."""

import hashlib
import hmac
from typing import Any

import requests

from tests.harness import Client, ServerProcess, query_database
from tests.spec import assert_matches_spec

PASSWORD = "correct horse"

# --- shared helpers ------------------------------------------------------------------------


def assert_error(resp: requests.Response, status: int, errcode: str | None = None) -> dict[str, Any]:
    """The response is an error with `status`, a string `errcode` (equal to `errcode` if given)
    and a string `error`; returns the body."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    body = resp.json()
    assert isinstance(body.get("errcode"), str), body
    assert isinstance(body.get("error"), str), body
    if errcode is not None:
        assert body["errcode"] == errcode, body
    return body  # type: ignore[no-any-return]


def password_auth(client: Client, session: str | None = None, password: str | None = None,
                  user: str | None = None) -> dict[str, Any]:
    """An m.login.password UIA `auth` dict for `client`'s user."""
    auth: dict[str, Any] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user or client.user_id},
        "password": password if password is not None else getattr(client, "password", PASSWORD),
    }
    if session is not None:
        auth["session"] = session
    return auth


def uia_session(resp: requests.Response, stage: str) -> str:
    """Asserts a 401 UIA response offering a flow of the single `stage`; returns its session."""
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert {"stages": [stage]} in body["flows"], body
    assert isinstance(body["session"], str) and body["session"], body
    assert isinstance(body.get("params"), dict), body
    return body["session"]  # type: ignore[no-any-return]


def assert_devices_match_spec(devices: list[dict[str, Any]], api_path: str = "/devices") -> None:
    """Validate device objects against the spec's `Device` schema.

    Like Synapse (and as matrix-nio requires) the server always sends `display_name`,
    `last_seen_ip` and `last_seen_ts`, as null when unknown, where the spec would leave them
    out; nulls are dropped before validating so every present value is still checked."""
    for device in devices:
        assert {"device_id", "display_name", "last_seen_ip", "last_seen_ts"} <= device.keys(), device
    cleaned = [{k: v for k, v in d.items() if v is not None} for d in devices]
    if api_path == "/devices":
        assert_matches_spec({"devices": cleaned}, "device_management.yaml", "/devices", "get", 200)
    else:
        for device in cleaned:
            assert_matches_spec(device, "device_management.yaml", "/devices/{deviceId}", "get", 200)


def device_ids(client: Client) -> set[str]:
    resp = client.get("devices")
    assert resp.status_code == 200, resp.text
    devices = resp.json()["devices"]
    assert_devices_match_spec(devices)
    return {d["device_id"] for d in devices}


def login_as(server: ServerProcess, user: str, password: str = PASSWORD, **extra: Any) -> Client:
    """A new session (new device) for an existing user."""
    c = Client(server.url)
    result = c.login(user, password, **extra)
    assert_matches_spec(result, "login.yaml", "/login", "post", 200)
    c.password = password  # type: ignore[attr-defined]
    return c


def try_login(server: ServerProcess, user: str, password: str) -> requests.Response:
    body: dict[str, Any] = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}
    return requests.post(server.url + "/_matrix/client/v3/login", json=body, timeout=30)


def admin_mac(nonce: str, username: str, password: str, admin: bool, secret: str = "test-shared-secret") -> str:
    """The HMAC-SHA1 of the admin registration API, computed independently of the server code."""
    message = b"\x00".join([nonce.encode(), username.encode(), password.encode(), b"admin" if admin else b"notadmin"])
    return hmac.new(secret.encode(), message, hashlib.sha1).hexdigest()


def user_row(server: ServerProcess, user_id: str) -> dict[str, Any] | None:
    """The user's row in the server's database (for flags that no client API shows)."""
    rows = query_database(
        server.config["database"], "SELECT user_id, admin, deactivated FROM users WHERE user_id = ?", (user_id,)
    )
    if not rows:
        return None
    return {"user_id": rows[0][0], "admin": bool(rows[0][1]), "deactivated": bool(rows[0][2])}


# --- /versions ----------------------------------------------------------------------------


def test_versions(client: Client) -> None:
    resp = client.get("/_matrix/client/versions", auth=False)
    assert resp.status_code == 200
    assert_matches_spec(resp.json(), "versions.yaml", "/versions", "get", 200)
    assert "v1.11" in resp.json()["versions"]


# --- /account/whoami ----------------------------------------------------------------------


def test_whoami(make_user: Any) -> None:
    alice = make_user("whoami")
    resp = alice.get("account/whoami")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "whoami.yaml", "/account/whoami", "get", 200)
    assert body == {"user_id": alice.user_id, "device_id": alice.device_id, "is_guest": False}


def test_whoami_missing_token(client: Client) -> None:
    resp = client.get("account/whoami")
    body = assert_error(resp, 401, "M_MISSING_TOKEN")
    assert_matches_spec(body, "whoami.yaml", "/account/whoami", "get", 401)


def test_whoami_malformed_authorization_header(client: Client) -> None:
    resp = client.get("account/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(resp, 401, "M_MISSING_TOKEN")


def test_whoami_unknown_token(client: Client) -> None:
    client.access_token = "syt_not_a_real_token"
    resp = client.get("account/whoami")
    body = assert_error(resp, 401, "M_UNKNOWN_TOKEN")
    assert body["soft_logout"] is False
    assert_matches_spec(body, "whoami.yaml", "/account/whoami", "get", 401)


def test_whoami_token_in_query_string(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("query")
    anonymous = Client(server.url)
    resp = anonymous.get("account/whoami", params={"access_token": alice.access_token})
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == alice.user_id
    assert resp.json()["device_id"] == alice.device_id
    bad = anonymous.get("account/whoami", params={"access_token": "nope"})
    assert_error(bad, 401, "M_UNKNOWN_TOKEN")


# --- /account/password --------------------------------------------------------------------


def test_password_change_requires_uia(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("pwuia")
    first = alice.post("account/password", {"new_password": "new secret"})
    session = uia_session(first, "m.login.password")
    assert "errcode" not in first.json()
    assert_matches_spec(first.json(), "password_management.yaml", "/account/password", "post", 401)

    wrong = alice.post("account/password", {"new_password": "new secret", "auth": password_auth(alice, session, "wrong")})
    assert uia_session(wrong, "m.login.password") == session
    body = assert_error(wrong, 401, "M_FORBIDDEN")
    assert "flows" in body
    assert_matches_spec(body, "password_management.yaml", "/account/password", "post", 401)

    # Nothing changed: the old password still works, the new one does not.
    assert try_login(server, alice.user_id, PASSWORD).status_code == 200
    assert_error(try_login(server, alice.user_id, "new secret"), 403, "M_FORBIDDEN")


def test_password_change_with_someone_elses_credentials_fails(server: ServerProcess, make_user: Any) -> None:
    alice, bob = make_user("pwalice"), make_user("pwbob")
    resp = alice.post("account/password", {"new_password": "hijack", "auth": password_auth(bob)})
    assert_error(resp, 401, "M_FORBIDDEN")
    assert try_login(server, alice.user_id, PASSWORD).status_code == 200
    assert try_login(server, bob.user_id, PASSWORD).status_code == 200
    assert_error(try_login(server, bob.user_id, "hijack"), 403, "M_FORBIDDEN")


def test_password_change_logs_out_other_devices(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("pwchange")
    other = login_as(server, alice.user_id)
    assert device_ids(alice) == {alice.device_id, other.device_id}

    resp = alice.post("account/password", {"new_password": "brand new", "auth": password_auth(alice)})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "password_management.yaml", "/account/password", "post", 200)

    # The current session survives; the other one is logged out and its device is gone.
    assert alice.get("account/whoami").status_code == 200
    assert_error(other.get("account/whoami"), 401, "M_UNKNOWN_TOKEN")
    assert device_ids(alice) == {alice.device_id}

    assert_error(try_login(server, alice.user_id, PASSWORD), 403, "M_FORBIDDEN")
    assert try_login(server, alice.user_id, "brand new").status_code == 200


def test_password_change_can_keep_other_devices(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("pwkeep")
    other = login_as(server, alice.user_id)
    first = alice.post("account/password", {"new_password": "kept", "logout_devices": False})
    session = uia_session(first, "m.login.password")
    resp = alice.post(
        "account/password", {"new_password": "kept", "logout_devices": False, "auth": password_auth(alice, session)}
    )
    assert resp.status_code == 200, resp.text
    assert other.get("account/whoami").status_code == 200
    assert device_ids(alice) == {alice.device_id, other.device_id}
    assert try_login(server, alice.user_id, "kept").status_code == 200
    assert_error(try_login(server, alice.user_id, PASSWORD), 403, "M_FORBIDDEN")


def test_password_change_bad_input(make_user: Any) -> None:
    alice = make_user("pwbad")
    assert_error(alice.post("account/password", {"new_password": 5, "auth": password_auth(alice)}), 400, "M_BAD_JSON")
    assert_error(alice.post("account/password", {"new_password": "x", "logout_devices": "yes"}), 400, "M_BAD_JSON")
    assert_error(alice.post("account/password", {"auth": password_auth(alice)}), 400, "M_MISSING_PARAM")
    assert_error(Client(alice.base_url).post("account/password", {"new_password": "x"}), 401, "M_MISSING_TOKEN")


# --- /account/deactivate ------------------------------------------------------------------


def test_deactivate(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("deact")
    other = login_as(server, alice.user_id)
    localpart = alice.user_id[1:].split(":")[0]

    first = alice.post("account/deactivate", {})
    session = uia_session(first, "m.login.password")
    assert_matches_spec(first.json(), "account_deactivation.yaml", "/account/deactivate", "post", 401)
    wrong = alice.post("account/deactivate", {"auth": password_auth(alice, session, "wrong")})
    assert_error(wrong, 401, "M_FORBIDDEN")
    assert alice.get("account/whoami").status_code == 200

    resp = alice.post("account/deactivate", {"auth": password_auth(alice, session)})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "account_deactivation.yaml", "/account/deactivate", "post", 200)

    # Every session is dead and the password no longer logs in.
    assert_error(alice.get("account/whoami"), 401, "M_UNKNOWN_TOKEN")
    assert_error(other.get("account/whoami"), 401, "M_UNKNOWN_TOKEN")
    assert_error(try_login(server, alice.user_id, PASSWORD), 403)
    assert_error(try_login(server, localpart, PASSWORD), 403)

    # The user id stays reserved.
    again = Client(server.url).post(
        "register", {"username": localpart, "password": "x", "auth": {"type": "m.login.dummy"}}
    )
    assert_error(again, 400, "M_USER_IN_USE")
    available = Client(server.url).get("register/available", params={"username": localpart})
    assert_error(available, 400, "M_USER_IN_USE")
    row = user_row(server, alice.user_id)
    assert row is not None and row["deactivated"]


# --- /capabilities ------------------------------------------------------------------------


def test_capabilities(client: Client, make_user: Any) -> None:
    assert_error(client.get("capabilities"), 401, "M_MISSING_TOKEN")
    alice = make_user("caps")
    resp = alice.get("capabilities")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "capabilities.yaml", "/capabilities", "get", 200)
    capabilities = body["capabilities"]
    assert capabilities["m.change_password"] == {"enabled": True}
    assert capabilities["m.room_versions"]["default"] == "10"
    assert capabilities["m.room_versions"]["available"]["10"] == "stable"
