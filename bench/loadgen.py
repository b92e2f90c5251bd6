"""The benchmark's load generator (see bench/README.md). It speaks only the Client-Server API,
so it runs against any homeserver's client URL. Each scenario takes the base URL, the server
name and its sizes, sets up what it needs through the API (its own users and rooms, named
uniquely, so scenarios can share a server) and returns a dict of figures.

Every simulated client has its own `requests.Session` (keep-alive); concurrency is threads.
Every response's status is checked: a failed request raises `BenchError`, which the runner
reports as an error rather than skipping the figure. A 429 is waited out (`retry_after_ms`)
and counted in `RETRIES`, so a server whose rate limits are not lifted is visible."""

import json
import secrets
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import requests

REQUEST_TIMEOUT = 60.0
MAX_429_RETRIES = 20
RETRIES = {"429": 0}
_retries_lock = threading.Lock()


class BenchError(Exception):
    """A request the benchmark relies on failed."""


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) of `values`, linearly interpolated between ranks."""
    if not values:
        raise BenchError("no samples")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class MatrixClient:
    """One simulated client: a keep-alive session, an access token once registered."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.token: str | None = None
        self.user_id = ""
        self._txn = 0

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        """The JSON body of a 200 answer to `method path`; anything else raises `BenchError`."""
        url = self.base_url + "/_matrix/client/v3/" + path
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        for _ in range(MAX_429_RETRIES):
            try:
                resp = self.session.request(method, url, json=body, params=params, headers=headers, timeout=timeout)
            except requests.RequestException as e:
                raise BenchError(f"{method} {path}: {e}") from e
            if resp.status_code == 429:
                with _retries_lock:
                    RETRIES["429"] += 1
                try:
                    wait_ms = float(resp.json().get("retry_after_ms", 100))
                except ValueError:
                    wait_ms = 100.0
                time.sleep(min(wait_ms, 5000) / 1000)
                continue
            if resp.status_code != 200:
                raise BenchError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:300]}")
            try:
                result: dict[str, Any] = resp.json()
            except ValueError as e:
                raise BenchError(f"{method} {path}: not JSON: {resp.text[:300]}") from e
            return result
        raise BenchError(f"{method} {path}: still rate-limited after {MAX_429_RETRIES} retries")

    def register(self, username: str, password: str = "bench password") -> "MatrixClient":
        result = self.request("POST", "register", {
            "username": username, "password": password, "auth": {"type": "m.login.dummy"},
            "initial_device_display_name": "bench",
        })
        if "access_token" not in result:
            raise BenchError(f"register {username}: no access token in {result}")
        self.token = result["access_token"]
        self.user_id = result["user_id"]
        return self

    def create_room(self, **extra: Any) -> str:
        body = {"preset": "public_chat", **extra}
        return str(self.request("POST", "createRoom", body)["room_id"])

    def join(self, room_id: str) -> None:
        self.request("POST", f"join/{quote(room_id)}", {})

    def send_text(self, room_id: str, body: str) -> str:
        self._txn += 1
        txn = f"{secrets.token_hex(4)}-{self._txn}"
        result = self.request("PUT", f"rooms/{quote(room_id)}/send/m.room.message/{txn}",
                              {"msgtype": "m.text", "body": body})
        return str(result["event_id"])

    def sync(self, since: str | None = None, timeout_ms: int = 0, filter_: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"timeout": timeout_ms}
        if since is not None:
            params["since"] = since
        if filter_ is not None:
            params["filter"] = filter_
        return self.request("GET", "sync", params=params, timeout=timeout_ms / 1000 + REQUEST_TIMEOUT)


def _prefix(name: str) -> str:
    return f"{name}{secrets.token_hex(3)}"


def register_users(base_url: str, prefix: str, count: int, threads: int = 4) -> list[MatrixClient]:
    """`count` registered clients, set up in parallel (setup, not measured)."""
    with ThreadPoolExecutor(max_workers=max(1, min(threads, count))) as pool:
        return list(pool.map(lambda i: MatrixClient(base_url).register(f"{prefix}_{i}"), range(count)))


