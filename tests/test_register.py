"""POST /register (user-interactive auth with m.login.dummy) and GET /register/available."""

from typing import Any

import pytest

from tests.harness import Client, ServerProcess, query_database, running_server
from tests.spec import assert_matches_spec
from tests.test_accounts import (
    PASSWORD,
    admin_mac,
    assert_devices_match_spec,
    assert_error,
    try_login,
    uia_session,
)

DUMMY = {"type": "m.login.dummy"}


def register(client: Client, body: Any, **kwargs: Any) -> Any:
    return client.post("register", body, auth=False, **kwargs)


def assert_registered(resp: Any, user_id: str, logged_in: bool = True) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "registration.yaml", "/register", "post", 200)
    assert body["user_id"] == user_id
    if logged_in:
        assert isinstance(body["access_token"], str) and body["access_token"]
        assert isinstance(body["device_id"], str) and body["device_id"]
    return body  # type: ignore[no-any-return]


def assert_register_error(resp: Any, status: int, errcode: str) -> None:
    body = assert_error(resp, status, errcode)
    assert_matches_spec(body, "registration.yaml", "/register", "post", status)


def whoami(server: ServerProcess, token: str) -> dict[str, Any]:
    resp = Client(server.url, token).get("account/whoami")
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_uia_dance(server: ServerProcess, client: Client, server_name: str) -> None:
    body = {"username": "dance", "password": PASSWORD}
    first = register(client, body)
    session = uia_session(first, "m.login.dummy")
    assert first.json()["flows"] == [{"stages": ["m.login.dummy"]}]
    assert "errcode" not in first.json()
    assert_matches_spec(first.json(), "registration.yaml", "/register", "post", 401)
    # Nothing is created before auth completes.
    assert client.get("register/available", params={"username": "dance"}, auth=False).status_code == 200

    second = register(client, {**body, "auth": {**DUMMY, "session": session}})
    result = assert_registered(second, f"@dance:{server_name}")
    assert whoami(server, result["access_token"]) == {
        "user_id": f"@dance:{server_name}", "device_id": result["device_id"], "is_guest": False,
    }
    assert try_login(server, "dance", PASSWORD).status_code == 200

    # A completed session cannot be replayed to create another account.
    replay = register(client, {"username": "dance2", "password": PASSWORD, "auth": {**DUMMY, "session": session}})
    assert_error(replay, 400)
    assert client.get("register/available", params={"username": "dance2"}, auth=False).status_code == 200


def test_uia_continuation_uses_the_first_request(server: ServerProcess, client: Client, server_name: str) -> None:
    """The second call may carry only `auth`: the server remembers the first request's body."""
    first = register(client, {"username": "remembered", "password": "first password"})
    session = uia_session(first, "m.login.dummy")
    second = register(client, {"auth": {**DUMMY, "session": session}})
    assert_registered(second, f"@remembered:{server_name}")
    assert try_login(server, "remembered", "first password").status_code == 200


def test_uia_session_never_stores_the_password(server: ServerProcess, client: Client) -> None:
    """A sign-up that is started but never finished leaves no plaintext password behind."""
    first = register(client, {"username": "abandoned", "password": "very secret words"})
    session = uia_session(first, "m.login.dummy")
    rows = query_database(
        server.config["database"], "SELECT clientdict, serverdict FROM ui_auth_sessions WHERE session_id = ?", (session,)
    )
    assert len(rows) == 1
    clientdict, serverdict = rows[0]
    assert "abandoned" in clientdict
    assert "very secret words" not in clientdict + serverdict
    assert "password_hash" in serverdict


def test_auth_without_session(server: ServerProcess, client: Client, server_name: str) -> None:
    resp = register(client, {"username": "nosession", "password": PASSWORD, "auth": DUMMY})
    result = assert_registered(resp, f"@nosession:{server_name}")
    assert whoami(server, result["access_token"])["user_id"] == f"@nosession:{server_name}"


