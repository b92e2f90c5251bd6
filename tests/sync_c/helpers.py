"""Helpers of the typing, receipt, read marker and presence tests: rooms, messages, syncs and
events checked against the spec's schemas, error checks and polling."""

import functools
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import jsonschema

from tests.harness import Client
from tests.matrix_helpers import assert_error, enc  # noqa: F401 - re-exported for the tests
from tests.spec import _load, _resolve, assert_matches_spec

EVENT_SCHEMAS = os.path.join(os.path.dirname(__file__), "..", "matrix-spec", "data", "event-schemas", "schema")
_txn_ids = iter(range(1, 10**9))




@functools.cache
def _event_schema(name: str) -> dict[str, Any]:
    path = os.path.normpath(os.path.join(EVENT_SCHEMAS, name))
    return _resolve(_load(path), path, _load(path))  # type: ignore[no-any-return]


def assert_event_matches(event: dict[str, Any], schema_file: str) -> None:
    """Validate an event against its schema in the spec (e.g. `m.typing.yaml`)."""
    jsonschema.Draft202012Validator(_event_schema(schema_file)).validate(event)


def shared_room(owner: Client, *others: Client) -> str:
    """A public room created by `owner` that each of `others` joined."""
    resp = owner.post("createRoom", {"preset": "public_chat"})
    assert resp.status_code == 200, resp.text
    room_id: str = resp.json()["room_id"]
    for other in others:
        joined = other.post(f"join/{enc(room_id)}", {})
        assert joined.status_code == 200, joined.text
    return room_id


def send(client: Client, room_id: str, body: str = "hello", **content: Any) -> str:
    """Send an m.room.message; returns its event id."""
    resp = client.put(f"rooms/{enc(room_id)}/send/m.room.message/t{next(_txn_ids)}",
                      {"msgtype": "m.text", "body": body, **content})
    assert resp.status_code == 200, resp.text
    return resp.json()["event_id"]  # type: ignore[no-any-return]


def sync(client: Client, **params: Any) -> dict[str, Any]:
    """A /sync response checked against the spec; a dict `filter` is sent as JSON."""
    if isinstance(params.get("filter"), dict):
        params["filter"] = json.dumps(params["filter"])
    resp = client.get("sync", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "sync.yaml", "/sync", "get", 200)
    return body  # type: ignore[no-any-return]


def ephemeral(body: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    """The room's ephemeral events of one type in a sync response."""
    room = body["rooms"]["join"].get(room_id)
    if room is None:
        return []
    return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]


def presence_events(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """sender -> content of the presence events of a sync response, each schema-checked."""
    events = body["presence"]["events"]
    for event in events:
        assert_event_matches(event, "m.presence.yaml")
    found = {e["sender"]: e["content"] for e in events}
    assert len(found) == len(events), events
    return found


def set_presence(client: Client, presence: str, status_msg: str | None = None) -> None:
    body: dict[str, Any] = {"presence": presence}
    if status_msg is not None:
        body["status_msg"] = status_msg
    resp = client.put(f"presence/{enc(client.user_id or '')}/status", body)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "presence.yaml", "/presence/{userId}/status", "put", 200)


def get_presence(client: Client, user_id: str) -> dict[str, Any]:
    resp = client.get(f"presence/{enc(user_id)}/status")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "presence.yaml", "/presence/{userId}/status", "get", 200)
    return body  # type: ignore[no-any-return]


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(interval)


class Background:
    """A call run on another thread (a long-polling sync), with how long it took."""

    def __init__(self, fn: Callable[[], Any]):
        self.result: Any = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._fn = fn
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        try:
            self.result = self._fn()
        except BaseException as e:  # re-raised by join()
            self.error = e
        self.seconds = time.monotonic() - start

    def join(self, timeout: float = 30.0) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the background call did not finish"
        if self.error is not None:
            raise self.error
        return self.result
