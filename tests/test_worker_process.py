"""A generic worker process beside the main process on one PostgreSQL database: it accepts
legacy app names, serves the worker endpoints with the same answers as main, and refuses to
start on a database the main process has not migrated."""

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest
import requests
import yaml

from homeserver.storage.schema import SCHEMA_VERSION
from tests.harness import (
    REDIS_HOST,
    REDIS_PORT,
    Client,
    ServerProcess,
    base_config,
    database_config,
    free_port,
    multi_process_deployment,
    worker_config,
)

SERVER_NAME = f"workers-{secrets.token_hex(4)}.test"


@pytest.fixture(scope="module")
def deployment() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    worker = worker_config("synchrotron1", free_port(), "synchrotron")
    with multi_process_deployment([worker], SERVER_NAME) as (main, synchrotron):
        yield main, synchrotron


def test_worker_serves_the_same_answers(deployment: tuple[ServerProcess, ServerProcess]) -> None:
    main, worker = deployment
    on_main = Client(main.url)
    on_main.register("workeruser", initial_device_display_name="phone")
    on_worker = Client(worker.url, on_main.access_token)
    for path in ("account/whoami", "devices", "/_matrix/client/versions"):
        from_main = on_main.get(path)
        from_worker = on_worker.get(path)
        assert from_worker.status_code == 200, from_worker.text
        assert from_worker.json() == from_main.json()
    assert on_worker.get("account/whoami").json()["user_id"] == f"@workeruser:{SERVER_NAME}"


def test_logout_on_main_is_seen_by_worker(deployment: tuple[ServerProcess, ServerProcess]) -> None:
    main, worker = deployment
    on_main = Client(main.url)
    on_main.register("shortlived")
    on_worker = Client(worker.url, on_main.access_token)
    assert on_worker.get("account/whoami").status_code == 200
    assert on_main.post("logout", {}).status_code == 200
    after = on_worker.get("account/whoami")
    assert after.status_code == 401
    assert after.json()["errcode"] == "M_UNKNOWN_TOKEN"


def test_worker_refuses_unmigrated_database() -> None:
    with tempfile.TemporaryDirectory(prefix="hs-test-") as directory, database_config("postgres", directory) as db:
        shared = base_config(directory, db, free_port())
        shared["redis"] = {"enabled": True, "host": REDIS_HOST, "port": REDIS_PORT}
        worker = ServerProcess(directory, shared, "homeserver.app.generic_worker", [worker_config("w1", free_port())], name="w1")
        result = subprocess.run(worker.command(), capture_output=True, text=True, timeout=30, cwd=directory)
        assert result.returncode == 1
        assert f"schema version {SCHEMA_VERSION}" in result.stderr and "main process" in result.stderr
        assert "Traceback" not in result.stderr


def test_main_refuses_a_worker_file() -> None:
    with tempfile.TemporaryDirectory(prefix="hs-test-") as directory:
        shared = base_config(directory, {"name": "psycopg2", "args": {"dbname": "unused"}}, free_port())
        shared["redis"] = {"enabled": True}
        path = os.path.join(directory, "w.yaml")
        with open(path, "w") as f:
            yaml.safe_dump({**shared, **worker_config("w1", free_port())}, f)
        result = subprocess.run([sys.executable, "-m", "homeserver.app.homeserver", "-c", path],
                                capture_output=True, text=True, timeout=30, cwd=directory)
        assert result.returncode == 1
        assert len(result.stderr.strip().splitlines()) == 1
        assert "homeserver.app.generic_worker" in result.stderr


def test_worker_sees_a_redaction_made_on_main(deployment: tuple[ServerProcess, ServerProcess]) -> None:
    """Replication: the worker's cached copy of an event is dropped when main redacts it."""
    main, worker = deployment
    on_main = Client(main.url)
    on_main.register("redactor")
    room = on_main.post("createRoom", {}).json()["room_id"]
    event_id = on_main.put(f"rooms/{room}/send/m.room.message/1", {"msgtype": "m.text", "body": "oops"}).json()["event_id"]
    on_worker = Client(worker.url, on_main.access_token)
    assert on_worker.get(f"rooms/{room}/event/{event_id}").json()["content"]["body"] == "oops"
    assert on_main.put(f"rooms/{room}/redact/{event_id}/r1", {}).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        content = on_worker.get(f"rooms/{room}/event/{event_id}").json()["content"]
        if content == {}:
            break
        time.sleep(0.1)
    assert content == {}


