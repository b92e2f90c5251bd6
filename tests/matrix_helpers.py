"""Client-side helpers shared by the test modules: path encoding, error checks, spec-checked
syncs and long-polls."""

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests

from tests.harness import Client
from tests.spec import assert_matches_spec


def enc(value: str) -> str:
    """A user id, room id or type as one URL path segment."""
    return quote(value, safe="")


def assert_error(resp: requests.Response, status: int, errcode: str | None = None) -> dict[str, Any]:
    """The response is a Matrix error with this status (and errcode)."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    body = resp.json()
    assert isinstance(body.get("errcode"), str) and isinstance(body.get("error"), str), body
    if errcode is not None:
        assert body["errcode"] == errcode, body
    return body  # type: ignore[no-any-return]


def sync(client: Client, **params: Any) -> dict[str, Any]:
    """A /sync whose response is checked against the spec."""
    resp = client.get("sync", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "sync.yaml", "/sync", "get", 200)
    return body  # type: ignore[no-any-return]


def long_poll(client: Client, since: str, action: Callable[[], Any], timeout_ms: int = 20000,
              **params: Any) -> tuple[dict[str, Any], float]:
    """Start a long-polling /sync, run `action` while it waits, and return the sync's body and
    how many seconds it took."""
    result: dict[str, Any] = {}

    def poll() -> None:
        start = time.monotonic()
        result["body"] = sync(client, since=since, timeout=timeout_ms, **params)
        result["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    action()
    thread.join(timeout_ms / 1000 + 10)
    assert "body" in result, "the long-poll did not return"
    return result["body"], result["seconds"]
