"""Replication under faults, on real deployments (DESIGN §3, §5): Redis restarted mid-traffic,
a worker killed with SIGKILL and restarted, and a third event persister added by a rolling
restart. What must hold is what a user notices: no accepted message is lost or duplicated,
failures are clean Matrix errors rather than hangs, and every process catches up."""

import threading
import time
from typing import Any

import requests

from homeserver.storage.stores.rooms import choose_persister
from tests.harness import Client
from tests.replication_helpers import (
    NO_PRESENCE,
    Deployment,
    PrivateRedis,
    assert_ok,
    create_room,
    deployment,
    join,
    message_bodies,
    new_user,
    on,
    room_history,
    send_text,
    sync_body,
    timeline_bodies,
    wait_until,
)

# A request that takes longer than this counts as hanging.
CLIENT_TIMEOUT = 25.0


class Sender(threading.Thread):
    """Sends numbered messages one after another until stopped (at most `limit`), recording
    every answer: (body, status, JSON body or None, seconds, exception text or None)."""

    def __init__(
        self, clients: list[tuple[Client, str]], label: str, limit: int = 300, pause: float = 0.05
    ):
        super().__init__(daemon=True)
        self.clients = clients  # (client, room) pairs, used in turn
        self.label = label
        self.limit = limit
        self.pause = pause
        self.stopping = threading.Event()
        self.results: list[tuple[str, int | None, Any, float, str | None]] = []

    def run(self) -> None:
        for i in range(self.limit):
            if self.stopping.is_set():
                return
            client, room = self.clients[i % len(self.clients)]
            body = f"{self.label}-{i:03d}"
            start = time.monotonic()
            try:
                resp = send_text(client, room, body, txn=body, timeout=CLIENT_TIMEOUT)
                try:
                    parsed = resp.json()
                except ValueError:
                    parsed = None
                self.results.append(
                    (body, resp.status_code, parsed, time.monotonic() - start, None)
                )
            except requests.RequestException as e:
                self.results.append((body, None, None, time.monotonic() - start, repr(e)))
            time.sleep(self.pause)

    def stop(self) -> None:
        self.stopping.set()
        self.join(CLIENT_TIMEOUT + 10)
        assert not self.is_alive(), f"sender {self.label} is stuck"

    def accepted(self) -> dict[str, str]:
        """body -> event id of every send answered 200."""
        return {
            body: parsed["event_id"] for body, status, parsed, _, _ in self.results if status == 200
        }

    def summary(self) -> str:
        statuses: dict[str, int] = {}
        for _, status, _, _, _ in self.results:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        slowest = max((r[3] for r in self.results), default=0.0)
        return (
            f"{self.label}: {len(self.results)} sends, by status {statuses}, slowest {slowest:.1f}s"
        )

    def room_of(self, body: str) -> str:
        return self.clients[int(body.rsplit("-", 1)[1]) % len(self.clients)][1]


def assert_all_readable_everywhere(
    d: Deployment, reader: Client, expected: dict[str, dict[str, str]], timeout: float = 20.0
) -> None:
    """Every process serves every expected (room -> body -> event id) message, each once."""
    problems: dict[str, str] = {}

    def check(name: str) -> bool:
        client = on(d.url(name), reader)
        for room, wanted in expected.items():
            history = room_history(client, room)
            bodies = message_bodies(history)
            duplicated = sorted({b for b in bodies if bodies.count(b) > 1})
            if duplicated:
                problems[name] = f"{room}: duplicated {duplicated}"
                return False
            ids = {
                e["content"].get("body"): e["event_id"]
                for e in history
                if e["type"] == "m.room.message"
            }
            missing = sorted(b for b, event_id in wanted.items() if ids.get(b) != event_id)
            if missing:
                problems[name] = f"{room}: missing {missing}"
                return False
        problems.pop(name, None)
        return True

    for name in d.processes:
        assert wait_until(lambda name=name: check(name), timeout, interval=0.5), (  # type: ignore[misc]
            f"{name} does not serve every accepted message: {problems.get(name)}"
        )


