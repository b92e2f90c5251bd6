"""The server starts on both engines and answers the basic account endpoints."""

from tests.harness import Client, ServerProcess
from tests.spec import assert_matches_spec


def test_versions_matches_spec(server: ServerProcess, client: Client) -> None:
    resp = client.get("/_matrix/client/versions")
    assert resp.status_code == 200
    assert_matches_spec(resp.json(), "versions.yaml", "/versions", "get", 200)
    assert "v1.11" in resp.json()["versions"]


def test_register_whoami_logout(server: ServerProcess, client: Client) -> None:
    result = client.register("smoke")
    assert_matches_spec(result, "registration.yaml", "/register", "post", 200)
    who = client.get("account/whoami")
    assert who.status_code == 200
    assert who.json()["user_id"] == f"@smoke:{server.server_name}"
    assert who.json()["device_id"] == result["device_id"]
    assert client.post("logout", {}).status_code == 200
    after = client.get("account/whoami")
    assert after.status_code == 401
    assert after.json()["errcode"] == "M_UNKNOWN_TOKEN"
