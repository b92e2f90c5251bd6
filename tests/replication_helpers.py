"""Helpers for the real-deployment replication tests: a deployment whose processes can be
killed, restarted and reconfigured one at a time, a private Redis that can be stopped and
started again, and client-side helpers to read a room's whole history and wait for catch-up."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import requests

from tests.harness import (
    REDIS_HOST,
    REDIS_PORT,
    Client,
    ServerProcess,
    base_config,
    database_config,
    free_port,
    query_database,
    worker_config,
)

T = TypeVar("T")

SECRET = "replication-test-secret"
LOG_COPIES = os.path.join(tempfile.gettempdir(), "hs-replication-test-logs")


def unique_server_name(prefix: str) -> str:
    """Each deployment gets its own server name, hence its own Redis channel."""
    return f"{prefix}-{secrets.token_hex(4)}.test"


class PrivateRedis:
    """A Redis server of this test alone (the shared one must never be stopped): started on a
    free port, killed with SIGKILL and started again on the same port."""

    def __init__(self, directory: str, password: str | None = None):
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> "PrivateRedis":
        log = open(os.path.join(self.directory, "redis.log"), "ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory,
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("redis-server did not answer PING")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                answer = sock.recv(64)
                # With a password, an unauthenticated PING is refused: the server is up.
                return answer.startswith(b"+PONG") or (self.password is not None and answer.startswith(b"-NOAUTH"))
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, by PID: no clean shutdown, connections just drop."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


class Deployment:
    """A main process and named generic workers on one fresh PostgreSQL database. The shared
    config can be changed between (re)starts; a (re)started process reads the current one."""

    def __init__(
        self,
        directory: str,
        db: dict[str, Any],
        server_name: str,
        redis_port: int = REDIS_PORT,
        secret: str | None = SECRET,
    ):
        self.directory = directory
        self.db = db
        self.main_port = free_port()
        self.shared = base_config(directory, db, self.main_port, server_name=server_name)
        self.shared["redis"] = {"enabled": True, "host": REDIS_HOST, "port": redis_port}
        self.shared["instance_map"] = {"main": {"host": "127.0.0.1", "port": self.main_port}}
        if secret is not None:
            self.shared["worker_replication_secret"] = secret
        self.worker_configs: dict[str, dict[str, Any]] = {}
        self.processes: dict[str, ServerProcess] = {}

    @property
    def server_name(self) -> str:
        return str(self.shared["server_name"])

    def add_worker(
        self, name: str, resources: tuple[str, ...] = ("client", "replication", "metrics")
    ) -> int:
        """Declare a worker (in instance_map, so others can call it); returns its port."""
        port = free_port()
        self.worker_configs[name] = worker_config(name, port, resources=resources)
        self.shared["instance_map"][name] = {"host": "127.0.0.1", "port": port}
        return port

    def _process(self, name: str) -> ServerProcess:
        if name == "main":
            return ServerProcess(self.directory, self.shared, name="main")
        return ServerProcess(
            self.directory,
            self.shared,
            "homeserver.app.generic_worker",
            [self.worker_configs[name]],
            name=name,
        )

    def start(self, name: str) -> ServerProcess:
        process = self._process(name)
        self.processes[name] = process
        process.start(timeout=30)
        return process

    def start_all(self) -> None:
        self.start("main")
        for name in self.worker_configs:
            self.start(name)

    def stop(self, name: str) -> None:
        self.processes[name].stop()

    def kill(self, name: str) -> None:
        """SIGKILL, by the process's own PID."""
        process = self.processes[name].process
        assert process is not None and process.poll() is None, f"{name} is not running"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(5)

    def restart(self, name: str) -> ServerProcess:
        self.stop(name)
        return self.start(name)

    def url(self, name: str) -> str:
        return self.processes[name].url

    def client(self, name: str, token: str | None = None) -> Client:
        return Client(self.url(name), token)

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return query_database(self.db, sql, args)

    def stop_all(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def log_paths(self) -> list[str]:
        return [p.log_path for p in self.processes.values()] + [
            os.path.join(self.directory, "redis.log")
        ]


@contextmanager
def deployment(
    prefix: str,
    redis: bool = False,
    redis_password: str | None = None,
    db: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Iterator[Deployment]:
    """A Deployment on a fresh database (not started); with `redis=True` it gets a private
    Redis (asking for `redis_password` when given), reachable as `deployment.redis`. `db` is
    the `database` config section of an existing empty database to use instead (a private
    PostgreSQL cluster's, see tests/private_postgres.py); it is left to its owner.
    Everything is stopped and removed afterwards; the logs of a deployment whose block raised
    are kept under LOG_COPIES."""
    with (
        tempfile.TemporaryDirectory(prefix="hs-repl-") as directory,
        _database(directory, db) as database,
    ):
        private = PrivateRedis(directory, redis_password).start() if redis else None
        d = Deployment(
            directory,
            database,
            unique_server_name(prefix),
            redis_port=private.port if private else REDIS_PORT,
            **kwargs,
        )
        d.redis = private  # type: ignore[attr-defined]
        if redis_password is not None:
            d.shared["redis"]["password"] = redis_password
        try:
            yield d
        except BaseException:
            keep_logs(d, prefix)
            raise
        finally:
            d.stop_all()
            if private is not None:
                private.kill()


@contextmanager
def _database(directory: str, given: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The given database config, or a fresh database on the shared PostgreSQL."""
    if given is not None:
        yield given
        return
    with database_config("postgres", directory) as db:
        yield db


def keep_logs(d: Deployment, label: str) -> str:
    """Copy the deployment's logs somewhere that outlives the test, for diagnosis."""
    target = os.path.join(LOG_COPIES, f"{label}-{time.strftime('%H%M%S')}-{secrets.token_hex(2)}")
    os.makedirs(target, exist_ok=True)
    for path in d.log_paths():
        if os.path.exists(path):
            shutil.copy(path, target)
    print(f"logs kept in {target}")
    return target


# --- client side -----------------------------------------------------------------------------

_names = iter(range(1, 10**9))


def new_user(url: str, prefix: str = "user") -> Client:
    client = Client(url)
    client.register(f"{prefix}{next(_names)}x{secrets.token_hex(2)}")
    return client


def on(url: str, client: Client) -> Client:
    """The same user (same access token) talking to another process."""
    other = Client(url, client.access_token)
    other.user_id = client.user_id
    other.device_id = client.device_id
    return other


def send_text(
    client: Client, room: str, body: str, txn: str | None = None, timeout: float = 30
) -> requests.Response:
    path = f"{client.base_url}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn or secrets.token_hex(8)}"
    return client.session.put(
        path,
        json={"msgtype": "m.text", "body": body},
        headers={"Authorization": f"Bearer {client.access_token}"},
        timeout=timeout,
    )


def assert_ok(resp: requests.Response) -> dict[str, Any]:
    assert resp.status_code == 200, (
        f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text}"
    )
    return resp.json()  # type: ignore[no-any-return]


def is_matrix_error(resp: requests.Response) -> bool:
    try:
        body = resp.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and isinstance(body.get("errcode"), str)
        and isinstance(body.get("error"), str)
    )


def create_room(client: Client, **body: Any) -> str:
    return str(assert_ok(client.post("createRoom", body))["room_id"])


def join(client: Client, room: str) -> None:
    assert_ok(client.post(f"rooms/{room}/join", {}))


def room_history(
    client: Client, room: str, page: int = 100, start: str | None = None
) -> list[dict[str, Any]]:
    """The room's whole visible history, oldest first, read with backward `/messages`."""
    events: list[dict[str, Any]] = []
    token = start
    for _ in range(1000):
        params: dict[str, Any] = {"dir": "b", "limit": page}
        if token is not None:
            params["from"] = token
        body = assert_ok(client.get(f"rooms/{room}/messages", params=params))
        events.extend(body["chunk"])
        token = body.get("end")
        if not body["chunk"] or token is None:
            break
    return list(reversed(events))


def message_bodies(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["content"]["body"]
        for e in events
        if e["type"] == "m.room.message" and "body" in e.get("content", {})
    ]


def wait_until(check: Callable[[], T], timeout: float, interval: float = 0.2) -> T:
    """Call `check` until it returns something truthy or `timeout` passes; the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def sync_body(client: Client, http_timeout: float = 30, **params: Any) -> dict[str, Any]:
    """A /sync; `params` are its query parameters (`timeout` is the long-poll's, in ms)."""
    resp = client.session.get(
        f"{client.base_url}/_matrix/client/v3/sync",
        params=params,
        headers={"Authorization": f"Bearer {client.access_token}"},
        timeout=http_timeout,
    )
    return assert_ok(resp)


def timeline_bodies(sync: dict[str, Any], room: str) -> list[str]:
    joined = sync.get("rooms", {}).get("join", {})
    if room not in joined:
        return []
    return message_bodies(joined[room]["timeline"]["events"])


# A sync filter without presence (which would wake a long-poll of its own accord) and with room
# for every message a test sends.
NO_PRESENCE = '{"presence": {"not_types": ["*"]}, "room": {"timeline": {"limit": 100}}}'