def assert_clean_failures(sender: Sender, allow_connection_errors: bool = False) -> None:
    print(sender.summary())
    for body, status, parsed, seconds, error in sender.results:
        assert seconds < CLIENT_TIMEOUT, f"{body} took {seconds:.1f}s"
        if status == 200:
            assert isinstance(parsed, dict) and isinstance(parsed.get("event_id"), str), (
                body,
                parsed,
            )
            continue
        if status is None:
            assert allow_connection_errors, f"{body}: no answer: {error}"
            continue
        assert status >= 500, f"{body}: {status} {parsed}"
        assert (
            isinstance(parsed, dict)
            and isinstance(parsed.get("errcode"), str)
            and isinstance(parsed.get("error"), str)
        ), f"{body}: {status} is not a Matrix error: {parsed}"


def test_redis_restarted_mid_traffic() -> None:
    with deployment("redisfault", redis=True) as d:
        redis: PrivateRedis = d.redis  # type: ignore[attr-defined]
        for name in ("persister1", "worker_a", "worker_b"):
            d.add_worker(name)
        d.shared["stream_writers"] = {"events": ["persister1"]}
        d.start_all()
        alice = new_user(d.url("worker_a"), "redis")
        room = create_room(alice)
        on_b = on(d.url("worker_b"), alice)
        wait_until(lambda: room in sync_body(on_b, filter=NO_PRESENCE)["rooms"]["join"], 10)
        before = sync_body(on_b, filter=NO_PRESENCE)["next_batch"]

        sender = Sender([(alice, room)], "redis", limit=90)  # one sync timeline holds them all
        sender.start()
        time.sleep(1.0)
        sent_before_outage = len(sender.results)
        assert sent_before_outage > 0 and all(r[1] == 200 for r in sender.results), sender.results

        # A long-poll on worker B, from before the outage, waiting while Redis is away.
        polled: dict[str, Any] = {}
        outage_token = sync_body(on_b, since=before, timeout=0, filter=NO_PRESENCE)["next_batch"]

        def long_poll() -> None:
            try:
                polled["body"] = sync_body(
                    on_b, http_timeout=40, since=outage_token, timeout=20000, filter=NO_PRESENCE
                )
            except BaseException as e:
                polled["error"] = e
            polled["at"] = time.monotonic()

        redis.kill()
        killed_at = time.monotonic()
        poller = threading.Thread(target=long_poll, daemon=True)
        poller.start()
        time.sleep(2.5)
        redis.start()
        restarted_at = time.monotonic()
        time.sleep(3.0)
        sender.stop()
        poller.join(40)

        assert_clean_failures(sender)
        accepted = sender.accepted()
        assert len(accepted) > sent_before_outage, "no send was accepted after Redis came back"
        assert_all_readable_everywhere(d, alice, {room: accepted})

        # The long-poll on B, which missed POSITIONs while Redis was away, saw the messages.
        assert "error" not in polled, polled.get("error")
        assert "body" in polled, "the long-poll on worker B never returned"
        arrived = timeline_bodies(polled["body"], room)
        assert arrived and set(arrived) <= set(accepted), (
            f"worker B's long-poll returned {polled['at'] - killed_at:.1f}s after Redis went away"
            f" ({polled['at'] - restarted_at:.1f}s after it came back) without the messages:"
            f" {polled['body']}"
        )
        assert polled["at"] - restarted_at < 10, (
            f"worker B's long-poll returned {polled['at'] - restarted_at:.1f}s after Redis came back"
            f" ({polled['at'] - killed_at:.1f}s after it went away)"
        )
        # And B's sync from before the outage now gives every accepted message once.
        since, seen = before, []
        for _ in range(50):
            body = sync_body(on_b, since=since, timeout=0, filter=NO_PRESENCE)
            seen += timeline_bodies(body, room)
            if body["next_batch"] == since or not timeline_bodies(body, room):
                break
            since = body["next_batch"]
        assert len(seen) == len(set(seen)), "worker B's sync repeated messages"
        assert set(accepted) <= set(seen), sorted(set(accepted) - set(seen))


