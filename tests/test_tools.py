"""The admin tools on deployments shaped like the worker documentation's examples:
`homeserver routes` writes nginx and haproxy configs that the real programs accept and that
route requests to the right process, `routes which` names the processes, and `check-config`
reports each cross-file mistake with its file and key (and passes a good deployment)."""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from homeserver.config.key import write_new_signing_key
from tests.harness import (
    Client,
    ServerProcess,
    free_port,
    multi_process_deployment,
    nginx_wrapper,
    worker_config,
)
from tests.matrix_helpers import enc

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def homeserver_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeserver.tools.cli", *args], capture_output=True, text=True, timeout=60)


def _write(path: str, data: dict[str, Any]) -> str:
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def _listener(port: int, *resources: str, address: str = "127.0.0.1") -> dict[str, Any]:
    return {"port": port, "type": "http", "bind_addresses": [address], "resources": [{"names": list(resources)}]}


def _worker(directory: str, name: str, app: str = "synapse.app.generic_worker", *listeners: dict[str, Any]) -> str:
    return _write(os.path.join(directory, "workers", f"{name}.yaml"),
                  {"worker_app": app, "worker_name": name, "worker_listeners": list(listeners)})


@pytest.fixture
def layout() -> Iterator[str]:
    """The documentation's example: main, two client workers, an event persister and a
    writer of typing, to-device, account data, receipts and presence."""
    with tempfile.TemporaryDirectory(prefix="hs-tools-") as directory:
        os.makedirs(os.path.join(directory, "workers"))
        write_new_signing_key(os.path.join(directory, "signing.key"))
        _write(os.path.join(directory, "homeserver.yaml"), {
            "server_name": "example.test",
            "signing_key_path": os.path.join(directory, "signing.key"),
            "database": {"name": "psycopg2", "args": {"dbname": "synapse"}},
            "redis": {"enabled": True},
            "worker_replication_secret": "secret",
            "listeners": [_listener(8008, "client"), _listener(9093, "replication")],
            "instance_map": {"main": {"host": "127.0.0.1", "port": 9093},
                             "persister1": {"host": "127.0.0.1", "port": 9094},
                             "writer1": {"host": "127.0.0.1", "port": 9095}},
            "stream_writers": {"events": "persister1", "typing": "writer1", "to_device": "writer1",
                               "account_data": "writer1", "receipts": "writer1", "presence": "writer1"},
        })
        _worker(directory, "worker1", "synapse.app.generic_worker", _listener(8081, "client"))
        _worker(directory, "worker2", "synapse.app.generic_worker", _listener(8082, "client"))
        _worker(directory, "persister1", "synapse.app.generic_worker", _listener(9094, "replication"))
        _worker(directory, "writer1", "synapse.app.generic_worker", _listener(8085, "client"), _listener(9095, "replication"))
        yield directory


def _deployment_args(directory: str) -> list[str]:
    return ["-c", os.path.join(directory, "homeserver.yaml"), "-a", os.path.join(directory, "workers")]


def _nginx_wrapper(directory: str, included: str) -> str:
    return _write_text(os.path.join(directory, "nginx.conf"), nginx_wrapper(directory, included))


