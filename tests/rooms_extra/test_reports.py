"""Reporting content: POST /rooms/{roomId}/report/{eventId} and POST /rooms/{roomId}/report,
checked against the stored event_reports rows, on both engines."""

import json
from typing import Any

from tests.harness import ServerProcess, query_database
from tests.rooms_extra.helpers import create_room, enc, join, put_state, say
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error


def reports(server: ServerProcess, room_id: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in query_database(
        server.config["database"],
        "SELECT event_id, user_id, reason, content FROM event_reports WHERE room_id = ? ORDER BY id", (room_id,),
    )]


def test_report_event(server: ServerProcess, make_user: Any) -> None:
    alice, bob = make_user("rep"), make_user("bob")
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    event_id = say(alice, room_id, "something offensive")

    resp = bob.post(f"rooms/{enc(room_id)}/report/{enc(event_id)}", {"reason": "rude", "score": -100})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {}
    assert_matches_spec(resp.json(), "report_content.yaml", "/rooms/{roomId}/report/{eventId}", "post", 200)
    # Both fields are optional.
    assert bob.post(f"rooms/{enc(room_id)}/report/{enc(event_id)}", {}).status_code == 200

    rows = reports(server, room_id)
    assert [row[:3] for row in rows] == [(event_id, bob.user_id, "rude"), (event_id, bob.user_id, None)]
    assert json.loads(rows[0][3]) == {"reason": "rude", "score": -100}


def test_report_event_not_found(server: ServerProcess, make_user: Any) -> None:
    alice, bob, outsider = make_user("rep"), make_user("bob"), make_user("out")
    room_id = create_room(alice, preset="private_chat")
    put_state(alice, room_id, "m.room.history_visibility", {"history_visibility": "joined"})
    hidden = say(alice, room_id, "before bob")
    assert alice.post(f"rooms/{enc(room_id)}/invite", {"user_id": bob.user_id}).status_code == 200
    join(bob, room_id)
    visible = say(alice, room_id, "after bob")

    for client, event_id in ((bob, hidden), (outsider, visible), (bob, "$nonexistent")):
        body = assert_error(client.post(f"rooms/{enc(room_id)}/report/{enc(event_id)}", {"reason": "x"}), 404,
                            "M_NOT_FOUND")
        assert_matches_spec(body, "report_content.yaml", "/rooms/{roomId}/report/{eventId}", "post", 404)
    # The event exists, but not in the room named.
    other = create_room(bob)
    assert_error(bob.post(f"rooms/{enc(other)}/report/{enc(visible)}", {}), 404, "M_NOT_FOUND")
    assert reports(server, room_id) == [] and reports(server, other) == []
    assert bob.post(f"rooms/{enc(room_id)}/report/{enc(visible)}", {"reason": "ok"}).status_code == 200


def test_report_event_bad_fields(make_user: Any) -> None:
    alice = make_user("rep")
    room_id = create_room(alice)
    event_id = say(alice, room_id, "hi")
    url = f"rooms/{enc(room_id)}/report/{enc(event_id)}"
    assert_error(alice.post(url, {"reason": 5}), 400)
    assert_error(alice.post(url, {"reason": "x" * 5000}), 400)


def test_report_room(server: ServerProcess, make_user: Any, server_name: str) -> None:
    alice, bob = make_user("rep"), make_user("bob")
    room_id = create_room(alice, preset="public_chat")
    resp = bob.post(f"rooms/{enc(room_id)}/report", {"reason": "spam room"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {}
    assert_matches_spec(resp.json(), "report_content.yaml", "/rooms/{roomId}/report", "post", 200)
    assert [row[:3] for row in reports(server, room_id)] == [("", bob.user_id, "spam room")]

    body = assert_error(bob.post(f"rooms/{enc(f'!unknown:{server_name}')}/report", {"reason": "?"}), 404, "M_NOT_FOUND")
    assert_matches_spec(body, "report_content.yaml", "/rooms/{roomId}/report", "post", 404)
    assert_error(bob.post(f"rooms/{enc(room_id)}/report", {"reason": ["not", "a", "string"]}), 400)
    # Unlike for events, a room report needs a reason (which may be blank).
    assert_error(bob.post(f"rooms/{enc(room_id)}/report", {}), 400, "M_BAD_JSON")
    assert bob.post(f"rooms/{enc(room_id)}/report", {"reason": ""}).status_code == 200
    assert len(reports(server, room_id)) == 2