def _run_parallel(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Run each task in its own thread, started together; re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [future.result() for future in futures]


# --- scenarios -------------------------------------------------------------------------------


def register_rate(base_url: str, server_name: str, count: int = 50) -> dict[str, float]:
    """`count` sequential registrations (m.login.dummy) by one client; users per second."""
    prefix = _prefix("reg")
    client = MatrixClient(base_url)
    began = time.monotonic()
    for i in range(count):
        client.token = None
        client.register(f"{prefix}_{i}")
        if not client.user_id.endswith(":" + server_name):
            raise BenchError(f"registered {client.user_id}, expected a user of {server_name}")
    elapsed = time.monotonic() - began
    return {"register_users_per_s": count / elapsed}


def send_throughput(base_url: str, server_name: str, users: int = 10, rooms: int = 5,
                    messages: int = 50) -> dict[str, float]:
    """`users` senders spread over `rooms` rooms each send `messages` messages as fast as they
    can, all at once; events/s = total / wall time, plus the latency of each send request."""
    prefix = _prefix("send")
    clients = register_users(base_url, prefix, users)
    room_ids = [clients[0].create_room() for _ in range(rooms)]
    assignment = [room_ids[i % rooms] for i in range(users)]
    _run_parallel([partial(c.join, r) for c, r in zip(clients[1:], assignment[1:], strict=True)])
    latencies: list[list[float]] = [[] for _ in clients]
    barrier = threading.Barrier(users)

    def sender(index: int) -> None:
        client, room_id = clients[index], assignment[index]
        barrier.wait()
        for n in range(messages):
            began = time.monotonic()
            client.send_text(room_id, f"{prefix} {index} {n}")
            latencies[index].append((time.monotonic() - began) * 1000)

    began = time.monotonic()
    _run_parallel([partial(sender, i) for i in range(users)])
    elapsed = time.monotonic() - began
    every = [latency for per_client in latencies for latency in per_client]
    return {
        "send_events_per_s": len(every) / elapsed,
        "send_latency_p50_ms": percentile(every, 50),
        "send_latency_p95_ms": percentile(every, 95),
        "send_latency_p99_ms": percentile(every, 99),
    }


def fan_out(base_url: str, server_name: str, receivers: int = 20, senders: int = 2, messages: int = 25,
            interval: float = 0.1, deadline: float = 60.0) -> dict[str, float]:
    """`receivers` clients long-poll /sync (timeout=30000, each from its own `since` token,
    already joined) while `senders` each post `messages` messages, one every `interval`
    seconds; the latency of each (event, receiver) is from the start of the send request to
    the receiver's sync answer carrying it."""
    prefix = _prefix("fan")
    everyone = register_users(base_url, prefix, receivers + senders)
    sending, receiving = everyone[:senders], everyone[senders:]
    room_id = sending[0].create_room()
    _run_parallel([partial(c.join, room_id) for c in everyone[1:]])
    # Only this room's timeline; a limit above the burst any answer can carry.
    room_filter = json.dumps({"room": {"rooms": [room_id], "timeline": {"limit": 100}},
                              "presence": {"types": []}, "account_data": {"types": []}})
    tokens = [r["next_batch"] for r in _run_parallel([partial(c.sync, filter_=room_filter) for c in receiving])]

    markers = [f"{prefix} s{s} m{m}" for s in range(senders) for m in range(messages)]
    sent_at: dict[str, float] = {}
    seen: list[dict[str, float]] = [{} for _ in receiving]
    done = threading.Event()
    errors: list[BaseException] = []

    def receive(index: int) -> None:
        client, since, got = receiving[index], tokens[index], seen[index]
        try:
            while len(got) < len(markers) and not done.is_set():
                result = client.sync(since=since, timeout_ms=30000, filter_=room_filter)
                arrived = time.monotonic()
                since = result["next_batch"]
                room = result.get("rooms", {}).get("join", {}).get(room_id, {})
                for event in room.get("timeline", {}).get("events", []):
                    body = event.get("content", {}).get("body")
                    if isinstance(body, str) and body.startswith(prefix) and body not in got:
                        got[body] = arrived
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=receive, args=(i,), daemon=True) for i in range(len(receiving))]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # let every receiver's long poll reach the server

    def send(index: int) -> None:
        client = sending[index]
        time.sleep(interval * index / senders)  # interleave the senders
        for m in range(messages):
            marker = f"{prefix} s{index} m{m}"
            sent_at[marker] = time.monotonic()
            client.send_text(room_id, marker)
            time.sleep(interval)

    try:
        _run_parallel([partial(send, i) for i in range(senders)])
        end = time.monotonic() + deadline
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
    finally:
        done.set()
    if errors:
        raise BenchError(f"a receiver failed: {errors[0]}")
    missing = sum(len(markers) - len(got) for got in seen)
    if missing:
        raise BenchError(f"{missing} of {len(markers) * len(receiving)} deliveries not seen within {deadline}s")
    latencies = [(got[marker] - sent_at[marker]) * 1000 for got in seen for marker in markers]
    return {
        "fanout_latency_p50_ms": percentile(latencies, 50),
        "fanout_latency_p95_ms": percentile(latencies, 95),
        "fanout_latency_p99_ms": percentile(latencies, 99),
    }


