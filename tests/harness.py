"""Test harness: fresh databases on real PostgreSQL or SQLite, and real server processes on
free loopback ports, driven over HTTP."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import requests
import yaml

from homeserver.config.key import write_new_signing_key

PG_ARGS = {
    "host": os.environ.get("HS_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("HS_TEST_PG_PORT", "5432")),
    "user": os.environ.get("HS_TEST_PG_USER", "postgres"),
}
REDIS_HOST = os.environ.get("HS_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("HS_TEST_REDIS_PORT", "6379"))
ENGINES = ["sqlite", "postgres"]
# Deployment shapes of the API tests: a single process on each engine, and `workers` (see
# `workers_deployment`). `HS_TEST_SHAPES=workers` (comma-separated) runs only those shapes.
ALL_SHAPES = [*ENGINES, "workers"]
SHAPES = [s.strip() for s in os.environ.get("HS_TEST_SHAPES", ",".join(ALL_SHAPES)).split(",") if s.strip()]
if not SHAPES or set(SHAPES) - set(ALL_SHAPES):
    raise ValueError(f"HS_TEST_SHAPES={os.environ.get('HS_TEST_SHAPES')!r}: choose from {', '.join(ALL_SHAPES)}")

# Rate limits high enough that tests never hit them unless they mean to.
NO_RATE_LIMITS = {
    key: {"per_second": 10000, "burst_count": 10000}
    for key in ("rc_message", "rc_registration", "rc_admin_redaction")
} | {
    "rc_login": {
        "address": {"per_second": 10000, "burst_count": 10000},
        "account": {"per_second": 10000, "burst_count": 10000},
        "failed_attempts": {"per_second": 10000, "burst_count": 10000},
    },
    "rc_joins": {"local": {"per_second": 10000, "burst_count": 10000}},
    "rc_invites": {part: {"per_second": 10000, "burst_count": 10000} for part in ("per_room", "per_user", "per_issuer")},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _admin_connection() -> Any:
    conn = psycopg2.connect(dbname="postgres", **PG_ARGS)
    conn.autocommit = True
    return conn


def create_pg_database() -> str:
    name = "hs_test_" + secrets.token_hex(6)
    conn = _admin_connection()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    conn.close()
    return name


def drop_pg_database(name: str) -> None:
    conn = _admin_connection()
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    conn.close()


@contextmanager
def database_config(engine: str, directory: str) -> Iterator[dict[str, Any]]:
    """A `database` config section for a new, empty database that is removed afterwards."""
    if engine == "sqlite":
        yield {"name": "sqlite3", "args": {"database": os.path.join(directory, "homeserver.db")}}
        return
    name = create_pg_database()
    try:
        yield {"name": "psycopg2", "args": {**PG_ARGS, "dbname": name, "cp_min": 1, "cp_max": 5}}
    finally:
        drop_pg_database(name)


def query_database(db: dict[str, Any], sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
    """Rows of a query (`?` placeholders) against a server's database, for state no API shows."""
    if db["name"] == "sqlite3":
        import sqlite3

        conn: Any = sqlite3.connect(db["args"]["database"], timeout=10)
        try:
            return list(conn.execute(sql, args).fetchall())
        finally:
            conn.close()
    conn = psycopg2.connect(**{k: v for k, v in db["args"].items() if k not in ("cp_min", "cp_max")})
    try:
        with conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), args)
            return list(cur.fetchall())
    finally:
        conn.close()


def base_config(directory: str, db: dict[str, Any], port: int, server_name: str = "test.local") -> dict[str, Any]:
    key_path = os.path.join(directory, "signing.key")
    if not os.path.exists(key_path):
        write_new_signing_key(key_path)
    return {
        "server_name": server_name,
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "listeners": [
            {
                "port": port, "type": "http", "bind_addresses": ["127.0.0.1"],
                "resources": [{"names": ["client", "replication", "metrics"]}],
            }
        ],
        "database": db,
        "signing_key_path": key_path,
        "registration_shared_secret": "test-shared-secret",
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "bcrypt_rounds": 4,
        "pid_file": os.path.join(directory, "homeserver.pid"),
        **NO_RATE_LIMITS,
    }


