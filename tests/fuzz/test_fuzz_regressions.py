"""Inputs that fuzzing from the spec (tests/fuzz/test_spec_fuzz.py) found the server mishandling,
as plain regression tests: each once answered 500 (a few of the inputs beside them, such as a
thread token of 30 nines, were taken as numbers instead of being refused)."""

from typing import Any
from urllib.parse import quote

import pytest

from tests.harness import Client
from tests.matrix_helpers import assert_error

# Strings that str.isdigit() accepts but int() rejects (superscripts, other scripts' digits), and
# decimal numbers past PostgreSQL's BIGINT.
NOT_ASCII_DIGITS = ["\u00b9", "\u00b2\u00b3", "\u0663"]
TOO_BIG = "9" * 30


def _room(user: Client) -> str:
    resp = user.post("createRoom", {})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["room_id"])


@pytest.mark.parametrize("version", [*NOT_ASCII_DIGITS, TOO_BIG])
def test_room_keys_with_a_version_that_is_no_number(make_user: Any, version: str) -> None:
    """GET /room_keys/keys/{roomId}?version=¹ once answered 500 (int() of a superscript)."""
    alice = make_user("alice")
    room_id = quote(_room(alice), safe="")
    assert_error(alice.get(f"room_keys/keys/{room_id}", params={"version": version}), 404, "M_NOT_FOUND")
    assert_error(alice.get("room_keys/keys", params={"version": version}), 404, "M_NOT_FOUND")
    assert_error(alice.get(f"room_keys/version/{quote(version)}"), 404, "M_NOT_FOUND")


@pytest.mark.parametrize("filter_id", [*NOT_ASCII_DIGITS, TOO_BIG])
def test_filter_id_that_is_no_number(make_user: Any, filter_id: str) -> None:
    alice = make_user("alice")
    assert_error(alice.get(f"user/{quote(alice.user_id)}/filter/{quote(filter_id)}"), 404, "M_NOT_FOUND")


@pytest.mark.parametrize("token", [*NOT_ASCII_DIGITS, TOO_BIG])
def test_threads_from_token_that_is_no_number(make_user: Any, token: str) -> None:
    alice = make_user("alice")
    room_id = quote(_room(alice), safe="")
    resp = alice.get(f"/_matrix/client/v1/rooms/{room_id}/threads", params={"from": token})
    assert_error(resp, 400, "M_INVALID_PARAM")


@pytest.mark.parametrize("token", [f"o{t}" for t in [*NOT_ASCII_DIGITS, TOO_BIG]])
def test_offset_tokens_that_are_no_number(make_user: Any, token: str) -> None:
    alice = make_user("alice")
    room_id = quote(_room(alice), safe="")
    for resp in (
        alice.get(f"/_matrix/client/v1/rooms/{room_id}/hierarchy", params={"from": token}),
        alice.post("search", {"search_categories": {"room_events": {"search_term": "x"}}},
                   params={"next_batch": token}),
        alice.get("publicRooms", params={"since": token}),
    ):
        assert resp.status_code < 500, resp.text
        assert_error(resp, 400, "M_INVALID_PARAM")


def test_delete_devices_with_a_nul_in_a_device_id(make_user: Any) -> None:
    """POST /delete_devices {"devices": ["\\u0000"], "auth": <password>} once answered 500."""
    alice = make_user("alice")
    auth = {"type": "m.login.password", "password": alice.password,
            "identifier": {"type": "m.id.user", "user": alice.user_id}}
    assert_error(alice.post("delete_devices", {"devices": ["\u0000"], "auth": auth}), 400, "M_INVALID_PARAM")
    assert_error(alice.post("delete_devices", {"devices": ["a\u0000b"]}), 400, "M_INVALID_PARAM")
    # The user's own device is still there.
    assert alice.get("account/whoami").status_code == 200


def test_message_with_a_nul_is_stored_readable_and_searchable(make_user: Any) -> None:
    """A NUL in a message body once lost the event (the search index refused it): now the
    event is stored as sent, reads back with the NUL, and its words are found."""
    alice = make_user("alice")
    room_id = _room(alice)
    body = "nulword\u0000secondword"
    sent = alice.put(f"rooms/{quote(room_id, safe='')}/send/m.room.message/nul1", {"msgtype": "m.text", "body": body})
    assert sent.status_code == 200, sent.text
    event_id = sent.json()["event_id"]
    read = alice.get(f"rooms/{quote(room_id, safe='')}/event/{quote(event_id, safe='')}")
    assert read.status_code == 200 and read.json()["content"]["body"] == body, read.text
    found = alice.post("search", {"search_categories": {"room_events": {"search_term": "secondword"}}})
    assert found.status_code == 200, found.text
    results = found.json()["search_categories"]["room_events"]["results"]
    assert [r["result"]["event_id"] for r in results] == [event_id]


@pytest.mark.parametrize("body", ['{"msgtype": "m.text", "body": "\\ud800"}', '{"\\udfff": "x"}'])
def test_lone_surrogate_in_a_body_is_refused(make_user: Any, body: str) -> None:
    """Valid JSON that no UTF-8 store can hold once answered 500 (or never answered)."""
    alice = make_user("alice")
    room_id = quote(_room(alice), safe="")
    resp = alice.request("PUT", f"rooms/{room_id}/send/m.room.message/sur1", data=body.encode(),
                         headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "M_NOT_JSON")


def test_nul_in_free_text_fields_is_stored(make_user: Any) -> None:
    """A NUL in a report reason or a display name (valid JSON, but PostgreSQL text cannot
    hold it) once answered 500; it is stored as U+FFFD."""
    alice = make_user("alice")
    room_id = _room(alice)
    sent = alice.put(f"rooms/{quote(room_id, safe='')}/send/m.room.message/r1", {"msgtype": "m.text", "body": "x"})
    event_id = sent.json()["event_id"]
    reported = alice.post(f"rooms/{quote(room_id, safe='')}/report/{quote(event_id, safe='')}", {"reason": "\u0000"})
    assert reported.status_code == 200, reported.text
    renamed = alice.put(f"profile/{quote(alice.user_id)}/displayname", {"displayname": "a\u0000b"})
    assert renamed.status_code == 200, renamed.text
    shown = alice.get(f"profile/{quote(alice.user_id)}/displayname")
    assert shown.status_code == 200 and shown.json()["displayname"] in ("a\u0000b", "a\ufffdb"), shown.text
