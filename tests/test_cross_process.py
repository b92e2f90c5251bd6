"""What a user notices across the processes of one deployment (DESIGN §3, §5): a message sent
through one worker wakes a long-poll on another, tokens issued anywhere work everywhere,
per-room order holds under concurrent sends through several processes and two event
persisters, writes to another process's stream are forwarded, the replication listener wants
its secret, and a client reads its own writes.

One deployment for the module: main, two event persisters (persister1 also writes
account_data, persister2 typing) and two generic workers A and B."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.harness import Client
from tests.replication_helpers import (
    NO_PRESENCE,
    SECRET,
    Deployment,
    assert_ok,
    create_room,
    deployment,
    is_matrix_error,
    join,
    keep_logs,
    message_bodies,
    new_user,
    on,
    room_history,
    send_text,
    sync_body,
    timeline_bodies,
    wait_until,
)

PROCESSES = ("main", "persister1", "persister2", "worker_a", "worker_b")
# Presence would wake a long-poll of its own accord; these tests watch rooms.
LIMIT_5 = '{"presence": {"not_types": ["*"]}, "room": {"timeline": {"limit": 5}}}'


@pytest.fixture(scope="module")
def cluster() -> Iterator[Deployment]:
    with deployment("crossproc") as d:
        for name in PROCESSES[1:]:
            d.add_worker(name)
        d.shared["stream_writers"] = {
            "events": ["persister1", "persister2"],
            "account_data": ["persister1"],
            "typing": ["persister2"],
        }
        d.start_all()
        yield d


@pytest.fixture(autouse=True)
def logs_on_failure(request: pytest.FixtureRequest, cluster: Deployment) -> Iterator[None]:
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        keep_logs(cluster, request.node.name)




def quiet_token(client: Client, rooms: list[str], filter_json: str = NO_PRESENCE) -> str:
    """A sync token after which nothing more arrives for this user for a moment, once its
    sync has shown `rooms` (so a long-poll from it waits instead of returning at once with
    older news)."""
    body = sync_body(client, filter=filter_json)
    seen = set(body["rooms"]["join"])
    token = body["next_batch"]
    for _ in range(40):
        start = time.monotonic()
        body = sync_body(client, since=token, timeout=400, filter=filter_json)
        seen |= set(body["rooms"]["join"])
        token = body["next_batch"]
        if seen >= set(rooms) and time.monotonic() - start >= 0.35:
            return str(token)
    raise AssertionError(f"the user's sync never went quiet (rooms seen: {seen}, wanted: {rooms})")


def long_poll_in_background(
    client: Client, since: str, timeout_ms: int
) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def poll() -> None:
        try:
            result["body"] = sync_body(
                client,
                http_timeout=timeout_ms / 1000 + 15,
                since=since,
                timeout=timeout_ms,
                filter=NO_PRESENCE,
            )
        except BaseException as e:  # reported by the test
            result["error"] = e
        result["returned"] = time.monotonic()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return thread, result


def test_message_through_worker_a_wakes_long_poll_on_worker_b(cluster: Deployment) -> None:
    alice = new_user(cluster.url("worker_a"), "waker")
    room = create_room(alice)
    on_b = on(cluster.url("worker_b"), alice)
    token = quiet_token(on_b, [room])
    thread, result = long_poll_in_background(on_b, token, 10000)
    time.sleep(1.0)  # the long-poll is waiting on B
    assert "returned" not in result, f"the long-poll returned before anything was sent: {result}"
    sent_at = time.monotonic()
    assert_ok(send_text(alice, room, "wake up"))
    thread.join(20)
    assert "error" not in result, result.get("error")
    assert "body" in result, "the long-poll on B did not return"
    assert timeline_bodies(result["body"], room) == ["wake up"], result["body"]
    latency = result["returned"] - sent_at
    assert latency < 3.0, f"B's long-poll woke {latency:.1f}s after the send (its timeout is 10s)"


def test_replication_through_a_redis_that_asks_for_a_password() -> None:
    """`redis.password` is sent (AUTH) on both connections: a send on worker A wakes a
    long-poll on worker B, which can only hear of it through Redis."""
    with deployment("redisauth", redis=True, redis_password="s3cret-" + "x" * 8) as d:
        for name in ("worker_a", "worker_b"):
            d.add_worker(name)
        d.start_all()
        alice = new_user(d.url("worker_a"), "auth")
        room = create_room(alice)
        on_b = on(d.url("worker_b"), alice)
        wait_until(lambda: room in sync_body(on_b, filter=NO_PRESENCE)["rooms"]["join"], 10)
        token = quiet_token(on_b, [room])
        thread, result = long_poll_in_background(on_b, token, 10000)
        time.sleep(1.0)
        sent_at = time.monotonic()
        assert_ok(send_text(alice, room, "through an authenticated redis"))
        thread.join(20)
        assert timeline_bodies(result.get("body", {}), room) == ["through an authenticated redis"], result
        assert result["returned"] - sent_at < 3.0, "B heard of the send only when its long-poll timed out"


def test_tokens_from_one_process_work_on_another(cluster: Deployment) -> None:
    alice = new_user(cluster.url("worker_a"), "tokens")
    on_b = on(cluster.url("worker_b"), alice)
    room = create_room(alice, name="tokens")
    for i in range(5):
        assert_ok(send_text(alice, room, f"early {i}"))
    # (Read-your-writes has its own tests; this one only needs A's token after the 5.)
    first = wait_until(
        lambda: (
            body
            if len(timeline_bodies(body := sync_body(alice, filter=LIMIT_5), room)) == 5
            else None
        ),
        5,
    )
    assert first and timeline_bodies(first, room) == [f"early {i}" for i in range(5)]
    token_a = first["next_batch"]
    prev_batch_a = first["rooms"]["join"][room]["timeline"]["prev_batch"]

    # The next sync on B from A's token repeats nothing and has what came later.
    assert_ok(send_text(alice, room, "later via A"))
    assert_ok(send_text(on_b, room, "later via B"))
    seen: list[str] = []
    since = token_a
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        body = sync_body(on_b, since=since, timeout=2000, filter=NO_PRESENCE)
        seen += timeline_bodies(body, room)
        since = body["next_batch"]
    assert seen == ["later via A", "later via B"]

    # /messages on B from tokens A issued: A's next_batch (the newest events before it) and
    # A's prev_batch (what came before A's timeline), and a page-by-page walk that switches
    # process at every page.
    from_next = assert_ok(
        on_b.get(f"rooms/{room}/messages", params={"from": token_a, "dir": "b", "limit": 3})
    )
    assert message_bodies(from_next["chunk"]) == ["early 4", "early 3", "early 2"]
    from_prev = assert_ok(
        on_b.get(f"rooms/{room}/messages", params={"from": prev_batch_a, "dir": "b", "limit": 50})
    )
    assert message_bodies(from_prev["chunk"]) == []
    assert {e["type"] for e in from_prev["chunk"]} >= {"m.room.create", "m.room.member"}
    walked: list[dict[str, Any]] = []
    token: str | None = None
    clients = [alice, on_b]
    for page in range(100):
        params: dict[str, Any] = {"dir": "b", "limit": 2}
        if token:
            params["from"] = token
        body = assert_ok(clients[page % 2].get(f"rooms/{room}/messages", params=params))
        walked += body["chunk"]
        token = body.get("end")
        if not body["chunk"] or token is None:
            break
    ids = [e["event_id"] for e in walked]
    assert len(ids) == len(set(ids)), "a page repeated events"
    assert ids == [e["event_id"] for e in reversed(room_history(alice, room))]


def test_per_room_order_with_two_persisters_under_concurrent_sends(cluster: Deployment) -> None:
    senders_on = ["main", "worker_a", "worker_b", "persister1"]
    owner = new_user(cluster.url("main"), "order")
    rooms: list[str] = []
    by_persister: dict[str, int] = {}
    for _ in range(30):  # until 8 rooms with at least 2 on each persister
        room = create_room(owner, preset="public_chat")
        ((persister,),) = cluster.query(
            "SELECT instance_name FROM room_persisters WHERE room_id = ?", (room,)
        )
        if (
            len(rooms) >= 6
            and by_persister.get(persister, 0) >= 2
            and min(by_persister.values(), default=0) < 2
        ):
            continue  # keep the last places for the persister that has too few
        rooms.append(room)
        by_persister[persister] = by_persister.get(persister, 0) + 1
        if len(rooms) == 8:
            break
    assert len(rooms) == 8 and sorted(by_persister) == ["persister1", "persister2"], by_persister
    senders = [owner] + [new_user(cluster.url(name), "order") for name in senders_on[1:]]
    for sender in senders[1:]:
        for room in rooms:
            join(sender, room)

    results: dict[int, list[tuple[str, requests.Response]]] = {t: [] for t in range(4)}

    def send_all(t: int) -> None:
        sender = senders[t]
        for i in range(20):
            room = rooms[(i + 2 * t) % 8]
            results[t].append(
                (room, send_text(sender, room, f"t{t}-{i:02d}", txn=f"order-{t}-{i}"))
            )

    threads = [threading.Thread(target=send_all, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    expected: dict[str, dict[str, str]] = {room: {} for room in rooms}  # room -> body -> event id
    for t, sent in results.items():
        assert len(sent) == 20
        for i, (room, resp) in enumerate(sent):
            expected[room][f"t{t}-{i:02d}"] = assert_ok(resp)["event_id"]

    orders: dict[str, list[list[str]]] = {room: [] for room in rooms}
    for name in PROCESSES:
        reader = on(cluster.url(name), owner)
        for room in rooms:
            history = [e for e in room_history(reader, room) if e["type"] == "m.room.message"]
            ids = [e["event_id"] for e in history]
            assert len(ids) == len(set(ids)), f"{name}: an event appears twice in {room}"
            got = {e["content"]["body"]: e["event_id"] for e in history}
            assert got == expected[room], f"{name}: {room} has the wrong events"
            for t in range(4):
                mine = [b for b in message_bodies(history) if b.startswith(f"t{t}-")]
                assert mine == sorted(mine), (
                    f"{name}: sender {t}'s events out of order in {room}: {mine}"
                )
            orders[room].append(ids)
    for room in rooms:
        assert all(order == orders[room][0] for order in orders[room]), (
            f"/messages order differs between processes in {room}"
        )

    # Stream order (the order /sync gives) is the same seen from every process.
    def timelines(name: str) -> dict[str, list[str]]:
        body = sync_body(on(cluster.url(name), senders[1]), filter=NO_PRESENCE)
        return {
            room: [
                e["event_id"]
                for e in body["rooms"]["join"][room]["timeline"]["events"]
                if e["type"] == "m.room.message"
            ]
            for room in rooms
        }

    def complete(name: str) -> dict[str, list[str]] | None:
        got = timelines(name)
        return got if all(len(got[room]) == len(expected[room]) for room in rooms) else None

    reference = wait_until(lambda: complete("main"), 10)
    assert reference, "main's sync does not have every message"
    for name in PROCESSES[1:]:
        seen = wait_until(lambda name=name: complete(name), 10)  # type: ignore[misc]
        assert seen == reference, f"{name}'s sync gives another stream order than main's"


@pytest.mark.parametrize("sync_on", ["worker_a", "worker_b"])
def test_account_data_put_wakes_long_poll(cluster: Deployment, sync_on: str) -> None:
    """An account data PUT through worker A (written by persister1) wakes a long-poll waiting
    on A itself or on worker B, promptly and with the data."""
    alice = new_user(cluster.url("worker_a"), "adwake")
    room = create_room(alice)
    poller = on(cluster.url(sync_on), alice)
    token = quiet_token(poller, [room])
    thread, result = long_poll_in_background(poller, token, 10000)
    time.sleep(1.0)
    assert "returned" not in result, f"the long-poll returned before anything was sent: {result}"
    sent_at = time.monotonic()
    put = alice.put(f"user/{alice.user_id}/account_data/org.example.wake", {"at": 1})
    assert put.status_code == 200, put.text
    thread.join(20)
    assert "error" not in result, result.get("error")
    assert "body" in result, f"the long-poll on {sync_on} did not return"
    latency = result["returned"] - sent_at
    assert _account_data_in(result["body"], "org.example.wake") == {"at": 1}, (
        f"{sync_on}'s long-poll returned after {latency:.1f}s without the data: {result['body']}"
    )
    assert latency < 3.0, f"{sync_on}'s long-poll woke {latency:.1f}s after the PUT"


def test_writes_to_another_processes_stream_are_forwarded(cluster: Deployment) -> None:
    alice = new_user(cluster.url("worker_a"), "forward")
    bob = new_user(cluster.url("worker_a"), "forward")
    on_b = on(cluster.url("worker_b"), alice)
    path = f"user/{alice.user_id}/account_data/org.example.forwarded"
    put = alice.put(path, {"colour": "teal"})
    assert put.status_code == 200, put.text
    assert put.json() == {}
    # The account_data writer wrote it.
    rows = cluster.query(
        "SELECT instance_name, content FROM account_data WHERE user_id = ? AND account_data_type = ?",
        (alice.user_id, "org.example.forwarded"),
    )
    assert [r[0] for r in rows] == ["persister1"]
    assert alice.get(path).json() == {"colour": "teal"}
    for name in PROCESSES:
        reader = on(cluster.url(name), alice)
        assert wait_until(lambda reader=reader: reader.get(path).json() == {"colour": "teal"}, 5), (
            name
        )  # type: ignore[misc]
    # The writer's refusal comes back as it is.
    refused = bob.put(path, {"colour": "red"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["errcode"] == "M_FORBIDDEN"

    # Typing through worker A (persister2 writes typing) shows on worker B's sync.
    room = create_room(alice)
    token = quiet_token(on_b, [room])
    typing = alice.put(f"rooms/{room}/typing/{alice.user_id}", {"typing": True, "timeout": 20000})
    assert typing.status_code == 200, typing.text
    assert typing.json() == {}

    def typing_seen() -> bool:
        body = sync_body(on_b, since=token, timeout=1000, filter=NO_PRESENCE)
        joined = body["rooms"]["join"].get(room, {})
        for event in joined.get("ephemeral", {}).get("events", []):
            if event["type"] == "m.typing" and alice.user_id in event["content"]["user_ids"]:
                return True
        return False

    assert wait_until(typing_seen, 5), "worker B's sync never showed alice typing"


def test_replication_listener_refuses_calls_without_the_secret(cluster: Deployment) -> None:
    user = new_user(cluster.url("main"), "intruder")
    for name in PROCESSES:
        url = f"{cluster.url(name)}/_synapse/replication/persist_event/intruder-{name}"
        for headers in (
            {},
            {"Authorization": "Bearer wrong-secret"},
            {"Authorization": f"Bearer {user.access_token}"},
            {"Authorization": SECRET},
        ):
            resp = requests.post(
                url, json={"room_version": "10", "pdu": {}}, headers=headers, timeout=10
            )
            assert resp.status_code == 401, f"{name} {headers}: {resp.status_code} {resp.text}"
            assert is_matrix_error(resp), f"{name}: not a Matrix error: {resp.text}"
        # With the secret the call gets past the check (and fails on its bad body).
        right = requests.post(
            url, json={}, headers={"Authorization": f"Bearer {SECRET}"}, timeout=10
        )
        assert right.status_code == 400, f"{name}: {right.status_code} {right.text}"


def _account_data_in(sync: dict[str, Any], data_type: str) -> Any:
    for event in sync.get("account_data", {}).get("events", []):
        if event["type"] == data_type:
            return event["content"]
    return None


@pytest.mark.parametrize("through", ["worker_a", "persister"])
def test_read_your_writes_on_the_same_process(cluster: Deployment, through: str) -> None:
    """A sync right after a send, on the process that took the send, shows it: through a
    generic worker, and through the room's own event persister."""
    alice = new_user(cluster.url("main"), "ryw")
    room = create_room(alice)
    if through == "persister":
        ((through,),) = cluster.query(
            "SELECT instance_name FROM room_persisters WHERE room_id = ?", (room,)
        )
    here = on(cluster.url(through), alice)
    token = quiet_token(here, [room])
    for i in range(5):
        assert_ok(send_text(here, room, f"mine {i}"))
        body = sync_body(here, since=token, timeout=0, filter=NO_PRESENCE)
        assert timeline_bodies(body, room) == [f"mine {i}"], (
            f"{through}'s sync right after send {i} does not show it"
        )
        token = body["next_batch"]


