"""Stream writers on workers: typing, presence and to-device written by `writer1`, account
data and receipts by `writer2`, while clients talk to the generic worker `worker1`, which
serves `/sync` itself. Every write answers once worker1 has seen it (read-your-writes), typing
reaches worker1 from writer1's memory, users syncing on worker1 are online (USER_SYNC), and
every process reports replication lag in its metrics."""

import re
import secrets
import time
from collections.abc import Iterator

import pytest
import requests

from tests.harness import Client, ServerProcess, free_port, multi_process_deployment, worker_config
from tests.matrix_helpers import enc, long_poll, sync

SERVER_NAME = f"writers-{secrets.token_hex(4)}.test"


@pytest.fixture(scope="module")
def deployment() -> Iterator[list[ServerProcess]]:
    ports = {name: free_port() for name in ("worker1", "writer1", "writer2")}
    workers = [
        worker_config("worker1", ports["worker1"], resources=("client", "metrics")),
        worker_config("writer1", ports["writer1"], resources=("client", "replication")),
        worker_config("writer2", ports["writer2"], resources=("client", "replication")),
    ]
    with multi_process_deployment(
        workers, SERVER_NAME,
        worker_replication_secret="writers-secret",
        run_background_tasks_on="worker1",
        update_user_directory_from_worker="worker1",
        instance_map={name: {"host": "127.0.0.1", "port": ports[name]} for name in ("writer1", "writer2")},
        stream_writers={"typing": "writer1", "presence": "writer1", "to_device": "writer1",
                        "account_data": "writer2", "receipts": "writer2"},
    ) as processes:
        yield processes


def _user(deployment: list[ServerProcess], name: str) -> Client:
    main, worker1 = deployment[0], deployment[1]
    client = Client(main.url)
    client.register(f"{name}{secrets.token_hex(3)}")
    on_worker = Client(worker1.url, client.access_token)
    on_worker.user_id, on_worker.device_id = client.user_id, client.device_id
    return on_worker


def _joined_room(alice: Client, bob: Client) -> str:
    room = alice.post("createRoom", {"preset": "public_chat"}).json()["room_id"]
    assert bob.post(f"join/{enc(room)}", {}).status_code == 200
    return room


def test_sync_is_served_by_the_worker_itself(deployment: list[ServerProcess]) -> None:
    alice = _user(deployment, "alice")
    assert alice.get("sync", params={"timeout": 0}).status_code == 200
    metrics = requests.get(deployment[1].url + "/_synapse/metrics", timeout=5).text
    # worker1 answered the sync itself: its servlet ran there and nothing was forwarded.
    assert re.search(r'^homeserver_http_requests_total\{[^}]*servlet="sync"[^}]*\} [1-9]', metrics, re.M), metrics
    assert 'homeserver_forwarded_requests_total{servlet="sync"' not in metrics
    assert "Forwarding sync requests" not in deployment[1].log()


def test_typing_from_writer_memory_reaches_worker_sync(deployment: list[ServerProcess]) -> None:
    alice, bob = _user(deployment, "alice"), _user(deployment, "bob")
    room = _joined_room(alice, bob)
    since = sync(bob, timeout=0, set_presence="offline")["next_batch"]

    def type_() -> None:
        resp = alice.put(f"rooms/{enc(room)}/typing/{enc(alice.user_id)}", {"typing": True, "timeout": 20000})
        assert resp.status_code == 200, resp.text

    # Bob's long-poll on worker1 wakes when writer1's typing change reaches worker1.
    body, seconds = long_poll(bob, since, type_, timeout_ms=10000, set_presence="offline")
    assert seconds < 5
    ephemeral = body["rooms"]["join"][room]["ephemeral"]["events"]
    assert {"type": "m.typing", "content": {"user_ids": [alice.user_id]}} in ephemeral
    # Stopping is read-your-writes for the typist: their next sync on worker1 shows it.
    since = body["next_batch"]
    assert alice.put(f"rooms/{enc(room)}/typing/{enc(alice.user_id)}", {"typing": False}).status_code == 200
    after = sync(alice, since=since, timeout=0, set_presence="offline")
    assert {"type": "m.typing", "content": {"user_ids": []}} in after["rooms"]["join"][room]["ephemeral"]["events"]


