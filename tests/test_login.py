"""GET/POST /login (password login), /logout and /logout/all."""

from typing import Any

import pytest

from tests.harness import Client, ServerProcess
from tests.spec import assert_matches_spec
from tests.test_accounts import PASSWORD, assert_error, device_ids, login_as


def post_login(server: ServerProcess, body: dict[str, Any]) -> Any:
    return Client(server.url).post("login", body, auth=False)


def assert_login_error(resp: Any, status: int, errcode: str | None = None) -> None:
    body = assert_error(resp, status, errcode)
    assert_matches_spec(body, "login.yaml", "/login", "post", status)


def assert_logged_in(server: ServerProcess, resp: Any, user_id: str) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "login.yaml", "/login", "post", 200)
    assert body["user_id"] == user_id
    who = Client(server.url, body["access_token"]).get("account/whoami")
    assert who.status_code == 200, who.text
    assert who.json()["user_id"] == user_id
    assert who.json()["device_id"] == body["device_id"]
    return body  # type: ignore[no-any-return]


def test_login_flows(client: Client) -> None:
    resp = client.get("login")
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "login.yaml", "/login", "get", 200)
    assert {"type": "m.login.password"} in resp.json()["flows"]


@pytest.mark.parametrize("how", ["localpart", "user_id", "uppercase", "legacy_user", "legacy_user_id"])
def test_password_login(server: ServerProcess, make_user: Any, how: str) -> None:
    alice = make_user("login")
    localpart = alice.user_id[1:].split(":")[0]
    body: dict[str, Any] = {"type": "m.login.password", "password": PASSWORD}
    if how == "localpart":
        body["identifier"] = {"type": "m.id.user", "user": localpart}
    elif how == "user_id":
        body["identifier"] = {"type": "m.id.user", "user": alice.user_id}
    elif how == "uppercase":
        body["identifier"] = {"type": "m.id.user", "user": localpart.upper()}
    elif how == "legacy_user":
        body["user"] = localpart
    else:
        body["user"] = alice.user_id
    result = assert_logged_in(server, post_login(server, body), alice.user_id)
    assert result["device_id"] != alice.device_id


def test_each_login_creates_a_device(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("devices")
    second = login_as(server, alice.user_id)
    third = login_as(server, alice.user_id)
    ids = {alice.device_id, second.device_id, third.device_id}
    assert len(ids) == 3
    assert len({alice.access_token, second.access_token, third.access_token}) == 3
    assert device_ids(alice) == ids
    for session in (alice, second, third):
        assert session.get("account/whoami").json()["device_id"] == session.device_id


def test_login_with_device_id(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("devid")
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id},
            "password": PASSWORD, "device_id": "CHOSENDEV", "initial_device_display_name": "Laptop"}
    result = assert_logged_in(server, post_login(server, body), alice.user_id)
    assert result["device_id"] == "CHOSENDEV"
    device = alice.get("devices/CHOSENDEV")
    assert device.status_code == 200, device.text
    assert device.json()["display_name"] == "Laptop"
    assert device_ids(alice) == {alice.device_id, "CHOSENDEV"}


def test_wrong_password(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("wrongpw")
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id}, "password": "nope"}
    assert_login_error(post_login(server, body), 403, "M_FORBIDDEN")
    assert device_ids(alice) == {alice.device_id}


def test_unknown_user(server: ServerProcess) -> None:
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "nobodyhere"}, "password": PASSWORD}
    assert_login_error(post_login(server, body), 403, "M_FORBIDDEN")
    body["identifier"] = {"type": "m.id.user", "user": "@nobodyhere:elsewhere.example"}
    assert_login_error(post_login(server, body), 403, "M_FORBIDDEN")


def test_bad_login_requests(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("badlogin")
    unsupported = {"type": "m.login.password", "identifier": {"type": "m.id.carrier_pigeon", "user": alice.user_id},
                   "password": PASSWORD}
    assert_login_error(post_login(server, unsupported), 400)
    unknown_type = {"type": "m.login.telepathy", "identifier": {"type": "m.id.user", "user": alice.user_id}}
    assert_login_error(post_login(server, unknown_type), 400)
    no_password = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id}}
    assert_login_error(post_login(server, no_password), 400, "M_MISSING_PARAM")
    no_type = {"identifier": {"type": "m.id.user", "user": alice.user_id}, "password": PASSWORD}
    assert_login_error(post_login(server, no_type), 400, "M_MISSING_PARAM")
    no_identifier = {"type": "m.login.password", "password": PASSWORD}
    assert_login_error(post_login(server, no_identifier), 400)
    assert_error(Client(server.url).post("login", data=b"[", auth=False), 400, "M_NOT_JSON")
    assert device_ids(alice) == {alice.device_id}


def test_logout(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("logout")
    other = login_as(server, alice.user_id)
    resp = alice.post("logout", {})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "logout.yaml", "/logout", "post", 200)
    body = assert_error(alice.get("account/whoami"), 401, "M_UNKNOWN_TOKEN")
    assert body["soft_logout"] is False
    assert_error(alice.post("logout", {}), 401, "M_UNKNOWN_TOKEN")
    # The device went with the token; the other session is untouched.
    assert device_ids(other) == {other.device_id}
    assert other.get("account/whoami").status_code == 200


def test_logout_all(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("logoutall")
    sessions = [alice, login_as(server, alice.user_id), login_as(server, alice.user_id)]
    resp = sessions[1].post("logout/all", {})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "logout.yaml", "/logout/all", "post", 200)
    for session in sessions:
        assert_error(session.get("account/whoami"), 401, "M_UNKNOWN_TOKEN")
    fresh = login_as(server, alice.user_id)
    assert device_ids(fresh) == {fresh.device_id}


def test_logout_requires_a_token(client: Client) -> None:
    assert_error(client.post("logout", {}), 401, "M_MISSING_TOKEN")
    assert_error(client.post("logout/all", {}), 401, "M_MISSING_TOKEN")