def _write_text(path: str, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return path


def test_generated_nginx_config_is_accepted_by_nginx(layout: str) -> None:
    output = os.path.join(layout, "matrix.conf")
    result = homeserver_cli("routes", "--format", "nginx", "--listen", "127.0.0.1:8443", "-o", output, *_deployment_args(layout))
    assert result.returncode == 0, result.stderr
    text = open(output).read()
    assert "location ^~ /_synapse/replication/ { return 404; }" in text
    assert "hash $hs_room_key consistent;" in text and "hash $hs_token_key consistent;" in text
    check = subprocess.run([NGINX, "-t", "-c", _nginx_wrapper(layout, output)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


def test_generated_haproxy_config_is_accepted_by_haproxy(layout: str) -> None:
    output = os.path.join(layout, "haproxy.cfg")
    result = homeserver_cli("routes", "--format", "haproxy", "--listen", "127.0.0.1:8443", "-o", output, *_deployment_args(layout))
    assert result.returncode == 0, result.stderr
    check = subprocess.run([HAPROXY, "-c", "-f", output], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    text = open(output).read()
    assert "http-request deny deny_status 404 if hs_replication or hs_metrics" in text
    assert "balance uri depth 5" in text


@pytest.mark.parametrize(("path", "method", "endpoint", "processes"), [
    # The generic pool leaves out the stream writer (it keeps to its streams).
    ("/_matrix/client/v3/sync", "GET", "sync", ["worker1", "worker2"]),
    ("/_matrix/client/v3/rooms/!r:example.test/messages", "GET", "messages", ["worker1", "worker2"]),
    ("/_matrix/client/v3/rooms/!r:example.test/typing/@a:example.test", "PUT", "typing", ["writer1"]),
    ("/_matrix/client/v3/user/@a:example.test/account_data/x", "GET", "account_data", ["worker1", "worker2"]),
    ("/_matrix/client/v3/user/@a:example.test/account_data/x", "PUT", "account_data_put", ["writer1"]),
    ("/_matrix/client/v3/rooms/!r:example.test/upgrade", "POST", "upgrade", ["master"]),
    ("/_matrix/client/v3/keys/upload", "POST", "keys_upload", ["master"]),
])
def test_routes_which_names_the_processes(layout: str, path: str, method: str, endpoint: str, processes: list[str]) -> None:
    result = homeserver_cli("routes", "which", path, "--method", method, *_deployment_args(layout))
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert f"-> {endpoint} [" in first
    assert [line.split()[0] for line in rest] == processes


def test_check_config_passes_a_good_deployment(layout: str) -> None:
    result = homeserver_cli("check-config", *_deployment_args(layout))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 5 processes")


def _shared(layout: str) -> dict[str, Any]:
    with open(os.path.join(layout, "homeserver.yaml")) as f:
        return yaml.safe_load(f)  # type: ignore[no-any-return]


def test_check_config_reports_every_mistake_with_file_and_key(layout: str) -> None:
    shared_path = os.path.join(layout, "homeserver.yaml")
    shared = _shared(layout)
    del shared["worker_replication_secret"]
    shared["listeners"][1]["bind_addresses"] = ["0.0.0.0"]  # replication reachable, no secret
    shared["pusher_instances"] = ["pusher9"]  # not configured
    _write(shared_path, shared)
    workers = os.path.join(layout, "workers")
    _worker(layout, "clash", "synapse.app.generic_worker", _listener(8081, "client"))  # worker1's port
    _write(os.path.join(workers, "worker9-copy.yaml"), {  # a name used twice
        "worker_app": "synapse.app.generic_worker", "worker_name": "worker1", "worker_listeners": [_listener(8091, "client")]})
    _worker(layout, "userdir", "synapse.app.user_dir", _listener(8092, "client"))  # needs update_user_directory_from_worker
    _worker(layout, "sqlite", "synapse.app.generic_worker", _listener(8093, "client"))
    with open(os.path.join(workers, "sqlite.yaml"), "a") as f:
        f.write("database: {name: sqlite3, args: {database: /tmp/x.db}}\n")
    result = homeserver_cli("check-config", *_deployment_args(layout))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    expected = [
        (f"{workers}/sqlite.yaml: database.name:", "PostgreSQL"),
        (f"{workers}/worker9-copy.yaml: worker_name:", "already the name of"),
        (f"{shared_path}: update_user_directory_from_worker:", "userdir"),
        (f"{shared_path}: pusher_instances[0]:", "pusher9"),
        (f"{workers}/worker1.yaml: listeners:", "port 8081 is also used by clash"),
        (f"{shared_path}: listeners:", "worker_replication_secret"),
    ]
    for prefix, detail in expected:
        assert any(line.startswith(prefix) and detail in line for line in lines), (prefix, lines)
    assert len(lines) == len(expected), "\n".join(lines)


def test_check_config_reports_a_writer_missing_from_instance_map(layout: str) -> None:
    shared = _shared(layout)
    shared["stream_writers"]["receipts"] = ["writer1", "writer2"]
    _write(os.path.join(layout, "homeserver.yaml"), shared)
    result = homeserver_cli("check-config", *_deployment_args(layout))
    assert result.returncode == 1
    assert "homeserver.yaml: stream_writers.receipts:" in result.stderr and "instance_map" in result.stderr


# --- through real nginx -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def behind_nginx() -> Iterator[tuple[str, list[ServerProcess]]]:
    """A real deployment (main, worker1, writer1 writing typing and account data) behind a
    real nginx running the generated config."""
    server_name = f"nginx-{secrets.token_hex(4)}.test"
    ports = {name: free_port() for name in ("worker1", "writer1", "writer1_replication")}
    writer = worker_config("writer1", ports["writer1"])
    writer["worker_listeners"].append(_listener(ports["writer1_replication"], "replication"))
    with multi_process_deployment(
        [worker_config("worker1", ports["worker1"], resources=("client", "metrics")), writer], server_name,
        worker_replication_secret="nginx-secret",
        instance_map={"writer1": {"host": "127.0.0.1", "port": ports["writer1_replication"]}},
        stream_writers={"typing": "writer1", "account_data": "writer1"},
    ) as processes:
        directory = processes[0].directory
        listen = free_port()
        conf = os.path.join(directory, "matrix.conf")
        worker_paths = [p.config_paths[-1] for p in processes[1:]]
        args = ["routes", "--format", "nginx", "--listen", f"127.0.0.1:{listen}", "-o", conf, "-c", processes[0].config_paths[0]]
        for path in worker_paths:
            args += ["-a", path]
        result = homeserver_cli(*args)
        assert result.returncode == 0, result.stderr
        nginx = subprocess.Popen([NGINX, "-c", _nginx_wrapper(directory, conf), "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{listen}"
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    requests.get(url + "/health", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.05)
            yield url, processes
        finally:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()


def test_requests_through_nginx_reach_the_right_process(behind_nginx: tuple[str, list[ServerProcess]]) -> None:
    url, (main, worker1, writer1) = behind_nginx
    alice = Client(url)
    alice.register(f"alice{secrets.token_hex(3)}")
    room = alice.post("createRoom", {}).json()["room_id"]
    assert alice.put(f"rooms/{enc(room)}/send/m.room.message/1", {"msgtype": "m.text", "body": "hi"}).status_code == 200
    assert alice.put(f"user/{enc(alice.user_id)}/account_data/org.example", {"a": 1}).status_code == 200
    assert alice.put(f"rooms/{enc(room)}/typing/{enc(alice.user_id)}", {"typing": True, "timeout": 5000}).status_code == 200
    body = alice.get("sync", params={"timeout": 0}).json()
    assert {"type": "org.example", "content": {"a": 1}} in body["account_data"]["events"]
    # Straight to the right process: nothing had to be forwarded by the misroute guard.
    metrics = requests.get(worker1.url + "/_synapse/metrics", timeout=5).text
    assert "homeserver_forwarded_requests_total{" not in metrics
    # /sync is served by a worker (which one depends on the token's hash), never main.
    assert "GET /_matrix/client/v3/sync" in worker1.log() + writer1.log()
    assert "GET /_matrix/client/v3/sync" not in main.log()
    assert "PUT /_matrix/client/v3/user/" in writer1.log() and "/account_data/org.example" in writer1.log()
    assert "/typing/" in writer1.log()
    # Replication is never reachable through the proxy.
    assert requests.post(url + "/_synapse/replication/persist_event/x", json={}, timeout=5).status_code == 404


def test_the_documentation_example_layout(tmp_path: Any) -> None:
    """Config files shaped like the worker documentation's own examples: the legacy
    `worker_replication_host`/`_http_port`, `bind_address`, a client+federation worker, two
    event persisters with only a replication listener, a background worker without listeners."""
    write_new_signing_key(str(tmp_path / "signing.key"))
    workers = tmp_path / "workers"
    workers.mkdir()
    _write(str(tmp_path / "homeserver.yaml"), {
        "server_name": "example.test", "signing_key_path": str(tmp_path / "signing.key"),
        "database": {"name": "psycopg2", "args": {"dbname": "synapse"}},
        "listeners": [_listener(8008, "client"),
                      {"port": 9093, "bind_address": "127.0.0.1", "type": "http", "resources": [{"names": ["replication"]}]}],
        "worker_replication_secret": "s", "redis": {"enabled": True},
        "instance_map": {"event_persister1": {"host": "localhost", "port": 8034},
                         "event_persister2": {"host": "localhost", "port": 8035}},
        "stream_writers": {"events": ["event_persister1", "event_persister2"]},
        "run_background_tasks_on": "background_worker",
    })
    legacy = {"worker_replication_host": "127.0.0.1", "worker_replication_http_port": 9093,
              "worker_log_config": "/etc/matrix-synapse/worker-log.yaml"}
    _write(str(workers / "generic_worker1.yaml"), {
        "worker_app": "synapse.app.generic_worker", "worker_name": "generic_worker1", **legacy,
        "worker_listeners": [{"type": "http", "port": 8083, "x_forwarded": True, "resources": [{"names": ["client", "federation"]}]}]})
    for name, port in (("event_persister1", 8034), ("event_persister2", 8035)):
        _write(str(workers / f"{name}.yaml"), {"worker_app": "synapse.app.generic_worker", "worker_name": name, **legacy,
                                               "worker_listeners": [{"type": "http", "port": port, "resources": [{"names": ["replication"]}]}]})
    _write(str(workers / "background_worker.yaml"), {"worker_app": "synapse.app.generic_worker", "worker_name": "background_worker", **legacy})
    args = ["-c", str(tmp_path / "homeserver.yaml"), "-a", str(workers)]
    check = homeserver_cli("check-config", *args)
    assert check.returncode == 0, check.stdout + check.stderr
    routes = homeserver_cli("routes", "--format", "nginx", "-o", str(tmp_path / "matrix.conf"), *args)
    assert routes.returncode == 0, routes.stderr
    nginx = subprocess.run([NGINX, "-t", "-c", _nginx_wrapper(str(tmp_path), str(tmp_path / "matrix.conf"))],
                           capture_output=True, text=True, timeout=30)
    assert nginx.returncode == 0, nginx.stderr
    which = homeserver_cli("routes", "which", "/_matrix/client/v3/sync", *args)
    assert [line.split()[0] for line in which.stdout.splitlines()[1:]] == ["generic_worker1"]
    sending = homeserver_cli("routes", "which", "/_matrix/client/v3/rooms/!r:example.test/send/m.room.message/1",
                             "--method", "PUT", *args)
    assert [line.split()[0] for line in sending.stdout.splitlines()[1:]] == ["generic_worker1"]