def test_account_data_written_on_its_writer_is_read_at_once(deployment: list[ServerProcess]) -> None:
    alice = _user(deployment, "alice")
    since = sync(alice, timeout=0)["next_batch"]
    for i in range(5):
        resp = alice.put(f"user/{enc(alice.user_id)}/account_data/org.example.n", {"n": i})
        assert resp.status_code == 200, resp.text
        body = sync(alice, since=since, timeout=0)
        events = body.get("account_data", {}).get("events", [])
        assert {"type": "org.example.n", "content": {"n": i}} in events, body
        since = body["next_batch"]


def test_receipts_and_read_markers_across_writers(deployment: list[ServerProcess]) -> None:
    alice, bob = _user(deployment, "alice"), _user(deployment, "bob")
    room = _joined_room(alice, bob)
    event_id = alice.put(f"rooms/{enc(room)}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hi"}).json()["event_id"]
    since = sync(bob, timeout=0)["next_batch"]
    # writer2 writes the receipt and the m.fully_read account data (its own stream too).
    resp = bob.post(f"rooms/{enc(room)}/read_markers", {"m.fully_read": event_id, "m.read": event_id})
    assert resp.status_code == 200, resp.text
    body = sync(bob, since=since, timeout=0)
    joined = body["rooms"]["join"][room]
    assert {"type": "m.fully_read", "content": {"event_id": event_id}} in joined["account_data"]["events"]
    receipts = [e for e in joined["ephemeral"]["events"] if e["type"] == "m.receipt"]
    assert receipts and bob.user_id in receipts[0]["content"][event_id]["m.read"]


def test_to_device_through_worker(deployment: list[ServerProcess]) -> None:
    alice, bob = _user(deployment, "alice"), _user(deployment, "bob")
    since = sync(bob, timeout=0)["next_batch"]
    messages = {bob.user_id: {bob.device_id: {"secret": "s1"}}}
    resp = alice.put("sendToDevice/org.example.ping/txn1", {"messages": messages})
    assert resp.status_code == 200, resp.text
    body = sync(bob, since=since, timeout=5000)
    events = body["to_device"]["events"]
    assert [(e["type"], e["sender"], e["content"]) for e in events] == [("org.example.ping", alice.user_id, {"secret": "s1"})]


def test_users_syncing_on_a_worker_are_online(deployment: list[ServerProcess]) -> None:
    alice, bob = _user(deployment, "alice"), _user(deployment, "bob")
    _joined_room(alice, bob)
    sync(alice, timeout=0, set_presence="online")
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        status = bob.get(f"presence/{enc(alice.user_id)}/status").json()
        if status.get("presence") == "online":
            break
        time.sleep(0.1)
    assert status is not None and status["presence"] == "online", status


def test_every_process_reports_replication_lag(deployment: list[ServerProcess]) -> None:
    alice = _user(deployment, "alice")
    alice.post("createRoom", {})
    alice.put(f"user/{enc(alice.user_id)}/account_data/org.example.lag", {})
    expected = {
        deployment[0].url: 'homeserver_replication_lag{instance="writer2",stream="account_data"}',
        deployment[1].url: 'homeserver_replication_lag{instance="master",stream="events"}',
    }
    for url, series in expected.items():
        metrics = requests.get(url + "/_synapse/metrics", timeout=5).text
        assert series in metrics
        assert 'homeserver_replication_commands_received_total{command="POSITION"}' in metrics
    worker_metrics = requests.get(deployment[1].url + "/_synapse/metrics", timeout=5).text
    # worker1 forwarded the account data write and reached writer2 over HTTP.
    assert 'homeserver_forwarded_requests_total{servlet="account_data_put",target="writer2"}' in worker_metrics