def test_events_sent_through_a_worker_are_persisted_by_main(deployment: tuple[ServerProcess, ServerProcess]) -> None:
    """HTTP replication: the worker creates the event, the room's persister (main) writes it,
    and the worker answers only once it can read it back."""
    main, worker = deployment
    alice = Client(main.url)
    alice.register("sender")
    on_worker = Client(worker.url, alice.access_token)
    created = on_worker.post("createRoom", {"preset": "public_chat", "name": "via worker"})
    assert created.status_code == 200, created.text
    room = created.json()["room_id"]
    first = on_worker.put(f"rooms/{room}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hello"})
    assert first.status_code == 200, first.text
    # A retry of the same transaction gives the same event.
    again = on_worker.put(f"rooms/{room}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hello"})
    assert again.json()["event_id"] == first.json()["event_id"]
    # Read your own write on the worker at once, and on main.
    for client in (on_worker, alice):
        page = client.get(f"rooms/{room}/messages", params={"limit": 5}).json()["chunk"]
        assert [e["content"].get("body") for e in page if e["type"] == "m.room.message"] == ["hello"]
    assert alice.get(f"rooms/{room}/state/m.room.name").json() == {"name": "via worker"}


def test_replication_listener_requires_the_secret() -> None:
    with tempfile.TemporaryDirectory(prefix="hs-test-") as directory:
        config = base_config(directory, {"name": "sqlite3", "args": {"database": "hs.db"}}, free_port())
        config["worker_replication_secret"] = "s3cret"
        server = ServerProcess(directory, config).start()
        try:
            url = server.url + "/_synapse/replication/persist_event/abc"
            no_secret = requests.post(url, json={})
            assert no_secret.status_code == 401
            wrong = requests.post(url, json={}, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            right = requests.post(url, json={}, headers={"Authorization": "Bearer s3cret"})
            assert right.status_code == 400  # past the secret check: the body is incomplete
        finally:
            server.stop()


def test_worker_forwards_what_it_may_not_serve(deployment: tuple[ServerProcess, ServerProcess]) -> None:
    """The misroute guard: endpoints of the main process or a stream writer work through a
    worker too (account data, typing, /sync, capabilities), answered by the right process."""
    main, worker = deployment
    alice = Client(main.url)
    alice.register("forwarded")
    on_worker = Client(worker.url, alice.access_token)
    put = on_worker.put(f"user/{alice.user_id}/account_data/org.example.colour", {"colour": "teal"})
    assert put.status_code == 200, put.text
    assert alice.get(f"user/{alice.user_id}/account_data/org.example.colour").json() == {"colour": "teal"}
    assert on_worker.get("capabilities").status_code == 200
    room = on_worker.post("createRoom", {}).json()["room_id"]
    assert on_worker.put(f"rooms/{room}/typing/{alice.user_id}", {"typing": True, "timeout": 5000}).status_code == 200
    synced = on_worker.get("sync")
    assert synced.status_code == 200, synced.text
    body = synced.json()
    assert room in body["rooms"]["join"]
    assert {"type": "org.example.colour", "content": {"colour": "teal"}} in body["account_data"]["events"]
    unknown = on_worker.get("/_matrix/client/v3/no/such/endpoint")
    assert unknown.status_code == 404 and unknown.json()["errcode"] == "M_UNRECOGNIZED"


def test_a_second_worker_with_the_same_name_is_refused(deployment: tuple[ServerProcess, ServerProcess]) -> None:
    main, worker = deployment
    clone = ServerProcess(
        worker.directory, worker.config, "homeserver.app.generic_worker",
        [worker_config("synchrotron1", free_port(), "synchrotron")], name="synchrotron1-clone",
    )
    result = subprocess.run(clone.command(), capture_output=True, text=True, timeout=60, cwd=worker.directory)
    assert result.returncode == 1
    assert "synchrotron1" in result.stderr and "worker_name" in result.stderr