class ServerProcess:
    """A real homeserver process; `url` is its client base URL."""

    def __init__(self, directory: str, config: dict[str, Any], module: str = "homeserver.app.homeserver",
                 extra_configs: list[dict[str, Any]] | None = None, name: str = "main"):
        self.directory = directory
        self.config = config
        self.module = module
        self.name = name
        self.config_paths = [self._write(f"{name}-0.yaml", config)]
        for index, extra in enumerate(extra_configs or [], start=1):
            self.config_paths.append(self._write(f"{name}-{index}.yaml", extra))
        listeners = config.get("worker_listeners") or config.get("listeners") or []
        for extra in extra_configs or []:
            listeners = extra.get("worker_listeners") or listeners
        self.port = listeners[0]["port"]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(directory, f"{name}.log")
        self._log_start = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def server_name(self) -> str:
        return str(self.config["server_name"])

    def _write(self, filename: str, config: dict[str, Any]) -> str:
        path = os.path.join(self.directory, filename)
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        return path

    def command(self) -> list[str]:
        args = [sys.executable, "-m", self.module]
        for path in self.config_paths:
            args += ["-c", path]
        return args

    def start(self, timeout: float = 20.0) -> "ServerProcess":
        log = open(self.log_path, "ab")
        self._log_start = log.tell()
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """What the process has logged since it was last started."""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_start)
            return f.read().decode(errors="replace")

    def logs(self) -> list[str]:
        """The log of each process (one here; see `Deployment`)."""
        return [self.log()]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


class Client:
    """A small Matrix client over `requests`, for asserting on raw responses."""

    def __init__(self, base_url: str, access_token: str | None = None):
        self.base_url = base_url
        self.access_token = access_token
        self.user_id: str | None = None
        self.device_id: str | None = None
        self.session = requests.Session()

    def request(self, method: str, path: str, json: Any = None, data: bytes | None = None,
                params: dict[str, Any] | None = None, auth: bool = True, headers: dict[str, str] | None = None) -> requests.Response:
        if not path.startswith("/"):
            path = "/_matrix/client/v3/" + path
        all_headers = dict(headers or {})
        if auth and self.access_token:
            all_headers["Authorization"] = f"Bearer {self.access_token}"
        return self.session.request(method, self.base_url + path, json=json, data=data, params=params,
                                    headers=all_headers, timeout=30)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, json=json, **kwargs)

    def register(self, username: str, password: str = "correct horse", **extra: Any) -> dict[str, Any]:
        body = {"username": username, "password": password, "auth": {"type": "m.login.dummy"}, **extra}
        resp = self.post("register", body, auth=False)
        assert resp.status_code == 200, resp.text
        result = resp.json()
        self.access_token = result.get("access_token")
        self.user_id = result["user_id"]
        self.device_id = result.get("device_id")
        return result  # type: ignore[no-any-return]

    def login(self, user: str, password: str = "correct horse", **extra: Any) -> dict[str, Any]:
        body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password, **extra}
        resp = self.post("login", body, auth=False)
        assert resp.status_code == 200, resp.text
        result = resp.json()
        self.access_token = result["access_token"]
        self.user_id = result["user_id"]
        self.device_id = result["device_id"]
        return result  # type: ignore[no-any-return]


@contextmanager
def running_server(engine: str, **overrides: Any) -> Iterator[ServerProcess]:
    """A main process on a fresh database of `engine`, stopped and cleaned up afterwards."""
    with tempfile.TemporaryDirectory(prefix="hs-test-") as directory, database_config(engine, directory) as db:
        config = base_config(directory, db, free_port())
        config.update(overrides)
        server = ServerProcess(directory, config).start()
        try:
            yield server
        finally:
            server.stop()


def worker_config(name: str, port: int, app: str = "synapse.app.generic_worker",
                  resources: tuple[str, ...] = ("client",)) -> dict[str, Any]:
    """A worker's own config file: app, name and one loopback listener."""
    return {
        "worker_app": app,
        "worker_name": name,
        "worker_listeners": [
            {"port": port, "type": "http", "bind_addresses": ["127.0.0.1"], "resources": [{"names": list(resources)}]}
        ],
    }


@contextmanager
def multi_process_deployment(
    workers: list[dict[str, Any]], server_name: str, **shared_overrides: Any,
) -> Iterator[list[ServerProcess]]:
    """A main process and the given workers (their own config files) on a fresh PostgreSQL
    database with Redis replication; yields [main, *workers], stopped afterwards. Give each
    deployment its own server name: replication runs on a Redis channel named after it."""
    with tempfile.TemporaryDirectory(prefix="hs-test-") as directory, database_config("postgres", directory) as db:
        main_port = shared_overrides.pop("main_port", None) or free_port()
        shared = base_config(directory, db, main_port, server_name=server_name)
        shared["redis"] = {"enabled": True, "host": REDIS_HOST, "port": REDIS_PORT}
        shared["instance_map"] = {"main": {"host": "127.0.0.1", "port": main_port}}
        for key, value in shared_overrides.items():
            if key == "instance_map":
                shared["instance_map"].update(value)
            else:
                shared[key] = value
        processes = [ServerProcess(directory, shared).start()]
        try:
            for worker in workers:
                process = ServerProcess(directory, shared, "homeserver.app.generic_worker", [worker],
                                        name=worker["worker_name"])
                processes.append(process)
                process.start()
            yield processes
        finally:
            for process in reversed(processes):
                process.stop()