def test_unknown_session(client: Client) -> None:
    resp = register(client, {"username": "lost", "password": PASSWORD, "auth": {**DUMMY, "session": "nope"}})
    assert_error(resp, 400)


def test_wrong_stage_type(client: Client) -> None:
    resp = register(client, {"username": "wrongstage", "password": PASSWORD,
                             "auth": {"type": "m.login.password", "password": "x", "user": "x"}})
    assert resp.status_code == 401, resp.text
    assert isinstance(resp.json().get("errcode"), str)
    assert client.get("register/available", params={"username": "wrongstage"}, auth=False).status_code == 200


def test_inhibit_login(server: ServerProcess, client: Client, server_name: str) -> None:
    resp = register(client, {"username": "inhibited", "password": PASSWORD, "auth": DUMMY, "inhibit_login": True})
    body = assert_registered(resp, f"@inhibited:{server_name}", logged_in=False)
    assert "access_token" not in body
    assert "device_id" not in body
    # The account exists and has no device until it logs in.
    session = Client(server.url)
    session.login("inhibited", PASSWORD)
    devices = session.get("devices").json()["devices"]
    assert [d["device_id"] for d in devices] == [session.device_id]


def test_device_id_and_display_name(server: ServerProcess, client: Client, server_name: str) -> None:
    resp = register(client, {"username": "withdevice", "password": PASSWORD, "auth": DUMMY,
                             "device_id": "MYPHONE", "initial_device_display_name": "My phone"})
    body = assert_registered(resp, f"@withdevice:{server_name}")
    assert body["device_id"] == "MYPHONE"
    alice = Client(server.url, body["access_token"])
    assert whoami(server, body["access_token"])["device_id"] == "MYPHONE"
    devices = alice.get("devices").json()["devices"]
    assert_devices_match_spec(devices)
    assert [(d["device_id"], d["display_name"]) for d in devices] == [("MYPHONE", "My phone")]
    one = alice.get("devices/MYPHONE")
    assert one.status_code == 200
    assert one.json()["display_name"] == "My phone"


def test_username_generated_when_omitted(server: ServerProcess, client: Client, server_name: str) -> None:
    resp = register(client, {"password": PASSWORD, "auth": DUMMY})
    assert resp.status_code == 200, resp.text
    user_id = resp.json()["user_id"]
    assert user_id.startswith("@") and user_id.endswith(f":{server_name}") and len(user_id) > len(f"@:{server_name}")
    assert whoami(server, resp.json()["access_token"])["user_id"] == user_id


def test_username_is_downcased(server: ServerProcess, client: Client, server_name: str) -> None:
    """Like Synapse (and Complement's "POST /register downcases capitals in usernames")."""
    resp = register(client, {"username": "User-UPPER", "password": PASSWORD, "auth": DUMMY})
    assert_registered(resp, f"@user-upper:{server_name}")
    assert try_login(server, "User-Upper", PASSWORD).json()["user_id"] == f"@user-upper:{server_name}"


