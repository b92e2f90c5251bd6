"""Time the read paths of a room with a very long history (see bench/README.md)."""

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests.harness import Client, ServerProcess, base_config, database_config, free_port  # noqa: E402


def bulk_load(db_args: dict[str, Any], room_id: str, sender: str, count: int) -> tuple[str, int, int]:
    """Append `count` messages to the room; returns (middle event id, its depth, its stream ordering)."""
    conn = psycopg2.connect(**{k: v for k, v in db_args.items() if k not in ("cp_min", "cp_max")})
    cur = conn.cursor()
    cur.execute("SELECT event_id, topological_ordering, stream_ordering FROM events WHERE room_id = %s"
                " ORDER BY stream_ordering DESC LIMIT 1", (room_id,))
    prev_id, depth, stream = cur.fetchone()
    cur.execute("SELECT state_group FROM event_to_state_groups WHERE event_id = %s", (prev_id,))
    group = cur.fetchone()[0]
    cur.execute("SELECT auth_id FROM event_auth WHERE event_id = %s", (prev_id,))
    now = int(time.time() * 1000) - count
    events, edges, groups = io.StringIO(), io.StringIO(), io.StringIO()
    middle = ("", 0, 0)
    for i in range(count):
        depth += 1
        stream += 1
        event_id = f"$bench{i}"
        pdu = {
            "type": "m.room.message", "room_id": room_id, "sender": sender, "depth": depth,
            "content": {"msgtype": "m.text", "body": f"message number {i}"}, "origin_server_ts": now + i,
            "prev_events": [prev_id], "auth_events": [], "hashes": {"sha256": "x"}, "signatures": {},
        }
        text = json.dumps(pdu, separators=(",", ":")).replace("\\", "\\\\")
        events.write(f"{stream}\t{depth}\t{event_id}\t{room_id}\tm.room.message\t\\N\t{sender}\t{now + i}\tmaster\t{text}\t\\N\n")
        edges.write(f"{event_id}\t{prev_id}\n")
        groups.write(f"{event_id}\t{group}\n")
        if i == count // 2:
            middle = (event_id, depth, stream)
        prev_id = event_id
    for table, buffer, columns in (
        ("events", events, "stream_ordering, topological_ordering, event_id, room_id, type, state_key, sender,"
                           " origin_server_ts, instance_name, json, rejected_reason"),
        ("event_edges", edges, "event_id, prev_event_id"),
        ("event_to_state_groups", groups, "event_id, state_group"),
    ):
        buffer.seek(0)
        cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
    cur.execute("DELETE FROM event_forward_extremities WHERE room_id = %s", (room_id,))
    cur.execute("INSERT INTO event_forward_extremities (room_id, event_id) VALUES (%s, %s)", (room_id, prev_id))
    cur.execute("SELECT setval('events_sequence', %s)", (stream,))
    conn.commit()
    # Fresh statistics, as autovacuum would have after such a load (ANALYZE must commit).
    conn.autocommit = True
    cur.execute("ANALYZE")
    conn.close()
    return middle


def timed(client: Client, path: str, samples: int, **kwargs: Any) -> list[float]:
    durations = []
    for _ in range(samples):
        start = time.perf_counter()
        resp = client.get(path, **kwargs)
        durations.append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200, resp.text
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hs-bench-") as directory, database_config("postgres", directory) as db:
        config = base_config(directory, db, free_port())
        server = ServerProcess(directory, config).start()
        alice = Client(server.url)
        alice.register("alice")
        room = alice.post("createRoom", {"preset": "public_chat", "name": "Long history"}).json()["room_id"]
        server.stop()
        start = time.perf_counter()
        middle_id, middle_depth, middle_stream = bulk_load(db["args"], room, alice.user_id or "", args.events)
        load_seconds = time.perf_counter() - start
        server = ServerProcess(directory, config, name="main-2").start()
        try:
            alice.base_url = server.url
            first = alice.get(f"rooms/{room}/messages", params={"limit": 50}).json()
            assert len(first["chunk"]) == 50
            middle_token = f"t{middle_depth}-{middle_stream}"
            results = {
                "messages_latest_page": timed(alice, f"rooms/{room}/messages", args.samples, params={"limit": 50}),
                "messages_middle_page": timed(alice, f"rooms/{room}/messages", args.samples,
                                              params={"limit": 50, "from": middle_token}),
                "messages_forward_from_middle": timed(alice, f"rooms/{room}/messages", args.samples,
                                                      params={"limit": 50, "from": middle_token, "dir": "f"}),
                "context_middle": timed(alice, f"rooms/{room}/context/{middle_id}", args.samples, params={"limit": 20}),
                "event_middle": timed(alice, f"rooms/{room}/event/{middle_id}", args.samples),
                "members": timed(alice, f"rooms/{room}/members", args.samples),
                "state": timed(alice, f"rooms/{room}/state", args.samples),
            }
        finally:
            server.stop()
    summary = {
        name: {"p50_ms": round(statistics.median(v), 2), "p95_ms": round(sorted(v)[int(len(v) * 0.95) - 1], 2)}
        for name, v in results.items()
    }
    print(f"room with {args.events} events, bulk load {load_seconds:.1f}s")
    print(f"{'request':32} {'p50 ms':>8} {'p95 ms':>8}")
    for name, figures in summary.items():
        print(f"{name:32} {figures['p50_ms']:>8} {figures['p95_ms']:>8}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"events": args.events, "load_seconds": load_seconds, "requests": summary}, f, indent=2)


if __name__ == "__main__":
    main()