def test_read_your_writes_of_account_data_on_the_same_process(cluster: Deployment) -> None:
    """A sync on worker A right after an account data PUT through A (written by persister1,
    the account_data writer) shows it."""
    alice = new_user(cluster.url("worker_a"), "rywad")
    room = create_room(alice)
    token = quiet_token(alice, [room])
    for i in range(5):
        put = alice.put(f"user/{alice.user_id}/account_data/org.example.ryw", {"v": i})
        assert put.status_code == 200, put.text
        body = sync_body(alice, since=token, timeout=0, filter=NO_PRESENCE)
        assert _account_data_in(body, "org.example.ryw") == {"v": i}, (
            f"worker A's sync right after account data PUT {i} does not show it"
        )
        token = body["next_batch"]


def test_read_your_writes_across_processes(cluster: Deployment) -> None:
    alice = new_user(cluster.url("worker_a"), "rywx")
    on_b = on(cluster.url("worker_b"), alice)
    room = create_room(alice)
    before = quiet_token(alice, [room])
    assert_ok(send_text(alice, room, "written on A"))
    assert_ok(alice.put(f"user/{alice.user_id}/account_data/org.example.rywx", {"v": 2}))

    # B, given the token from before the writes, shows them as soon as it has them.
    start = time.monotonic()
    seen_message, seen_data = False, False
    since = before
    while not (seen_message and seen_data) and time.monotonic() - start < 5:
        body = sync_body(on_b, since=since, timeout=2000, filter=NO_PRESENCE)
        seen_message = seen_message or "written on A" in timeline_bodies(body, room)
        seen_data = seen_data or _account_data_in(body, "org.example.rywx") == {"v": 2}
        since = body["next_batch"]
    assert seen_message and seen_data, (seen_message, seen_data)
    assert time.monotonic() - start < 3

    # A token A issued after the writes: B serves history up to it at once, and its sync
    # from it repeats nothing.
    after = sync_body(alice, since=before, timeout=0, filter=NO_PRESENCE)
    assert "written on A" in timeline_bodies(after, room)
    page = assert_ok(
        on_b.get(
            f"rooms/{room}/messages", params={"from": after["next_batch"], "dir": "b", "limit": 1}
        )
    )
    assert message_bodies(page["chunk"]) == ["written on A"]
    again = sync_body(on_b, since=after["next_batch"], timeout=0, filter=NO_PRESENCE)
    assert timeline_bodies(again, room) == []
    assert _account_data_in(again, "org.example.rywx") is None
