"""Helpers of the account data, profile, user directory and VoIP tests: rooms, syncs and
error checks over the client-server API."""

import json
from typing import Any

from tests.harness import Client
from tests.matrix_helpers import assert_error, enc  # noqa: F401 - re-exported for the tests
from tests.spec import assert_matches_spec


def create_room(client: Client, **body: Any) -> str:
    resp = client.post("createRoom", body)
    assert resp.status_code == 200, resp.text
    return resp.json()["room_id"]  # type: ignore[no-any-return]


def join(client: Client, room_id: str) -> None:
    resp = client.post(f"join/{enc(room_id)}", {})
    assert resp.status_code == 200, resp.text


def leave(client: Client, room_id: str) -> None:
    resp = client.post(f"rooms/{enc(room_id)}/leave", {})
    assert resp.status_code == 200, resp.text


def sync(client: Client, **params: Any) -> dict[str, Any]:
    """A /sync response checked against the spec; a dict `filter` is sent as JSON."""
    if isinstance(params.get("filter"), dict):
        params["filter"] = json.dumps(params["filter"])
    resp = client.get("sync", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "sync.yaml", "/sync", "get", 200)
    return body  # type: ignore[no-any-return]


def types_and_contents(events: list[dict[str, Any]]) -> dict[str, Any]:
    """type -> content of account data events (each type at most once)."""
    found = {e["type"]: e["content"] for e in events}
    assert len(found) == len(events), events
    return found


def global_account_data(body: dict[str, Any]) -> dict[str, Any]:
    return types_and_contents(body["account_data"]["events"])


def room_account_data(body: dict[str, Any], room_id: str) -> dict[str, Any]:
    room = body["rooms"]["join"].get(room_id)
    return types_and_contents(room["account_data"]["events"]) if room else {}