def test_worker_killed_mid_traffic_and_restarted() -> None:
    with deployment("killfault") as d:
        for name in ("persister1", "worker_a"):
            d.add_worker(name)
        d.shared["stream_writers"] = {"events": ["main", "persister1"]}
        d.start_all()
        alice = new_user(d.url("main"), "kill")
        bob = new_user(d.url("main"), "kill")
        rooms: dict[str, list[str]] = {"master": [], "persister1": []}
        for _ in range(30):
            if all(len(r) >= 2 for r in rooms.values()):
                break
            room = create_room(alice, preset="public_chat")
            ((persister,),) = d.query(
                "SELECT instance_name FROM room_persisters WHERE room_id = ?", (room,)
            )
            if len(rooms[persister]) < 2:
                rooms[persister].append(room)
                join(bob, room)
        all_rooms = rooms["master"] + rooms["persister1"]
        assert len(all_rooms) == 4, rooms

        # Alice sends through worker A into every room (two are persisted by persister1);
        # Bob sends through persister1 itself, which is killed.
        through_a = Sender([(on(d.url("worker_a"), alice), r) for r in all_rooms], "via-a")
        through_p1 = Sender([(on(d.url("persister1"), bob), r) for r in all_rooms], "via-p1")
        through_a.start()
        through_p1.start()
        time.sleep(1.5)
        d.kill("persister1")
        time.sleep(1.0)
        d.start("persister1")
        time.sleep(2.0)
        through_a.stop()
        through_p1.stop()

        # Sends through worker A either succeeded or failed with a Matrix error; sends to the
        # killed process may also have lost their connection.
        assert_clean_failures(through_a)
        assert_clean_failures(through_p1, allow_connection_errors=True)
        expected: dict[str, dict[str, str]] = {room: {} for room in all_rooms}
        for sender in (through_a, through_p1):
            for body, event_id in sender.accepted().items():
                expected[sender.room_of(body)][body] = event_id
        accepted_after_restart = [r for r in through_p1.results[-5:] if r[1] == 200]
        assert accepted_after_restart, (
            f"persister1 accepted nothing after its restart: {through_p1.results[-5:]}"
        )
        assert_all_readable_everywhere(d, alice, expected)

        # The restarted worker serves again: a send through it into each kind of room, read
        # back on every process.
        again = on(d.url("persister1"), bob)
        more: dict[str, dict[str, str]] = {}
        for i, room in enumerate(all_rooms):
            more[room] = {f"after-{i}": assert_ok(send_text(again, room, f"after-{i}"))["event_id"]}
        assert_all_readable_everywhere(d, alice, more, timeout=10)

        # ... and its sync has caught up with what every process sent.
        def caught_up() -> bool:
            synced = sync_body(again, filter=NO_PRESENCE)
            return all(timeline_bodies(synced, room)[-1:] == list(more[room]) for room in all_rooms)

        assert wait_until(caught_up, 10), (
            "the restarted persister1's sync lacks the latest messages"
        )