def test_cached_tokens_end_everywhere_through_the_caches_stream(deployment: list[ServerProcess]) -> None:
    main, worker1 = deployment[0], deployment[1]
    name = f"carol{secrets.token_hex(3)}"
    first = Client(main.url)
    first.register(name, "pw-1")
    second = Client(main.url)
    second.login(name, "pw-1")
    on_worker = Client(worker1.url, second.access_token)
    assert on_worker.get("account/whoami").status_code == 200  # now cached on worker1
    # Deleting the second device (UIA with the password) on main ends its token on worker1 too.
    body = {"auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name}, "password": "pw-1"}}
    resp = first.delete(f"devices/{enc(second.device_id)}", body)
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 5
    while on_worker.get("account/whoami").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    after = on_worker.get("account/whoami")
    assert after.status_code == 401 and after.json()["errcode"] == "M_UNKNOWN_TOKEN"
    # The first device's cached token still works.
    assert Client(worker1.url, first.access_token).get("account/whoami").status_code == 200


def test_background_jobs_run_only_where_configured(deployment: list[ServerProcess]) -> None:
    main, worker1 = deployment[0], deployment[1]
    series = 'homeserver_background_job_runs_total{job="prune_cache_invalidations",outcome="ok"}'
    deadline = time.monotonic() + 10
    while series not in requests.get(worker1.url + "/_synapse/metrics", timeout=5).text and time.monotonic() < deadline:
        time.sleep(0.2)
    assert series in requests.get(worker1.url + "/_synapse/metrics", timeout=5).text
    assert "homeserver_background_job_runs_total{" not in requests.get(main.url + "/_synapse/metrics", timeout=5).text


def test_register_and_login_are_served_by_the_worker(deployment: list[ServerProcess]) -> None:
    main, worker1 = deployment[0], deployment[1]
    name = f"dave{secrets.token_hex(3)}"
    on_worker = Client(worker1.url)
    on_worker.register(name, "pw-2", initial_device_display_name="laptop")
    second = Client(worker1.url)
    second.login(name, "pw-2", initial_device_display_name="phone")
    devices = {d["device_id"]: d.get("display_name") for d in on_worker.get("devices").json()["devices"]}
    assert devices == {on_worker.device_id: "laptop", second.device_id: "phone"}
    # The devices were created by main (the device_lists writer), reached over HTTP replication.
    metrics = requests.get(worker1.url + "/_synapse/metrics", timeout=5).text
    assert 'homeserver_replication_http_calls_total{endpoint="register_device",outcome="ok"} 2.0' in metrics
    assert 'homeserver_forwarded_requests_total{servlet="login"' not in metrics
    assert 'homeserver_forwarded_requests_total{servlet="register"' not in metrics
    assert Client(main.url, second.access_token).get("account/whoami").json()["device_id"] == second.device_id


def test_receipt_on_its_writer_wakes_a_long_poll_on_the_worker(deployment: list[ServerProcess]) -> None:
    alice, bob = _user(deployment, "alice"), _user(deployment, "bob")
    room = _joined_room(alice, bob)
    event_id = bob.put(f"rooms/{enc(room)}/send/m.room.message/r1", {"msgtype": "m.text", "body": "read me"}).json()["event_id"]
    since = sync(bob, timeout=0, set_presence="offline")["next_batch"]
    on_writer = Client(deployment[3].url, alice.access_token)

    def receipt() -> None:
        assert on_writer.post(f"rooms/{enc(room)}/receipt/m.read/{enc(event_id)}", {}).status_code == 200

    body, seconds = long_poll(bob, since, receipt, timeout_ms=10000, set_presence="offline")
    assert seconds < 5
    receipts = [e for e in body["rooms"]["join"][room]["ephemeral"]["events"] if e["type"] == "m.receipt"]
    assert alice.user_id in receipts[0]["content"][event_id]["m.read"]
