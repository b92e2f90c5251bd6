"""GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event: the closest event to a timestamp
in either direction, on both engines."""

import time
from typing import Any

from tests.harness import Client
from tests.rooms_extra.helpers import V1, create_room, enc, say
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error


def closest(client: Client, room_id: str, ts: int, direction: str) -> dict[str, Any]:
    resp = client.get(f"{V1}/rooms/{enc(room_id)}/timestamp_to_event", params={"ts": ts, "dir": direction})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "room_event_by_timestamp.yaml", "/rooms/{roomId}/timestamp_to_event", "get", 200)
    return body  # type: ignore[no-any-return]


def timestamp(client: Client, room_id: str, event_id: str) -> int:
    resp = client.get(f"rooms/{enc(room_id)}/event/{enc(event_id)}")
    assert resp.status_code == 200, resp.text
    return resp.json()["origin_server_ts"]  # type: ignore[no-any-return]


def test_finds_events_by_timestamp(make_user: Any) -> None:
    alice = make_user("ts")
    room_id = create_room(alice)
    events = []
    for i in range(3):
        time.sleep(0.02)
        events.append(say(alice, room_id, f"message {i}"))
    stamps = [timestamp(alice, room_id, e) for e in events]
    assert stamps[0] < stamps[1] < stamps[2]

    assert closest(alice, room_id, stamps[1], "f") == {"event_id": events[1], "origin_server_ts": stamps[1]}
    assert closest(alice, room_id, stamps[1], "b") == {"event_id": events[1], "origin_server_ts": stamps[1]}
    assert closest(alice, room_id, stamps[1] + 1, "f")["event_id"] == events[2]
    assert closest(alice, room_id, stamps[2] - 1, "b")["event_id"] == events[1]
    assert closest(alice, room_id, stamps[2] + 60_000, "b")["event_id"] == events[2]
    # Before the first message there is the room's creation.
    first = closest(alice, room_id, 0, "f")
    assert first["origin_server_ts"] <= stamps[0]
    created = alice.get(f"rooms/{enc(room_id)}/event/{enc(first['event_id'])}").json()
    assert created["type"] == "m.room.create"


def test_nothing_found(make_user: Any) -> None:
    alice = make_user("ts")
    room_id = create_room(alice)
    say(alice, room_id, "only message")
    future = int(time.time() * 1000) + 3_600_000
    body = assert_error(alice.get(f"{V1}/rooms/{enc(room_id)}/timestamp_to_event", params={"ts": future, "dir": "f"}),
                        404, "M_NOT_FOUND")
    assert_matches_spec(body, "room_event_by_timestamp.yaml", "/rooms/{roomId}/timestamp_to_event", "get", 404)
    assert_error(alice.get(f"{V1}/rooms/{enc(room_id)}/timestamp_to_event", params={"ts": 0, "dir": "b"}),
                 404, "M_NOT_FOUND")


def test_access_and_bad_parameters(make_user: Any) -> None:
    alice, outsider = make_user("ts"), make_user("out")
    room_id = create_room(alice, preset="private_chat")
    say(alice, room_id, "private")
    now = int(time.time() * 1000)
    url = f"{V1}/rooms/{enc(room_id)}/timestamp_to_event"
    assert_error(outsider.get(url, params={"ts": now, "dir": "b"}), 403, "M_FORBIDDEN")
    assert_error(alice.get(url, params={"ts": now}), 400)
    assert_error(alice.get(url, params={"ts": "soon", "dir": "b"}), 400)
    assert_error(alice.get(url, params={"ts": now, "dir": "sideways"}), 400)
    assert_error(Client(alice.base_url).get(url, params={"ts": now, "dir": "b"}), 401, "M_MISSING_TOKEN")