# The streams `writer1` of the `workers` shape writes.
EPHEMERAL_STREAMS = ["typing", "to_device", "account_data", "receipts", "presence"]


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class NginxProxy:
    """A real nginx in front of a deployment, running the config `homeserver routes`
    generates for it; stopped by its pid."""

    def __init__(self, directory: str, shared_config: str, worker_configs: list[str]):
        self.directory = os.path.join(directory, "nginx")
        os.makedirs(self.directory, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.routes = os.path.join(self.directory, "matrix.conf")
        args = [sys.executable, "-m", "homeserver.tools.cli", "routes", "--format", "nginx",
                "--listen", f"127.0.0.1:{self.port}", "-o", self.routes, "-c", shared_config]
        for path in worker_configs:
            args += ["-a", path]
        subprocess.run(args, check=True, capture_output=True, timeout=60)
        self.conf = os.path.join(self.directory, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(nginx_wrapper(self.directory, self.routes))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "NginxProxy":
        self.process = subprocess.Popen([NGINX, "-c", self.conf, "-g", "daemon off;"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/health", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def nginx_wrapper(directory: str, included: str) -> str:
    """A whole nginx.conf around the generated `http`-context file, writing only to `directory`."""
    temp = "\n".join(f"    {kind}_temp_path {directory}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
            f"http {{\n    access_log {directory}/access.log;\n{temp}\n    include {included};\n}}\n")


class Deployment:
    """A running multi-process deployment, used by tests where they use a `ServerProcess`:
    `url` is the client URL of `front` (a real nginx with the generated routing when
    `proxied`; else a generic worker, whose misroute guard forwards what it may not serve),
    `config` the shared config, `log()` every process's log."""

    def __init__(self, processes: list[ServerProcess], front: str = "worker1", proxied: bool = False):
        self.processes = {process.name: process for process in processes}
        self.main = self.processes["main"]
        self.front = self.processes[front]
        self.config = self.main.config
        self.directory = self.main.directory
        self.proxy: NginxProxy | None = None
        if proxied:
            workers = [process.config_paths[-1] for process in processes if process is not self.main]
            self.proxy = NginxProxy(self.directory, self.main.config_paths[0], workers).start()
        self.url = self.proxy.url if self.proxy else self.front.url
        self.port = self.proxy.port if self.proxy else self.front.port

    @property
    def server_name(self) -> str:
        return self.main.server_name

    def log(self) -> str:
        return "".join(f"===== {name} =====\n{process.log()}" for name, process in self.processes.items())

    def logs(self) -> list[str]:
        return [process.log() for process in self.processes.values()]

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            process.stop()

    def close(self) -> None:
        """Stop everything, the proxy included."""
        if self.proxy is not None:
            self.proxy.stop()
        self.stop()

    def start(self) -> "Deployment":
        """Starts every process again (after `stop`), main first."""
        for process in self.processes.values():
            process.start()
        return self


@contextmanager
def workers_deployment(server_name: str | None = None, proxied: bool = True, persisters: int = 2,
                       generic_workers: int = 2, **shared_overrides: Any) -> Iterator[Deployment]:
    """The `workers` shape: main, event persisters (`persister1`, `persister2`, ...), one writer
    of the typing, to_device, account_data, receipts and presence streams (`writer1`) and
    generic workers with a client listener (`worker1`, `worker2`, ...), on a fresh PostgreSQL
    database with Redis replication and a replication secret, behind a real nginx running the
    generated routing (`proxied`; else clients talk to worker1 directly). The server name is
    unique unless given (the Redis channel is named after it). The tests use the default two
    persisters and two workers; the benchmark varies them."""
    server_name = server_name or f"workers-{secrets.token_hex(4)}.test"
    event_persisters = [f"persister{i}" for i in range(1, persisters + 1)]
    clients = [f"worker{i}" for i in range(1, generic_workers + 1)]
    writers = [*event_persisters, "writer1"]  # started before the generic workers
    ports = {name: free_port() for name in [*writers, *clients]}
    # Every listener serves metrics too, as the single process's listener does.
    workers = [worker_config(name, ports[name], resources=("client", "replication", "metrics")) for name in writers]
    workers += [worker_config(name, ports[name], resources=("client", "metrics")) for name in clients]
    overrides: dict[str, Any] = {
        "worker_replication_secret": "workers-" + secrets.token_hex(8),
        "instance_map": {name: {"host": "127.0.0.1", "port": ports[name]} for name in writers},
        "stream_writers": {"events": event_persisters, **{stream: ["writer1"] for stream in EPHEMERAL_STREAMS}},
    }
    overrides.update(shared_overrides)
    with multi_process_deployment(workers, server_name, **overrides) as processes:
        deployment = Deployment(processes, proxied=proxied)
        try:
            yield deployment
        finally:
            if deployment.proxy is not None:
                deployment.proxy.stop()
