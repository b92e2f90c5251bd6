"""Limits a hostile or broken client runs into, against a real server with small limits: the
request body size, the event size and identifier lengths, hostile JSON, slow clients
(`request_read_timeout`) and too many long-polls of one user (`max_waiting_syncs_per_user`).
Each answer is checked as a client sees it: HTTP status and Matrix errcode, never a 500, and
the server keeps serving afterwards."""

import re
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.harness import ENGINES, SHAPES, Client, ServerProcess, running_server

BODY_LIMIT = 1024 * 1024
READ_TIMEOUT = 2.0
MAX_WAITING = 3
VERSIONS = "/_matrix/client/versions"
WAITING_METRIC = re.compile(r"^homeserver_notifier_waiting_requests (\S+)$", re.M)


@pytest.fixture(scope="module", params=[shape for shape in SHAPES if shape in ENGINES])
def limited(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A single process with a 1 MiB body limit, a 2 s read timeout and at most 3 waiting
    long-polls per user."""
    with running_server(request.param, max_request_body_size=BODY_LIMIT, request_read_timeout=READ_TIMEOUT,
                        max_waiting_syncs_per_user=MAX_WAITING) as process:
        yield process


@pytest.fixture
def user(limited: ServerProcess) -> Callable[[], Client]:
    def make() -> Client:
        client = Client(limited.url)
        client.register("h" + secrets.token_hex(6))
        return client

    return make


def assert_error(resp: requests.Response, status: int, *errcodes: str) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert body["errcode"] in errcodes, body
    assert isinstance(body["error"], str)
    return body  # type: ignore[no-any-return]


def assert_healthy(server: ServerProcess) -> None:
    assert requests.get(server.url + VERSIONS, timeout=10).status_code == 200


def new_room(client: Client) -> str:
    resp = client.post("createRoom", {})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["room_id"])


def send_raw(client: Client, room_id: str, data: bytes, event_type: str = "m.room.message") -> requests.Response:
    path = f"rooms/{quote(room_id)}/send/{quote(event_type, safe='')}/{secrets.token_hex(6)}"
    return client.put(path, data=data, headers={"Content-Type": "application/json"})


def state_raw(client: Client, room_id: str, data: bytes, event_type: str = "m.hardening", state_key: str = "") -> requests.Response:
    path = f"rooms/{quote(room_id)}/state/{quote(event_type, safe='')}/{quote(state_key, safe='')}"
    return client.put(path, data=data, headers={"Content-Type": "application/json"})


# --- request body size -----------------------------------------------------------------------


def _padded(size: int) -> bytes:
    prefix, suffix = b'{"type": "m.login.password", "padding": "', b'"}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


def test_body_over_the_limit_is_413(limited: ServerProcess) -> None:
    session = requests.Session()
    resp = session.post(limited.url + "/_matrix/client/v3/login", data=_padded(BODY_LIMIT + 1), timeout=30)
    assert_error(resp, 413, "M_TOO_LARGE")
    # The same connection (if kept) and new ones still work.
    assert session.get(limited.url + VERSIONS, timeout=10).status_code == 200
    assert_healthy(limited)


def test_body_over_the_limit_chunked_is_413(limited: ServerProcess) -> None:
    body = _padded(3 * BODY_LIMIT)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    try:
        resp = requests.post(limited.url + "/_matrix/client/v3/login", data=chunks(), timeout=30)
    except requests.ConnectionError:
        pytest.fail("the server dropped a chunked body three times the limit instead of answering 413")
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(resp, 413, "M_TOO_LARGE")
    assert_healthy(limited)


def test_body_far_over_the_limit_does_not_hurt_the_server(limited: ServerProcess) -> None:
    """Past ten times the limit the server stops reading and drops the connection."""
    body = b"x" * (12 * BODY_LIMIT)
    try:
        resp = requests.post(limited.url + "/_matrix/client/v3/login", data=iter([body]), timeout=30)
        assert_error(resp, 413, "M_TOO_LARGE")
    except requests.ConnectionError:
        pass
    assert_healthy(limited)


# --- event size and identifier lengths ---------------------------------------------------------


def test_event_over_65536_bytes_is_413(limited: ServerProcess, user: Callable[[], Client]) -> None:
    alice = user()
    room = new_room(alice)
    big = b'{"msgtype": "m.text", "body": "' + b"x" * 66_000 + b'"}'
    assert_error(send_raw(alice, room, big), 413, "M_TOO_LARGE")
    assert_error(state_raw(alice, room, big), 413, "M_TOO_LARGE")
    # An event comfortably under the limit goes through.
    fits = b'{"msgtype": "m.text", "body": "' + b"x" * 60_000 + b'"}'
    assert send_raw(alice, room, fits).status_code == 200
    assert state_raw(alice, room, fits).status_code == 200


def test_event_type_and_state_key_over_255_bytes_are_refused(limited: ServerProcess, user: Callable[[], Client]) -> None:
    """Like Synapse (EventSizeError): 413 M_TOO_LARGE; 255 bytes still pass."""
    alice = user()
    room = new_room(alice)
    body = b'{"body": "hi"}'
    assert_error(send_raw(alice, room, body, event_type="t" * 256), 413, "M_TOO_LARGE")
    assert_error(state_raw(alice, room, body, event_type="t" * 256), 413, "M_TOO_LARGE")
    assert_error(state_raw(alice, room, body, state_key="k" * 256), 413, "M_TOO_LARGE")
    # Multi-byte characters count in bytes: 128 x "é" is 256 bytes.
    assert_error(state_raw(alice, room, body, state_key="é" * 128), 413, "M_TOO_LARGE")
    assert send_raw(alice, room, body, event_type="t" * 255).status_code == 200
    assert state_raw(alice, room, body, state_key="k" * 255).status_code == 200


def test_user_ids_over_255_bytes_are_400(limited: ServerProcess, user: Callable[[], Client]) -> None:
    alice = user()
    room = new_room(alice)
    register = {"username": "u" * 300, "password": "pw", "auth": {"type": "m.login.dummy"}}
    assert_error(Client(limited.url).post("register", register, auth=False), 400, "M_INVALID_USERNAME")
    long_id = "@" + "u" * 300 + ":" + limited.server_name
    assert_error(alice.post(f"rooms/{quote(room)}/invite", {"user_id": long_id}), 400, "M_INVALID_PARAM")
    assert_error(alice.get(f"profile/{quote(long_id)}"), 400, "M_INVALID_PARAM")


def test_room_alias_over_255_bytes_is_400(limited: ServerProcess, user: Callable[[], Client]) -> None:
    alice = user()
    room = new_room(alice)
    alias = "#" + "a" * 300 + ":" + limited.server_name
    assert_error(alice.put(f"directory/room/{quote(alias)}", {"room_id": room}), 400, "M_INVALID_PARAM")
    resp = alice.get(f"directory/room/{quote(alias)}")
    assert resp.status_code in (400, 404), resp.text
    assert resp.json()["errcode"] in ("M_INVALID_PARAM", "M_NOT_FOUND")


# --- hostile JSON ------------------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b'{"body": ' + b"[" * depth + b"]" * depth + b"}"


HOSTILE_BODIES = {
    "nested-100000": _nested(100_000),
    "nested-objects-5000": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    # Deep enough to break the recursive copy and encoding of event content (was a 500).
    "nested-600": _nested(600),
    "nested-101": _nested(100),
    "invalid-utf8": b'{"body": "\xff\xfe"}',
    "overlong-utf8": b'{"body": "\xc0\xaf"}',
    "lone-surrogate": b'{"body": "\\ud800"}',
    "surrogate-key": b'{"\\udfff": 1}',
    "duplicate-keys": b'{"body": "a", "body": "b"}',
    "duplicate-nested-keys": b'{"body": {"x": 1, "x": 2}}',
    "int-too-big": b'{"body": 9007199254740992}',
    "int-too-small": b'{"body": -9007199254740992}',
    "int-huge": b'{"body": 1' + b"0" * 5000 + b"}",
    "nan": b'{"body": NaN}',
    "infinity": b'{"body": Infinity}',
    "minus-infinity": b'{"body": -Infinity}',
    "truncated": b'{"body": [1, 2',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_json_is_400(limited: ServerProcess, user: Callable[[], Client], name: str) -> None:
    alice = user()
    room = new_room(alice)
    body = HOSTILE_BODIES[name]
    assert_error(send_raw(alice, room, body), 400, "M_NOT_JSON", "M_BAD_JSON")
    assert_error(state_raw(alice, room, body), 400, "M_NOT_JSON", "M_BAD_JSON")
    account_data = f"user/{quote(str(alice.user_id))}/account_data/m.hardening"
    assert_error(alice.put(account_data, data=body), 400, "M_NOT_JSON", "M_BAD_JSON")
    login = requests.post(limited.url + "/_matrix/client/v3/login", data=body, timeout=30)
    assert_error(login, 400, "M_NOT_JSON", "M_BAD_JSON")
    assert_healthy(limited)


@pytest.mark.parametrize("number", [b"1.5", b"-0.0", b"1e3", b"1E-3", b"0.1"])
def test_floats_in_event_content_are_400_bad_json(limited: ServerProcess, user: Callable[[], Client], number: bytes) -> None:
    alice = user()
    room = new_room(alice)
    body = b'{"msgtype": "m.text", "body": "x", "n": {"deep": [' + number + b"]}}"
    assert_error(send_raw(alice, room, body), 400, "M_BAD_JSON")
    assert_error(state_raw(alice, room, body), 400, "M_BAD_JSON")


def test_json_at_the_edges_is_accepted(limited: ServerProcess, user: Callable[[], Client]) -> None:
    alice = user()
    room = new_room(alice)
    assert send_raw(alice, room, b'{"a": 9007199254740991, "b": -9007199254740991}').status_code == 200
    # 100 levels of nesting in all (the outer object counts) are fine.
    assert send_raw(alice, room, _nested(99)).status_code == 200
    assert send_raw(alice, room, '{"body": "\\ud83d\\ude00 \u00e9"}'.encode()).status_code == 200


def test_huge_arrays_within_the_body_limit(limited: ServerProcess, user: Callable[[], Client]) -> None:
    """Half a million array items: too big for an event (413), refused quickly elsewhere, and
    the server stays up."""
    alice = user()
    room = new_room(alice)
    items = b"0," * 500_000 + b"0"
    assert len(items) < BODY_LIMIT
    assert_error(send_raw(alice, room, b'{"body": [' + items + b"]}"), 413, "M_TOO_LARGE")
    login = requests.post(limited.url + "/_matrix/client/v3/login", data=b'{"type": [' + items + b"]}", timeout=30)
    assert_error(login, 400, "M_BAD_JSON")
    filter_body = b'{"room": {"rooms": [' + b'"!a:b",' * 100_000 + b'"!a:b"]}}'
    resp = alice.post(f"user/{quote(str(alice.user_id))}/filter", data=filter_body)
    assert resp.status_code in (200, 400), resp.text[:300]
    assert_healthy(limited)


# --- slow clients (request_read_timeout) ----------------------------------------------------------


def _connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT * 5)
    return sock


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    received = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            return received, time.monotonic()
        received += data


def _assert_408(received: bytes) -> None:
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), received[:300]
    assert b"application/json" in head
    assert b'"errcode":"M_UNKNOWN"' in body


def test_stalled_headers_are_cut_off_with_408(limited: ServerProcess) -> None:
    with _connect(limited) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n")
        received, closed = _read_until_closed(sock)
    _assert_408(received)
    assert READ_TIMEOUT - 0.5 <= closed - start <= READ_TIMEOUT + 3
    assert_healthy(limited)


def test_stalled_body_is_cut_off_with_408(limited: ServerProcess) -> None:
    with _connect(limited) as sock:
        start = time.monotonic()
        sock.sendall(b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"type\"")
        received, closed = _read_until_closed(sock)
    _assert_408(received)
    assert READ_TIMEOUT - 0.5 <= closed - start <= READ_TIMEOUT + 3


def test_trickling_client_is_cut_off(limited: ServerProcess) -> None:
    """A byte every 0.3 s keeps an idle timeout happy forever; the read timeout does not reset."""
    request = b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    with _connect(limited) as sock:
        start = time.monotonic()
        sent = 0
        try:
            while sent < len(request) and time.monotonic() - start < READ_TIMEOUT * 4:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered (or closed): stop sending, read it
                sock.sendall(request[sent:sent + 1])
                sent += 1
                time.sleep(0.3)
        except OSError:
            pass
        received, closed = _read_until_closed(sock)
    assert sent < len(request)
    assert closed - start <= READ_TIMEOUT + 3
    _assert_408(received)


def test_silent_connection_is_closed(limited: ServerProcess) -> None:
    with _connect(limited) as sock:
        start = time.monotonic()
        received, closed = _read_until_closed(sock)
    assert received == b""
    assert READ_TIMEOUT - 0.5 <= closed - start <= READ_TIMEOUT + 3


def test_kept_alive_connection_may_idle_longer_than_the_read_timeout(limited: ServerProcess) -> None:
    """Between requests the connection may idle (300 s): clients' pools reuse connections."""
    request = b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(limited) as sock:
        for _ in range(2):
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            time.sleep(READ_TIMEOUT + 1)


def test_slow_second_request_on_a_kept_alive_connection_is_cut_off(limited: ServerProcess) -> None:
    """The deadline of a later request starts with its first byte."""
    with _connect(limited) as sock:
        sock.sendall(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        time.sleep(1)
        start = time.monotonic()
        sock.sendall(b"GET /_matrix/client/versions HTTP/1.1\r\n")
        received, closed = _read_until_closed(sock)
    _assert_408(received)
    assert READ_TIMEOUT - 0.5 <= closed - start <= READ_TIMEOUT + 3


def test_long_poll_outlives_the_read_timeout(limited: ServerProcess, user: Callable[[], Client]) -> None:
    """The deadline is on receiving the request: a 20 s long-poll (ten times the read timeout)
    is answered normally, at its own timeout. (The test client gives up after 30 s.)"""
    alice = user()
    since = alice.get("sync").json()["next_batch"]
    start = time.monotonic()
    resp = alice.get("sync", params={"since": since, "timeout": 20_000})
    assert resp.status_code == 200, resp.text
    assert 19 <= time.monotonic() - start < 28


def test_long_poll_is_woken_after_the_read_timeout(limited: ServerProcess, user: Callable[[], Client]) -> None:
    alice = user()
    room = new_room(alice)
    since = alice.get("sync").json()["next_batch"]
    sender = Client(alice.base_url, alice.access_token)
    timer = threading.Timer(READ_TIMEOUT * 2, lambda: send_raw(sender, room, b'{"msgtype": "m.text", "body": "wake"}'))
    timer.start()
    try:
        resp = alice.get("sync", params={"since": since, "timeout": 20_000})
    finally:
        timer.join()
    assert resp.status_code == 200, resp.text
    events = resp.json()["rooms"]["join"][room]["timeline"]["events"]
    assert any(e["content"].get("body") == "wake" for e in events)


# --- long-polls per user (max_waiting_syncs_per_user) ------------------------------------------------


def waiting(server: ServerProcess) -> int:
    text = requests.get(server.url + "/_synapse/metrics", timeout=10).text
    match = WAITING_METRIC.search(text)
    assert match, "no homeserver_notifier_waiting_requests metric"
    return int(float(match[1]))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Poll(threading.Thread):
    """One long-poll in the background; `resp` and `seconds` once it is answered."""

    def __init__(self, client: Client, path: str, params: dict[str, Any]):
        super().__init__(daemon=True)
        self.client = Client(client.base_url, client.access_token)
        self.path, self.params = path, params
        self.resp: requests.Response | None = None
        self.seconds = 0.0

    def run(self) -> None:
        start = time.monotonic()
        self.resp = self.client.get(self.path, params=self.params)
        self.seconds = time.monotonic() - start


def _settled(server: ServerProcess, expected: int, superseded: list[Poll]) -> Callable[[], bool]:
    """Whether `expected` long-polls wait and the `superseded` ones have been answered."""
    return lambda: waiting(server) == expected and not any(poll.is_alive() for poll in superseded)


def open_polls(server: ServerProcess, client: Client, count: int, path: str, params: dict[str, Any]) -> list[Poll]:
    """`count` long-polls, each opened once the previous one waits (so their age is known)."""
    polls: list[Poll] = []
    for index in range(count):
        poll = Poll(client, path, params)
        poll.start()
        polls.append(poll)
        wait_until(_settled(server, min(index + 1, MAX_WAITING), polls[:max(0, index + 1 - MAX_WAITING)]))
    return polls


def test_oldest_syncs_over_the_cap_return_empty(limited: ServerProcess, user: Callable[[], Client]) -> None:
    alice, bob = user(), user()
    room = new_room(alice)
    assert alice.post(f"rooms/{quote(room)}/invite", {"user_id": bob.user_id}).status_code == 200
    assert bob.post(f"join/{quote(room)}", {}).status_code == 200
    since = alice.get("sync").json()["next_batch"]
    polls = open_polls(limited, alice, MAX_WAITING + 3, "sync", {"since": since, "timeout": 25_000})
    superseded, live = polls[:3], polls[3:]
    for poll in superseded:
        poll.join(5)
        assert poll.resp is not None and poll.resp.status_code == 200, poll.resp
        body = poll.resp.json()
        assert body["next_batch"] == since
        assert body["rooms"]["join"] == {}
        assert poll.seconds < 10
    assert all(poll.is_alive() for poll in live)
    assert waiting(limited) == MAX_WAITING
    # The newest ones still wake on a message.
    assert send_raw(bob, room, b'{"msgtype": "m.text", "body": "news"}').status_code == 200
    for poll in live:
        poll.join(10)
        assert poll.resp is not None and poll.resp.status_code == 200
        events = poll.resp.json()["rooms"]["join"][room]["timeline"]["events"]
        assert [e["content"]["body"] for e in events] == ["news"]
    wait_until(lambda: waiting(limited) == 0)


def test_other_users_are_not_affected_by_the_cap(limited: ServerProcess, user: Callable[[], Client]) -> None:
    alice, bob = user(), user()
    alice_since = alice.get("sync").json()["next_batch"]
    bob_since = bob.get("sync").json()["next_batch"]
    alice_polls = open_polls(limited, alice, MAX_WAITING, "sync", {"since": alice_since, "timeout": 4_000})
    bob_poll = Poll(bob, "sync", {"since": bob_since, "timeout": 4_000})
    bob_poll.start()
    wait_until(lambda: waiting(limited) == MAX_WAITING + 1)
    for poll in [*alice_polls, bob_poll]:
        poll.join(15)
        assert poll.resp is not None and poll.resp.status_code == 200
        assert poll.seconds > 3, "a long-poll of another user was cut short"


def test_oldest_events_polls_over_the_cap_return_empty(limited: ServerProcess, user: Callable[[], Client]) -> None:
    """The legacy `/events` long-poll shares the cap."""
    alice = user()
    room = new_room(alice)
    start = alice.get("events", params={"timeout": 0}).json()["end"]
    polls = open_polls(limited, alice, MAX_WAITING + 1, "events", {"from": start, "timeout": 25_000})
    oldest = polls[0]
    oldest.join(5)
    assert oldest.resp is not None and oldest.resp.status_code == 200
    assert oldest.resp.json() == {"chunk": [], "start": start, "end": start}
    assert send_raw(alice, room, b'{"msgtype": "m.text", "body": "news"}').status_code == 200
    for poll in polls[1:]:
        poll.join(10)
        assert poll.resp is not None and poll.resp.status_code == 200
        assert [e["content"].get("body") for e in poll.resp.json()["chunk"]] == ["news"]


# --- on every deployment shape ---------------------------------------------------------------------


def test_deepest_allowed_event_is_stored_and_read_back(server: ServerProcess, make_user: Callable[[], Client]) -> None:
    """Content nested as deep as allowed survives the trip through every process (with
    workers the event goes to its persister inside a replication call, a few levels deeper)."""
    alice = make_user()
    room = new_room(alice)
    resp = send_raw(alice, room, _nested(99))
    assert resp.status_code == 200, resp.text
    event = alice.get(f"rooms/{quote(room)}/event/{quote(resp.json()['event_id'])}")
    assert event.status_code == 200, event.text
    depth, value = 1, event.json()["content"]["body"]
    while value:
        depth, value = depth + 1, value[0]
    assert depth == 99
    assert_error(send_raw(alice, room, _nested(100)), 400, "M_NOT_JSON")
    assert_error(send_raw(alice, room, b'{"body": "\\ud800"}'), 400, "M_NOT_JSON")