INVALID_USERNAMES = [
    pytest.param("has space", id="space"),
    pytest.param("_leading", id="leading-underscore"),
    pytest.param("a" * 250, id="too-long"),
    pytest.param("caf\u00e9", id="non-ascii"),
    pytest.param("colon:here", id="colon"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("username", INVALID_USERNAMES)
def test_invalid_username(client: Client, username: str) -> None:
    # Rejected before the auth stages, and again if the client skips straight to auth.
    assert_register_error(register(client, {"username": username, "password": PASSWORD}), 400, "M_INVALID_USERNAME")
    with_auth = register(client, {"username": username, "password": PASSWORD, "auth": DUMMY})
    assert_register_error(with_auth, 400, "M_INVALID_USERNAME")


def test_username_taken(client: Client, server_name: str) -> None:
    assert_registered(register(client, {"username": "taken", "password": PASSWORD, "auth": DUMMY}), f"@taken:{server_name}")
    for username in ("taken", "TAKEN", "Taken"):
        assert_register_error(register(client, {"username": username, "password": PASSWORD}), 400, "M_USER_IN_USE")
        with_auth = register(client, {"username": username, "password": PASSWORD, "auth": DUMMY})
        assert_register_error(with_auth, 400, "M_USER_IN_USE")


def test_missing_password(client: Client) -> None:
    assert_register_error(register(client, {"username": "nopassword"}), 400, "M_MISSING_PARAM")
    assert_register_error(register(client, {"username": "nopassword", "auth": DUMMY}), 400, "M_MISSING_PARAM")
    assert client.get("register/available", params={"username": "nopassword"}, auth=False).status_code == 200


def test_guest_registration_forbidden(client: Client, server_name: str) -> None:
    resp = register(client, {"auth": DUMMY}, params={"kind": "guest"})
    assert_register_error(resp, 403, "M_GUEST_ACCESS_FORBIDDEN")
    resp = register(client, {"username": "kinduser", "password": PASSWORD, "auth": DUMMY}, params={"kind": "user"})
    assert_registered(resp, f"@kinduser:{server_name}")
    assert_error(register(client, {"auth": DUMMY}, params={"kind": "robot"}), 400)


@pytest.mark.parametrize("field, value", [
    ("username", 42),
    ("password", ["correct", "horse"]),
    ("device_id", 7),
    ("initial_device_display_name", {"name": "phone"}),
    ("inhibit_login", "true"),
    ("auth", "m.login.dummy"),
])
def test_wrong_field_types(client: Client, field: str, value: Any) -> None:
    body = {"username": f"types{field.replace('_', '')}", "password": PASSWORD, "auth": DUMMY, field: value}
    assert_register_error(register(client, body), 400, "M_BAD_JSON")


def test_body_must_be_a_json_object(client: Client) -> None:
    assert_error(register(client, ["username", "x"]), 400, "M_BAD_JSON")
    assert_error(client.post("register", data=b"{not json", auth=False), 400, "M_NOT_JSON")


def test_register_available(client: Client, server_name: str) -> None:
    resp = client.get("register/available", params={"username": "freename"}, auth=False)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"available": True}
    assert_matches_spec(resp.json(), "registration.yaml", "/register/available", "get", 200)

    assert_registered(register(client, {"username": "freename", "password": PASSWORD, "auth": DUMMY}), f"@freename:{server_name}")
    for username, errcode in [("freename", "M_USER_IN_USE"), ("FreeName", "M_INVALID_USERNAME"),
                              ("_under", "M_INVALID_USERNAME"), ("with space", "M_INVALID_USERNAME"),
                              ("a" * 250, "M_INVALID_USERNAME")]:
        resp = client.get("register/available", params={"username": username}, auth=False)
        body = assert_error(resp, 400, errcode)
        assert_matches_spec(body, "registration.yaml", "/register/available", "get", 400)
    assert_error(client.get("register/available", auth=False), 400, "M_MISSING_PARAM")


def test_registration_disabled() -> None:
    with running_server("sqlite", enable_registration=False) as closed:
        client = Client(closed.url)
        for body in ({"username": "nobody", "password": PASSWORD}, {"username": "nobody", "password": PASSWORD, "auth": DUMMY}):
            assert_register_error(register(client, body), 403, "M_FORBIDDEN")
        assert_error(client.get("register/available", params={"username": "nobody"}), 403, "M_FORBIDDEN")
        # The admin shared-secret API still creates accounts.
        url = "/_synapse/admin/v1/register"
        nonce = client.get(url).json()["nonce"]
        mac = admin_mac(nonce, "byadmin", PASSWORD, False)
        resp = client.post(url, {"nonce": nonce, "username": "byadmin", "password": PASSWORD, "admin": False, "mac": mac})
        assert resp.status_code == 200, resp.text
        assert try_login(closed, "byadmin", PASSWORD).status_code == 200
