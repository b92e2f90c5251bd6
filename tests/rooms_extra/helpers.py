"""Helpers shared by the tests of tests/rooms_extra: rooms, messages, state and relations over
the client-server API, each asserting the request succeeded."""

import itertools
from typing import Any
from urllib.parse import quote

from tests.harness import Client

_txn = itertools.count(1)

V1 = "/_matrix/client/v1"


def enc(value: str) -> str:
    """Percent-encode a path segment (room ids, aliases, event ids)."""
    return quote(value, safe="")


def create_room(client: Client, **body: Any) -> str:
    resp = client.post("createRoom", body)
    assert resp.status_code == 200, resp.text
    return resp.json()["room_id"]  # type: ignore[no-any-return]


def join(client: Client, room: str) -> None:
    resp = client.post(f"join/{enc(room)}", {})
    assert resp.status_code == 200, resp.text


def invite(client: Client, room_id: str, user_id: str) -> None:
    resp = client.post(f"rooms/{enc(room_id)}/invite", {"user_id": user_id})
    assert resp.status_code == 200, resp.text


def send(client: Client, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> str:
    resp = client.put(f"rooms/{enc(room_id)}/send/{event_type}/t{next(_txn)}", content)
    assert resp.status_code == 200, resp.text
    return resp.json()["event_id"]  # type: ignore[no-any-return]


def say(client: Client, room_id: str, body: str) -> str:
    return send(client, room_id, {"msgtype": "m.text", "body": body})


def put_state(client: Client, room_id: str, event_type: str, content: dict[str, Any], state_key: str = "") -> str:
    resp = client.put(f"rooms/{enc(room_id)}/state/{event_type}/{enc(state_key)}", content)
    assert resp.status_code == 200, resp.text
    return resp.json()["event_id"]  # type: ignore[no-any-return]


def get_state(client: Client, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
    """The content of a state event, or None when the room has none."""
    resp = client.get(f"rooms/{enc(room_id)}/state/{event_type}/{enc(state_key)}")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def redact(client: Client, room_id: str, event_id: str, reason: str | None = None) -> str:
    body = {"reason": reason} if reason else {}
    resp = client.put(f"rooms/{enc(room_id)}/redact/{enc(event_id)}/r{next(_txn)}", body)
    assert resp.status_code == 200, resp.text
    return resp.json()["event_id"]  # type: ignore[no-any-return]


def thread_reply(client: Client, room_id: str, root_id: str, body: str) -> str:
    return send(client, room_id, {
        "msgtype": "m.text", "body": body,
        "m.relates_to": {"rel_type": "m.thread", "event_id": root_id, "is_falling_back": True,
                         "m.in_reply_to": {"event_id": root_id}},
    })


def react(client: Client, room_id: str, event_id: str, key: str) -> str:
    return send(client, room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}},
                "m.reaction")


def make_admin(url: str, username: str) -> Client:
    """A logged-in server admin, registered through the shared-secret admin API."""
    from tests.test_admin_register import admin_register

    admin = Client(url)
    resp = admin_register(admin, username, "admin password", admin=True)
    assert resp.status_code == 200, resp.text
    admin.access_token = resp.json()["access_token"]
    admin.user_id = resp.json()["user_id"]
    return admin
