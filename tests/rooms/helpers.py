"""Helpers shared by the room tests: creating rooms, sending events, reading the timeline,
checking events against the spec's ClientEvent schema."""

import functools
import json
import os
import secrets
from typing import Any
from urllib.parse import quote

import jsonschema

from tests.harness import Client
from tests.spec import SPEC_DIR, _load, _resolve, assert_matches_spec


@functools.cache
def _client_event_schema() -> dict[str, Any]:
    path = os.path.join(SPEC_DIR, "definitions", "client_event.yaml")
    return _resolve(_load(path), path, _load(path))  # type: ignore[no-any-return]


def assert_client_event(event: dict[str, Any]) -> None:
    """`event` is a ClientEvent; so is its `unsigned.redacted_because`, if any (the schema
    itself leaves that one unchecked)."""
    jsonschema.Draft202012Validator(_client_event_schema()).validate(event)
    assert isinstance(event["unsigned"], dict), event
    because = event["unsigned"].get("redacted_because")
    if because is not None:
        jsonschema.Draft202012Validator(_client_event_schema()).validate(because)


def path_id(value: str) -> str:
    """A room id, alias or event id as a URL path segment."""
    return quote(value, safe="")


def txn() -> str:
    return "t" + secrets.token_hex(8)


def create_room(client: Client, **body: Any) -> str:
    resp = client.post("createRoom", body)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "create_room.yaml", "/createRoom", "post", 200)
    return resp.json()["room_id"]  # type: ignore[no-any-return]


def public_room(client: Client, **body: Any) -> str:
    return create_room(client, preset="public_chat", **body)


def send(client: Client, room_id: str, body: str = "hello", event_type: str = "m.room.message",
         content: dict[str, Any] | None = None) -> str:
    """Sends a message; returns its event id."""
    resp = client.put(f"rooms/{path_id(room_id)}/send/{event_type}/{txn()}",
                      content if content is not None else {"msgtype": "m.text", "body": body})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "room_send.yaml", "/rooms/{roomId}/send/{eventType}/{txnId}", "put", 200)
    return resp.json()["event_id"]  # type: ignore[no-any-return]


def put_state(client: Client, room_id: str, event_type: str, content: dict[str, Any], state_key: str = "") -> str:
    resp = client.put(f"rooms/{path_id(room_id)}/state/{event_type}/{path_id(state_key)}", content)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "room_state.yaml", "/rooms/{roomId}/state/{eventType}/{stateKey}", "put", 200)
    return resp.json()["event_id"]  # type: ignore[no-any-return]


def get_state(client: Client, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
    resp = client.get(f"rooms/{path_id(room_id)}/state/{event_type}/{path_id(state_key)}")
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def join(client: Client, room: str) -> None:
    resp = client.post(f"join/{path_id(room)}", {})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "joining.yaml", "/join/{roomIdOrAlias}", "post", 200)


def invite(client: Client, room_id: str, user_id: str) -> None:
    resp = client.post(f"rooms/{path_id(room_id)}/invite", {"user_id": user_id})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "inviting.yaml", "/rooms/{roomId}/invite ", "post", 200)


def leave(client: Client, room_id: str) -> None:
    resp = client.post(f"rooms/{path_id(room_id)}/leave", {})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "leaving.yaml", "/rooms/{roomId}/leave", "post", 200)


def set_power_levels(client: Client, room_id: str, **changes: Any) -> dict[str, Any]:
    """Updates the room's power levels (top-level keys; `users` is merged); returns them."""
    content = get_state(client, room_id, "m.room.power_levels")
    users = changes.pop("users", None)
    content.update(changes)
    if users:
        content["users"] = {**content.get("users", {}), **users}
    put_state(client, room_id, "m.room.power_levels", content)
    return content


def messages(client: Client, room_id: str, **params: Any) -> dict[str, Any]:
    """A /messages page (checked against the spec); a dict `filter` is sent as JSON."""
    if isinstance(params.get("filter"), dict):
        params["filter"] = json.dumps(params["filter"])
    resp = client.get(f"rooms/{path_id(room_id)}/messages", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "message_pagination.yaml", "/rooms/{roomId}/messages", "get", 200)
    for event in body["chunk"] + body.get("state", []):
        assert_client_event(event)
        assert event["room_id"] == room_id, event
    return body  # type: ignore[no-any-return]


def timeline(client: Client, room_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The room's events as `client` sees them through /messages, oldest first."""
    return list(reversed(messages(client, room_id, dir="b", limit=limit)["chunk"]))


def bodies(events: list[dict[str, Any]]) -> list[str]:
    """The `body` of the m.room.message events, in order."""
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message" and "body" in e["content"]]


def get_event(client: Client, room_id: str, event_id: str) -> dict[str, Any]:
    resp = client.get(f"rooms/{path_id(room_id)}/event/{path_id(event_id)}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "rooms.yaml", "/rooms/{roomId}/event/{eventId}", "get", 200)
    assert_client_event(body)
    return body  # type: ignore[no-any-return]


def members(client: Client, room_id: str, **params: Any) -> dict[str, str]:
    """user id -> membership, from /members."""
    resp = client.get(f"rooms/{path_id(room_id)}/members", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "rooms.yaml", "/rooms/{roomId}/members", "get", 200)
    for event in body["chunk"]:
        assert_client_event(event)
        assert event["type"] == "m.room.member", event
    return {e["state_key"]: e["content"]["membership"] for e in body["chunk"]}
