"""/devices, /devices/{deviceId} (GET, PUT, DELETE with user-interactive auth) and /delete_devices."""

from typing import Any

from tests.harness import ServerProcess
from tests.spec import assert_matches_spec
from tests.test_accounts import (
    assert_devices_match_spec,
    assert_error,
    device_ids,
    login_as,
    password_auth,
    uia_session,
)


def test_list_devices(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("list")
    phone = login_as(server, alice.user_id, initial_device_display_name="Phone")
    # Every device has been seen once it has made a request.
    assert phone.get("account/whoami").status_code == 200
    resp = alice.get("devices")
    assert resp.status_code == 200, resp.text
    devices = resp.json()["devices"]
    assert_devices_match_spec(devices)
    by_id = {d["device_id"]: d for d in devices}
    assert by_id.keys() == {alice.device_id, phone.device_id}
    assert by_id[phone.device_id]["display_name"] == "Phone"
    for device in devices:
        assert isinstance(device["last_seen_ts"], int) and device["last_seen_ts"] > 0
        assert device["last_seen_ip"] == "127.0.0.1"


def test_get_device(make_user: Any) -> None:
    alice = make_user("get")
    resp = alice.get(f"devices/{alice.device_id}")
    assert resp.status_code == 200, resp.text
    assert_devices_match_spec([resp.json()], "/devices/{deviceId}")
    assert resp.json()["device_id"] == alice.device_id
    assert_error(alice.get("devices/NOSUCHDEVICE"), 404, "M_NOT_FOUND")


def test_rename_device(make_user: Any) -> None:
    alice = make_user("rename")
    resp = alice.put(f"devices/{alice.device_id}", {"display_name": "Work laptop"})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "device_management.yaml", "/devices/{deviceId}", "put", 200)
    assert alice.get(f"devices/{alice.device_id}").json()["display_name"] == "Work laptop"
    assert [d["display_name"] for d in alice.get("devices").json()["devices"]] == ["Work laptop"]

    assert_error(alice.put("devices/NOSUCHDEVICE", {"display_name": "x"}), 404, "M_NOT_FOUND")
    assert_error(alice.put(f"devices/{alice.device_id}", {"display_name": 3}), 400, "M_BAD_JSON")
    assert alice.get(f"devices/{alice.device_id}").json()["display_name"] == "Work laptop"


def test_delete_device_with_uia(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("delete")
    doomed = login_as(server, alice.user_id)
    path = f"devices/{doomed.device_id}"

    first = alice.delete(path)
    session = uia_session(first, "m.login.password")
    assert_matches_spec(first.json(), "device_management.yaml", "/devices/{deviceId}", "delete", 401)
    assert device_ids(alice) == {alice.device_id, doomed.device_id}

    wrong = alice.delete(path, {"auth": password_auth(alice, session, "wrong password")})
    assert_error(wrong, 401, "M_FORBIDDEN")
    assert uia_session(wrong, "m.login.password") == session
    assert doomed.get("account/whoami").status_code == 200

    resp = alice.delete(path, {"auth": password_auth(alice, session)})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "device_management.yaml", "/devices/{deviceId}", "delete", 200)
    assert device_ids(alice) == {alice.device_id}
    assert_error(alice.get(path), 404, "M_NOT_FOUND")
    assert_error(doomed.get("account/whoami"), 401, "M_UNKNOWN_TOKEN")
    assert alice.get("account/whoami").status_code == 200


def test_delete_unknown_device(make_user: Any) -> None:
    alice = make_user("delunknown")
    assert_error(alice.delete("devices/NOSUCHDEVICE", {"auth": password_auth(alice)}), 404, "M_NOT_FOUND")


def test_delete_own_current_device(make_user: Any) -> None:
    alice = make_user("delself")
    resp = alice.delete(f"devices/{alice.device_id}", {"auth": password_auth(alice)})
    assert resp.status_code == 200, resp.text
    assert_error(alice.get("account/whoami"), 401, "M_UNKNOWN_TOKEN")


def test_delete_devices(server: ServerProcess, make_user: Any) -> None:
    alice = make_user("bulk")
    one, two, kept = (login_as(server, alice.user_id) for _ in range(3))
    body = {"devices": [one.device_id, two.device_id]}

    first = alice.post("delete_devices", body)
    session = uia_session(first, "m.login.password")
    assert_matches_spec(first.json(), "device_management.yaml", "/delete_devices", "post", 401)
    assert_error(alice.post("delete_devices", {**body, "auth": password_auth(alice, session, "nope")}), 401, "M_FORBIDDEN")
    assert device_ids(alice) == {alice.device_id, one.device_id, two.device_id, kept.device_id}

    resp = alice.post("delete_devices", {**body, "auth": password_auth(alice, session)})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "device_management.yaml", "/delete_devices", "post", 200)
    assert device_ids(alice) == {alice.device_id, kept.device_id}
    for gone in (one, two):
        assert_error(gone.get("account/whoami"), 401, "M_UNKNOWN_TOKEN")
    assert kept.get("account/whoami").status_code == 200

    assert_error(alice.post("delete_devices", {"devices": "ABC"}), 400, "M_BAD_JSON")
    assert_error(alice.post("delete_devices", {"devices": [1, 2]}), 400, "M_BAD_JSON")
    assert_error(alice.post("delete_devices", {}), 400, "M_MISSING_PARAM")


def test_cannot_touch_another_users_device(make_user: Any) -> None:
    alice, bob = make_user("owner"), make_user("intruder")
    path = f"devices/{alice.device_id}"
    assert_error(bob.get(path), 404, "M_NOT_FOUND")
    assert_error(bob.put(path, {"display_name": "pwned"}), 404, "M_NOT_FOUND")
    assert_error(bob.delete(path, {"auth": password_auth(bob)}), 404, "M_NOT_FOUND")
    # Bulk deletion of someone else's device id is a no-op for them.
    resp = bob.post("delete_devices", {"devices": [alice.device_id], "auth": password_auth(bob)})
    assert resp.status_code == 200, resp.text
    assert device_ids(bob) == {bob.device_id}
    assert alice.get("account/whoami").status_code == 200
    assert device_ids(alice) == {alice.device_id}
    assert alice.get(path).json()["display_name"] != "pwned"
    # Nor can bob use alice's password to pass bob's UIA.
    assert_error(bob.delete(f"devices/{bob.device_id}", {"auth": password_auth(alice)}), 401, "M_FORBIDDEN")


def test_devices_require_a_token(make_user: Any) -> None:
    alice = make_user("notoken")
    token, alice.access_token = alice.access_token, None
    assert_error(alice.get("devices"), 401, "M_MISSING_TOKEN")
    assert_error(alice.get("devices/X"), 401, "M_MISSING_TOKEN")
    assert_error(alice.put("devices/X", {}), 401, "M_MISSING_TOKEN")
    assert_error(alice.delete("devices/X"), 401, "M_MISSING_TOKEN")
    assert_error(alice.post("delete_devices", {"devices": []}), 401, "M_MISSING_TOKEN")
    alice.access_token = token
