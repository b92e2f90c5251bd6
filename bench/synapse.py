"""Synapse, the server we compare against, in the benchmark's two deployment shapes (see
bench/README.md): installed from PyPI into its own venv, started on a fresh PostgreSQL
database on loopback, and returned as a `RunningShape` the load generator can drive.

    .venv/bin/python bench/synapse.py single|workers

starts a shape, registers a user, sends a message, prints what it started and stops it again.
"""

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.common import RunningShape, vmrss_kb  # noqa: E402
from tests.harness import (  # noqa: E402
    NGINX,
    PG_ARGS,
    REDIS_HOST,
    REDIS_PORT,
    create_pg_database,
    drop_pg_database,
    free_port,
    nginx_wrapper,
)

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SYNAPSE_VERSION = "1.163.2"
DEFAULT_VENV = os.path.join(BENCH_DIR, ".synapse-venv")
DEFAULT_WORK = os.path.join(BENCH_DIR, ".work")
# Synapse's Redis channels are named after the server name only, and the Redis here is shared:
# the workers shape uses its own logical database as well.
REDIS_DBID = 7
START_TIMEOUT_SECONDS = 180.0
STOP_GRACE_SECONDS = 10.0


def _log(message: str) -> None:
    print(f"[synapse] {message}", flush=True)


# --- installation --------------------------------------------------------------------------------


def _installed_version(python: str) -> str | None:
    if not os.path.exists(python):
        return None
    probe = subprocess.run([python, "-c", "import synapse, psycopg2, txredisapi; print(synapse.__version__)"],
                           capture_output=True, text=True)
    # synapse.__version__ looks like "1.163.2 (b=main,c22c756)".
    return probe.stdout.split()[0] if probe.returncode == 0 and probe.stdout.strip() else None


def ensure_synapse_venv(path: str = DEFAULT_VENV, version: str = SYNAPSE_VERSION) -> str:
    """A venv at `path` holding matrix-synapse[postgres,redis]==`version` (created with the
    python running this, 3.11); does nothing when it is already there. Returns its python."""
    path = os.path.abspath(path)
    python = os.path.join(path, "bin", "python")
    found = _installed_version(python)
    if found == version:
        _log(f"matrix-synapse {found} already installed in {path}")
        return python
    started = time.monotonic()
    if not os.path.exists(python):
        _log(f"creating venv {path}")
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    # Wheels wherever there is one; psycopg2 has none and is built against the system libpq.
    _log(f"installing matrix-synapse[postgres,redis]=={version} (about a minute)")
    subprocess.run([python, "-m", "pip", "install", "-q", "--prefer-binary",
                    f"matrix-synapse[postgres,redis]=={version}"], check=True)
    found = _installed_version(python)
    if found != version:
        raise RuntimeError(f"matrix-synapse {version} did not install (found {found})")
    _log(f"matrix-synapse {found} installed in {time.monotonic() - started:.0f}s")
    return python


# --- configuration -------------------------------------------------------------------------------

_UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}


def _no_rate_limits() -> dict[str, Any]:
    """Every client-facing rate limit Synapse has, lifted, so the load measures the server."""
    flat = ["rc_message", "rc_registration", "rc_registration_token_validity", "rc_admin_redaction",
            "rc_3pid_validation", "rc_joins_per_room", "rc_third_party_invite", "rc_media_create",
            "rc_delayed_event_mgmt", "rc_reports", "rc_room_creation", "rc_key_requests", "rc_user_directory",
            "rc_profile"]
    limits: dict[str, Any] = {key: dict(_UNLIMITED) for key in flat}
    limits["rc_login"] = {kind: dict(_UNLIMITED) for kind in ("address", "account", "failed_attempts")}
    limits["rc_joins"] = {kind: dict(_UNLIMITED) for kind in ("local", "remote")}
    limits["rc_invites"] = {kind: dict(_UNLIMITED) for kind in ("per_room", "per_user", "per_issuer")}
    limits["rc_presence"] = {"per_user": dict(_UNLIMITED)}
    limits["rc_federation"] = {"window_size": 1000, "sleep_limit": 1_000_000, "sleep_delay": 0,
                               "reject_limit": 1_000_000, "concurrent": 1_000_000}
    return limits


