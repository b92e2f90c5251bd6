"""Sharded event persisters: with two `events` writers, each room is assigned to one of them
when it is first written, the assignment is stored, and events of a room created on any
process are persisted by its persister; clients see all of them from every process."""

import secrets
import time
from collections.abc import Iterator

import pytest

from tests.harness import (
    Client,
    ServerProcess,
    free_port,
    multi_process_deployment,
    query_database,
    worker_config,
)

SERVER_NAME = f"persisters-{secrets.token_hex(4)}.test"


@pytest.fixture(scope="module")
def deployment() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    persister_port = free_port()
    persister = worker_config("persister1", persister_port, resources=("client", "replication"))
    with multi_process_deployment(
        [persister], SERVER_NAME,
        worker_replication_secret="replication-secret",
        instance_map={"persister1": {"host": "127.0.0.1", "port": persister_port}},
        stream_writers={"events": ["main", "persister1"]},
    ) as (main, persister_process):
        yield main, persister_process


def test_rooms_spread_over_persisters_and_read_everywhere(deployment: tuple[ServerProcess, ServerProcess]) -> None:
    main, persister = deployment
    alice = Client(main.url)
    alice.register("alice")
    on_persister = Client(persister.url, alice.access_token)
    rooms = []
    for i in range(8):
        creator = alice if i % 2 == 0 else on_persister
        resp = creator.post("createRoom", {"name": f"room {i}"})
        assert resp.status_code == 200, resp.text
        rooms.append(resp.json()["room_id"])
    assignments = dict(query_database(main.config["database"], "SELECT room_id, instance_name FROM room_persisters"))
    assert {assignments[r] for r in rooms} == {"master", "persister1"}
    # Every room's events were written by its persister.
    for room in rooms:
        writers = {w for (w,) in query_database(main.config["database"],
                                                "SELECT DISTINCT instance_name FROM events WHERE room_id = ?", (room,))}
        assert writers == {assignments[room]}
    for i, room in enumerate(rooms):
        sender = on_persister if i % 2 == 0 else alice
        resp = sender.put(f"rooms/{room}/send/m.room.message/m{i}", {"msgtype": "m.text", "body": f"hello {i}"})
        assert resp.status_code == 200, resp.text
    for client in (alice, on_persister):
        for i, room in enumerate(rooms):
            chunk = client.get(f"rooms/{room}/messages", params={"limit": 1}).json()["chunk"]
            assert chunk[0]["content"]["body"] == f"hello {i}"
    # Writes persisted by persister1 reach main's sync once its POSITION arrives (at once,
    # or at the latest with the next once-a-second heartbeat): every room's last message.
    expected = {room: f"hello {i}" for i, room in enumerate(rooms)}
    deadline = time.monotonic() + 5
    while True:
        body = alice.get("sync", params={"filter": '{"room": {"timeline": {"limit": 1}}}'}).json()
        latest = {room: body["rooms"]["join"][room]["timeline"]["events"][-1]["content"].get("body") for room in rooms}
        if latest == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert latest == expected


def test_sync_wakes_for_events_persisted_by_the_other_persister(deployment: tuple[ServerProcess, ServerProcess]) -> None:
    main, persister = deployment
    alice = Client(main.url)
    alice.register("waker")
    on_persister = Client(persister.url, alice.access_token)
    rooms = [alice.post("createRoom", {}).json()["room_id"] for _ in range(12)]
    assignments = dict(query_database(main.config["database"], "SELECT room_id, instance_name FROM room_persisters"))
    remote_room = next(r for r in rooms if assignments[r] == "persister1")
    token = alice.get("sync").json()["next_batch"]
    on_persister.put(f"rooms/{remote_room}/send/m.room.message/x", {"msgtype": "m.text", "body": "from afar"})
    start = time.monotonic()
    body = alice.get("sync", params={"since": token, "timeout": 10000}).json()
    assert time.monotonic() - start < 5
    events = body["rooms"]["join"][remote_room]["timeline"]["events"]
    assert [e["content"]["body"] for e in events] == ["from afar"]