def _sessions_of(owner: "MatrixClient", base_url: str, count: int) -> list["MatrixClient"]:
    """`owner` and `count - 1` more HTTP sessions logged in with its access token."""
    sessions = [owner]
    for _ in range(count - 1):
        extra = MatrixClient(base_url)
        extra.token, extra.user_id = owner.token, owner.user_id
        sessions.append(extra)
    return sessions


def initial_sync(base_url: str, server_name: str, rooms: int = 20, messages: int = 50, samples: int = 3,
                 threads: int = 4) -> dict[str, float]:
    """One user in `rooms` rooms of `messages` messages each (set up from `threads` sessions);
    the median time of `samples` initial syncs (no since, the empty filter)."""
    prefix = _prefix("isync")
    owner = MatrixClient(base_url).register(f"{prefix}_owner")
    sessions = _sessions_of(owner, base_url, threads)

    def fill(index: int) -> None:
        client = sessions[index]
        for r in range(index, rooms, threads):
            room_id = client.create_room(name=f"{prefix} room {r}")
            for m in range(messages):
                client.send_text(room_id, f"{prefix} r{r} m{m}")

    _run_parallel([partial(fill, i) for i in range(threads)])
    durations: list[float] = []
    for sample in range(samples):
        # The empty filter, spelt differently each time: a server that keeps recent /sync
        # answers for retries (Synapse does, for two minutes, keyed by the request) must
        # compute every sample.
        began = time.monotonic()
        result = owner.sync(filter_="{" + " " * sample + "}")
        durations.append(time.monotonic() - began)
        joined = len(result.get("rooms", {}).get("join", {}))
        if joined != rooms:
            raise BenchError(f"initial sync shows {joined} joined rooms, expected {rooms}")
    return {"initial_sync_s": statistics.median(durations)}


def messages_pages(base_url: str, server_name: str, messages: int = 1000, pages: int = 20, limit: int = 50,
                   threads: int = 4) -> dict[str, float]:
    """A room of `messages` messages (sent from `threads` sessions); the median time of
    `pages` /messages requests of `limit` events going back from the end (starting again at
    the end whenever history runs out)."""
    prefix = _prefix("hist")
    owner = MatrixClient(base_url).register(f"{prefix}_owner")
    room_id = owner.create_room()
    sessions = _sessions_of(owner, base_url, threads)

    def fill(index: int) -> None:
        for m in range(index, messages, threads):
            sessions[index].send_text(room_id, f"{prefix} m{m}")

    _run_parallel([partial(fill, i) for i in range(threads)])
    room_filter = json.dumps({"room": {"rooms": [room_id], "timeline": {"limit": 1}}})
    top = owner.sync(filter_=room_filter)["next_batch"]
    path = f"rooms/{quote(room_id)}/messages"
    durations: list[float] = []
    token = top
    while len(durations) < pages:
        began = time.monotonic()
        result = owner.request("GET", path, params={"dir": "b", "limit": limit, "from": token})
        durations.append((time.monotonic() - began) * 1000)
        chunk = result.get("chunk", [])
        if len(durations) == 1 and len(chunk) != min(limit, messages):
            raise BenchError(f"first /messages page has {len(chunk)} events, expected {min(limit, messages)}")
        token = result.get("end") if chunk and result.get("end") else top
    return {"messages_page_p50_ms": statistics.median(durations)}


# The scenarios in the order the runner runs them, with their sizes.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "register_rate": {"count": 10},
        "send_throughput": {"users": 4, "rooms": 2, "messages": 5},
        "fan_out": {"receivers": 4, "senders": 1, "messages": 5, "interval": 0.05},
        "initial_sync": {"rooms": 3, "messages": 5},
        "messages_pages": {"messages": 100, "pages": 5},
    },
    "default": {
        "register_rate": {"count": 50},
        "send_throughput": {"users": 10, "rooms": 5, "messages": 50},
        "fan_out": {"receivers": 20, "senders": 2, "messages": 25, "interval": 0.1},
        "initial_sync": {"rooms": 20, "messages": 50},
        "messages_pages": {"messages": 1000, "pages": 20},
    },
}
SCENARIOS: dict[str, Callable[..., dict[str, float]]] = {
    "register_rate": register_rate,
    "send_throughput": send_throughput,
    "fan_out": fan_out,
    "initial_sync": initial_sync,
    "messages_pages": messages_pages,
}