def _log_config(path: str, log_file: str, level: str) -> str:
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": log_file, "formatter": "plain"}},
        "root": {"level": level, "handlers": ["file"]},
    }
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def _listener(port: int, *resources: str) -> dict[str, Any]:
    return {"port": port, "type": "http", "bind_addresses": ["127.0.0.1"], "x_forwarded": True, "tls": False,
            "resources": [{"names": list(resources), "compress": False}]}


def _write_yaml(path: str, config: dict[str, Any]) -> str:
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


# --- processes -----------------------------------------------------------------------------------


@dataclass
class _Process:
    name: str
    args: list[str]
    health_url: str
    workdir: str
    popen: subprocess.Popen[bytes] | None = None
    startup: float = 0.0
    output_path: str = field(default="")

    def spawn(self) -> float:
        self.output_path = os.path.join(self.workdir, f"{self.name}.out")
        out = open(self.output_path, "ab")
        started = time.monotonic()
        self.popen = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                      cwd=self.workdir)
        out.close()
        return started

    def wait_healthy(self, started: float, timeout: float = START_TIMEOUT_SECONDS) -> float:
        assert self.popen is not None
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; see {self.workdir}/{self.name}.*:\n"
                                   + self.tail())
            try:
                if requests.get(self.health_url, timeout=2).status_code == 200:
                    self.startup = time.monotonic() - started
                    return self.startup
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s:\n" + self.tail())

    def tail(self, lines: int = 30) -> str:
        text = ""
        for suffix in (".out", ".log"):
            path = os.path.join(self.workdir, self.name + suffix)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += "".join(f.readlines()[-lines:])
        return text

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid


def _stop_processes(processes: list[_Process]) -> None:
    """SIGTERM to each (by pid), then SIGKILL to whatever is still there after the grace time."""
    live = [p for p in processes if p.popen is not None and p.popen.poll() is None]
    for process in live:
        try:
            os.kill(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in live:
        assert process.popen is not None
        try:
            process.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.popen.wait(5)


# --- nginx routing -------------------------------------------------------------------------------

# From Synapse's worker documentation (docs/workers.md, "Stream writers"): endpoints to send to
# the writer of the typing, to_device, account_data, receipts and presence streams.
STREAM_WRITER_PATHS = [
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/typing",
    r"^/_matrix/client/(r0|v3|unstable)/sendToDevice/",
    r"^/_matrix/client/(r0|v3|unstable)/.*/tags",
    r"^/_matrix/client/(r0|v3|unstable)/.*/account_data",
    r"^/_matrix/client/(r0|v3|unstable)/rooms/.*/receipt",
    r"^/_matrix/client/(r0|v3|unstable)/rooms/.*/read_markers",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/presence/",
]
# synapse.app.generic_worker's sync endpoints: balanced by access token, as the docs recommend.
SYNC_PATHS = [
    r"^/_matrix/client/(r0|v3)/sync$",
    r"^/_matrix/client/(api/v1|r0|v3)/events$",
    r"^/_matrix/client/(api/v1|r0|v3)/initialSync$",
    r"^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$",
]
# Pagination: any generic worker, but each room always on the same one.
ROOM_STICKY_PATHS = [r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/messages$"]
# GET only.
GET_ONLY_PATHS = [r"^/_matrix/client/(api/v1|r0|v3|unstable)/pushrules/"]
# The rest of synapse.app.generic_worker's client endpoints (no SSO, no federation here):
# round robin between the generic workers.
GENERIC_CLIENT_PATHS = [
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/context/.*$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/members$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state$",
    r"^/_matrix/client/v1/rooms/.*/hierarchy$",
    r"^/_matrix/client/(v1|unstable)/rooms/.*/relations/",
    r"^/_matrix/client/v1/rooms/.*/threads$",
    r"^/_matrix/client/unstable/im.nheko.summary/rooms/.*/summary$",
    r"^/_matrix/client/(r0|v3|unstable)/account/3pid$",
    r"^/_matrix/client/(r0|v3|unstable)/account/whoami$",
    r"^/_matrix/client/(r0|v3|unstable)/devices$",
    r"^/_matrix/client/versions$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/event/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$",
    r"^/_matrix/client/v1/rooms/.*/timestamp_to_event$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/search$",
    r"^/_matrix/client/(r0|v3|unstable)/keys/query$",
    r"^/_matrix/client/(r0|v3|unstable)/keys/changes$",
    r"^/_matrix/client/(r0|v3|unstable)/keys/claim$",
    r"^/_matrix/client/(r0|v3|unstable)/room_keys/",
    r"^/_matrix/client/(r0|v3|unstable)/keys/upload",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/login$",
    r"^/_matrix/client/(r0|v3|unstable)/register$",
    r"^/_matrix/client/v1/register/m.login.registration_token/validity$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/redact",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/send",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/(join|invite|leave|ban|unban|kick)$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/join/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/profile/",
    r"^/_matrix/client/(r0|v3|unstable)/user_directory/search$",
]


def nginx_routes(listen_port: int, main_port: int, generic_ports: list[int], writer_port: int) -> str:
    """The `http`-context nginx config in front of the workers shape."""
    def upstream(name: str, ports: list[int], balance: str = "") -> list[str]:
        return ([f"upstream synapse_{name} {{"] + ([f"    {balance};"] if balance else [])
                + [f"    server 127.0.0.1:{port};" for port in ports] + ["    keepalive 32;", "}", ""])

    lines = [
        "# The benchmark's Synapse workers shape (bench/synapse.py), routed as Synapse's worker docs say.",
        "map $http_authorization $synapse_token_key {",
        '    "" $arg_access_token;',
        "    default $http_authorization;",
        "}",
        "map $request_uri $synapse_room_key {",
        '    "~^/_matrix/client/[^/]+/rooms/(?<synapse_room>[^/?]+)" $synapse_room;',
        "    default $request_uri;",
        "}",
        "",
        *upstream("main", [main_port]),
        *upstream("sync", generic_ports, "hash $synapse_token_key consistent"),
        *upstream("rooms", generic_ports, "hash $synapse_room_key consistent"),
        *upstream("generic", generic_ports),
        *upstream("stream_writer", [writer_port]),
        "server {",
        f"    listen 127.0.0.1:{listen_port};",
        "    server_name _;",
        "    client_max_body_size 50m;",
        "    client_body_buffer_size 50m;",
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        "    proxy_set_header Host $host;",
        "    proxy_set_header X-Forwarded-For $remote_addr;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_read_timeout 330s;",
        "    proxy_buffering off;",
        "",
        "    location ^~ /_synapse/replication/ { return 404; }",
        "",
    ]
    # nginx tries regex locations in the order written: stream writers before the generic list,
    # which also names some of their endpoints.
    for paths, target in ((STREAM_WRITER_PATHS, "stream_writer"), (SYNC_PATHS, "sync"),
                          (ROOM_STICKY_PATHS, "rooms"), (GENERIC_CLIENT_PATHS, "generic")):
        lines.append(f"    # -> {target}")
        lines += [f'    location ~ "{path}" {{ proxy_pass http://synapse_{target}; }}' for path in paths]
    for path in GET_ONLY_PATHS:
        lines += [f'    location ~ "{path}" {{', "        set $synapse_target synapse_main;",
                  '        if ($request_method = GET) { set $synapse_target synapse_generic; }',
                  "        proxy_pass http://$synapse_target;", "    }"]
    lines += ["    location / { proxy_pass http://synapse_main; }", "}", ""]
    return "\n".join(lines)


# --- the shapes ----------------------------------------------------------------------------------


def start_synapse(shape: str, workdir: str, venv: str = DEFAULT_VENV, log_level: str = "WARNING",
                  parallel_workers: bool = False) -> RunningShape:
    """Start Synapse in `shape` ("single" or "workers") with its files under `workdir`, on a
    fresh PostgreSQL database. Workers start one after another (each start-up time then
    measures one process alone) unless `parallel_workers`."""
    if shape not in ("single", "workers"):
        raise ValueError(f"unknown shape {shape!r}: single or workers")
    python = ensure_synapse_venv(venv)
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    server_name = f"synapse-{secrets.token_hex(4)}.bench"
    database = create_pg_database()
    processes: list[_Process] = []
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        # nginx first, then the workers, main last.
        _stop_processes(list(reversed(processes)))
        drop_pg_database(database)

    try:
        main_port = free_port()
        url = f"http://127.0.0.1:{main_port}"
        shared: dict[str, Any] = {
            "server_name": server_name,
            "public_baseurl": url + "/",
            "listeners": [_listener(main_port, "client")],
            "database": {"name": "psycopg2", "args": {**PG_ARGS, "dbname": database}},
            "log_config": _log_config(os.path.join(workdir, "main.log.yaml"), os.path.join(workdir, "main.log"),
                                      log_level),
            "signing_key_path": os.path.join(workdir, "signing.key"),
            "media_store_path": os.path.join(workdir, "media_store"),
            "macaroon_secret_key": secrets.token_hex(32),
            "form_secret": secrets.token_hex(32),
            "registration_shared_secret": secrets.token_hex(16),
            "report_stats": False,
            "enable_registration": True,
            "enable_registration_without_verification": True,
            # As our own server's benchmark config: registration and login measure the server,
            # not bcrypt.
            "bcrypt_rounds": 4,
            "presence": {"enabled": True},
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "url_preview_enabled": False,
            "enable_metrics": False,
            **_no_rate_limits(),
        }
        workers: dict[str, dict[str, Any]] = {}
        if shape == "workers":
            replication = {name: free_port() for name in ("main", "event_persister1", "stream_writer1")}
            client = {name: free_port() for name in ("generic_worker1", "generic_worker2", "stream_writer1")}
            shared["listeners"].append(_listener(replication["main"], "replication"))
            shared.update({
                "redis": {"enabled": True, "host": REDIS_HOST, "port": REDIS_PORT, "dbid": REDIS_DBID},
                "worker_replication_secret": secrets.token_hex(16),
                "instance_map": {name: {"host": "127.0.0.1", "port": port} for name, port in replication.items()},
                "stream_writers": {"events": ["event_persister1"],
                                   **{stream: ["stream_writer1"]
                                      for stream in ("typing", "to_device", "account_data", "receipts", "presence")}},
            })
            for name in ("event_persister1", "stream_writer1", "generic_worker1", "generic_worker2"):
                listeners = []
                if name in client:
                    listeners.append(_listener(client[name], "client"))
                if name in replication:
                    listeners.append(_listener(replication[name], "replication"))
                workers[name] = {
                    "worker_app": "synapse.app.generic_worker",
                    "worker_name": name,
                    "worker_listeners": listeners,
                    "worker_log_config": _log_config(os.path.join(workdir, f"{name}.log.yaml"),
                                                     os.path.join(workdir, f"{name}.log"), log_level),
                }
        shared_path = _write_yaml(os.path.join(workdir, "homeserver.yaml"), shared)

        if not os.path.exists(shared["signing_key_path"]):
            subprocess.run([python, "-m", "synapse.app.homeserver", "-c", shared_path, "--generate-keys"],
                           check=True, capture_output=True, cwd=workdir)

        main = _Process("main", [python, "-m", "synapse.app.homeserver", "-c", shared_path],
                        f"http://127.0.0.1:{main_port}/health", workdir)
        processes.append(main)
        main.wait_healthy(main.spawn())
        _log(f"main healthy after {main.startup:.1f}s")

        nginx_port = 0
        if shape == "workers":
            batch: list[tuple[_Process, float]] = []
            for name, config in workers.items():
                path = _write_yaml(os.path.join(workdir, f"{name}.yaml"), config)
                health_port = config["worker_listeners"][0]["port"]
                process = _Process(name, [python, "-m", "synapse.app.generic_worker", "-c", shared_path, "-c", path],
                                   f"http://127.0.0.1:{health_port}/health", workdir)
                processes.append(process)
                batch.append((process, process.spawn()))
                if not parallel_workers:
                    process.wait_healthy(batch[-1][1])
                    _log(f"{name} healthy after {process.startup:.1f}s")
            if parallel_workers:
                for process, started in batch:
                    process.wait_healthy(started)
                    _log(f"{process.name} healthy after {process.startup:.1f}s")

            nginx_dir = os.path.join(workdir, "nginx")
            os.makedirs(nginx_dir, exist_ok=True)
            nginx_port = free_port()
            routes = os.path.join(nginx_dir, "synapse.conf")
            with open(routes, "w") as f:
                f.write(nginx_routes(nginx_port, main_port, [client["generic_worker1"], client["generic_worker2"]],
                                     client["stream_writer1"]))
            conf = os.path.join(nginx_dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(nginx_wrapper(nginx_dir, routes))
            url = f"http://127.0.0.1:{nginx_port}"
            nginx = _Process("nginx", [NGINX, "-c", conf, "-g", "daemon off;"], url + "/health", nginx_dir)
            processes.append(nginx)
            nginx.wait_healthy(nginx.spawn(), timeout=20)
    except BaseException:
        stop()
        raise

    return RunningShape(
        server="synapse", shape=shape, url=url, server_name=server_name,
        pids={p.name: p.pid for p in processes},
        startup_seconds={p.name: p.startup for p in processes},
        stop=stop,
    )


# --- manual use ----------------------------------------------------------------------------------


def smoke(url: str) -> None:
    """Register, create a room, send a message and see it come back in /sync."""
    session = requests.Session()
    username = "bench" + secrets.token_hex(3)
    reply = session.post(f"{url}/_matrix/client/v3/register", timeout=30,
                         json={"username": username, "password": "bench password", "auth": {"type": "m.login.dummy"}})
    reply.raise_for_status()
    session.headers["Authorization"] = "Bearer " + reply.json()["access_token"]
    _log(f"registered {reply.json()['user_id']}")
    reply = session.post(f"{url}/_matrix/client/v3/createRoom", json={"name": "bench"}, timeout=30)
    reply.raise_for_status()
    room_id = reply.json()["room_id"]
    body = "hello from the synapse bench " + secrets.token_hex(4)
    reply = session.put(f"{url}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/txn1",
                        json={"msgtype": "m.text", "body": body}, timeout=30)
    reply.raise_for_status()
    event_id = reply.json()["event_id"]
    _log(f"sent {event_id} in {room_id}")
    deadline = time.monotonic() + 30
    since = None
    while time.monotonic() < deadline:
        params = {"timeout": "5000", **({"since": since} if since else {})}
        reply = session.get(f"{url}/_matrix/client/v3/sync", params=params, timeout=40)
        reply.raise_for_status()
        data = reply.json()
        since = data["next_batch"]
        room = data.get("rooms", {}).get("join", {}).get(room_id, {})
        if any(e.get("event_id") == event_id and e["content"].get("body") == body
               for e in room.get("timeline", {}).get("events", [])):
            _log("/sync returned the message")
            return
    raise RuntimeError("the message did not come back in /sync")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shape", choices=["single", "workers"])
    parser.add_argument("--workdir", help=f"default: a new directory under {DEFAULT_WORK}")
    parser.add_argument("--venv", default=DEFAULT_VENV)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--parallel-workers", action="store_true", help="start the workers all at once")
    args = parser.parse_args()
    workdir = args.workdir or os.path.join(DEFAULT_WORK, f"synapse-{args.shape}-{secrets.token_hex(3)}")
    started = time.monotonic()
    running = start_synapse(args.shape, workdir, venv=args.venv, log_level=args.log_level,
                            parallel_workers=args.parallel_workers)
    try:
        total = time.monotonic() - started
        print(f"url:         {running.url}")
        print(f"server_name: {running.server_name}")
        print(f"workdir:     {workdir}")
        print(f"started in   {total:.1f}s (venv check, database, key and every process)")
        smoke(running.url)
        print(f"{'process':<18}{'pid':>8}{'start-up s':>12}{'RSS MiB':>10}")
        for name, pid in running.pids.items():
            rss = vmrss_kb(pid)
            print(f"{name:<18}{pid:>8}{running.startup_seconds[name]:>12.2f}"
                  f"{(rss / 1024 if rss is not None else float('nan')):>10.1f}")
        total_rss = sum(vmrss_kb(pid) or 0 for name, pid in running.pids.items() if name != "nginx")
        print(f"Synapse RSS total: {total_rss / 1024:.1f} MiB")
    finally:
        running.stop()
        _log("stopped")


if __name__ == "__main__":
    main()