def test_third_persister_added_by_rolling_restart() -> None:
    with deployment("rolling") as d:
        for name in ("persister1", "persister2", "worker_a"):
            d.add_worker(name)
        d.shared["stream_writers"] = {"events": ["persister1", "persister2"]}
        d.start_all()
        alice = new_user(d.url("main"), "rolling")
        old_rooms = [create_room(alice, preset="public_chat") for _ in range(6)]
        for i, room in enumerate(old_rooms):
            assert_ok(send_text(alice, room, f"before-{i}"))
        before = dict(d.query("SELECT room_id, instance_name FROM room_persisters"))
        assert {before[r] for r in old_rooms} <= {"persister1", "persister2"}

        # The new configuration: a third persister, started first, then every other process
        # restarted one at a time with the new shared config; the others keep serving.
        d.add_worker("persister3")
        d.shared["stream_writers"] = {"events": ["persister1", "persister2", "persister3"]}
        d.start("persister3")
        sent: dict[str, dict[str, str]] = {
            room: {f"before-{i}": ""} for i, room in enumerate(old_rooms)
        }
        for step, name in enumerate(("main", "persister1", "persister2", "worker_a")):
            d.restart(name)
            for i, room in enumerate(old_rooms[:2] + old_rooms[-2:]):
                sender = on(d.url(name), alice)
                body = f"restart{step}-{i}"
                sent[room][body] = assert_ok(send_text(sender, room, body))["event_id"]

        # Old rooms keep their persister and keep working everywhere.
        after = dict(d.query("SELECT room_id, instance_name FROM room_persisters"))
        assert {r: after[r] for r in old_rooms} == {r: before[r] for r in old_rooms}
        for name in d.processes:
            for i, room in enumerate(old_rooms):
                body = f"old-{name}-{i}"
                sent[room][body] = assert_ok(send_text(on(d.url(name), alice), room, body))[
                    "event_id"
                ]
        expected = {room: {b: e for b, e in bodies.items() if e} for room, bodies in sent.items()}
        assert_all_readable_everywhere(d, alice, expected, timeout=10)
        for name in d.processes:
            for i, room in enumerate(old_rooms):
                assert f"before-{i}" in message_bodies(room_history(on(d.url(name), alice), room))
        for room in old_rooms:  # ... written, before and after, by their own persister only
            writers_of_room = d.query(
                "SELECT DISTINCT instance_name FROM events WHERE room_id = ?", (room,)
            )
            assert [w for (w,) in writers_of_room] == [before[room]], room

        # New rooms are spread over all three, by rendezvous hashing over the new list.
        writers = ["persister1", "persister2", "persister3"]
        creators = [on(d.url(name), alice) for name in d.processes]
        new_rooms: list[str] = []
        for i in range(40):
            new_rooms.append(create_room(creators[i % len(creators)], preset="public_chat"))
            if i >= 8 and any(choose_persister(r, writers) == "persister3" for r in new_rooms):
                break
        assigned = dict(d.query("SELECT room_id, instance_name FROM room_persisters"))
        assert {r: assigned[r] for r in new_rooms} == {
            r: choose_persister(r, writers) for r in new_rooms
        }
        on_p3 = [r for r in new_rooms if assigned[r] == "persister3"]
        assert on_p3, "no new room went to persister3"
        # persister3's rooms work from every process, and wake syncs elsewhere.
        p3_expected: dict[str, dict[str, str]] = {room: {} for room in on_p3}
        last = list(d.processes)[-1]
        for name in d.processes:
            for room in on_p3:
                body = f"p3-{name}"
                p3_expected[room][body] = assert_ok(send_text(on(d.url(name), alice), room, body))[
                    "event_id"
                ]
        assert_all_readable_everywhere(d, alice, p3_expected, timeout=10)
        events_by = {
            w
            for (w,) in d.query(
                "SELECT DISTINCT instance_name FROM events WHERE room_id = ?", (on_p3[0],)
            )
        }
        assert events_by == {"persister3"}

        def in_sync(name: str) -> bool:
            body = sync_body(on(d.url(name), alice), filter=NO_PRESENCE)
            return all(timeline_bodies(body, room)[-1:] == [f"p3-{last}"] for room in on_p3)

        for name in d.processes:
            assert wait_until(lambda name=name: in_sync(name), 10), (
                f"{name}'s sync lacks persister3's events"
            )  # type: ignore[misc]
