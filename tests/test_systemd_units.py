"""The systemd units in contrib/systemd: `systemd-analyze verify` accepts them (on copies whose
ExecStart names this checkout's Python, as the real paths do not exist here), they have the
dependencies `docs/synctl_systemd.md` describes, and their ExecStart lines, run as systemd
would run them (NOTIFY_SOCKET set), start a main process and a worker that say READY=1 only
once they answer /health, and STOPPING=1 on SIGTERM.

systemd itself cannot run here (PID 1 is not systemd), so `systemctl` is not exercised."""

import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from tests.harness import (
    REDIS_HOST,
    REDIS_PORT,
    base_config,
    database_config,
    free_port,
    worker_config,
)

UNITS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "contrib", "systemd"
)
UNITS = ["homeserver.service", "homeserver-worker@.service", "homeserver.target"]
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
# The paths the units use, as docs/synctl_systemd.md lists them.
VENV_PYTHON = "/opt/homeserver/env/bin/python"
CONFIG_DIR = "/etc/homeserver/"
DATA_DIR = "/var/lib/homeserver"


def parse_unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    with open(os.path.join(UNITS_DIR, name)) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_units_declare_the_documented_dependencies() -> None:
    main = parse_unit("homeserver.service")
    assert main["Service"]["Type"] == ["notify"]
    assert main["Service"]["Restart"] == ["on-failure"]
    assert main["Unit"]["PartOf"] == ["homeserver.target"]
    assert main["Install"]["WantedBy"] == ["homeserver.target"]
    assert main["Service"]["ExecStart"] == [
        f"{VENV_PYTHON} -m homeserver.app.homeserver -c {CONFIG_DIR}homeserver.yaml"
    ]

    worker = parse_unit("homeserver-worker@.service")
    assert worker["Service"]["Type"] == ["notify"]
    assert worker["Service"]["Restart"] == ["on-failure"]
    assert worker["Unit"]["After"] == ["homeserver.service"]
    assert worker["Unit"]["Requires"] == ["homeserver.service"]
    assert worker["Unit"]["PartOf"] == ["homeserver.target"]
    assert worker["Install"]["WantedBy"] == ["homeserver.target"]
    assert worker["Service"]["ExecStart"] == [
        f"{VENV_PYTHON} -m homeserver.app.generic_worker -c {CONFIG_DIR}homeserver.yaml -c {CONFIG_DIR}workers/%i.yaml"
    ]

    target = parse_unit("homeserver.target")
    assert target["Install"]["WantedBy"] == ["multi-user.target"]


def _local_copies(directory: str) -> str:
    """Copies of the units whose ExecStart names this checkout's Python (which exists)."""
    for name in UNITS:
        with open(os.path.join(UNITS_DIR, name)) as f:
            text = f.read()
        with open(os.path.join(directory, name), "w") as f:
            f.write(text.replace(VENV_PYTHON, sys.executable))
    return directory


def _verify(directory: str, *units: str) -> subprocess.CompletedProcess[str]:
    # --man=no: the Documentation= man pages are not installed in a container.
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", *(os.path.join(directory, u) for u in units)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(
    not os.access(SYSTEMD_ANALYZE, os.X_OK), reason=f"{SYSTEMD_ANALYZE} is not installed"
)
def test_systemd_analyze_verify_accepts_the_units() -> None:
    with tempfile.TemporaryDirectory(prefix="hs-units-") as directory:
        _local_copies(directory)
        # A worker instance is verified through the template, with the units it depends on
        # found next to it.
        result = _verify(
            directory,
            "homeserver.service",
            "homeserver.target",
            "homeserver-worker@worker1.service",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        # It also prints (without failing) what it ignores, such as unknown keys: none here.
        assert result.stdout + result.stderr == ""

    # The check is real: the units as shipped name a Python that does not exist here.
    result = _verify(UNITS_DIR, "homeserver.service")
    assert result.returncode != 0
    assert f"Command {VENV_PYTHON} is not executable" in result.stderr


class NotifySocket:
    """A unix datagram socket standing in for systemd's notification socket."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def receive(self, timeout: float) -> str | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()


def _exec_start(unit: str, directory: str, instance: str = "") -> list[str]:
    """The unit's ExecStart, with the installation's paths pointing into `directory`."""
    [line] = parse_unit(unit)["Service"]["ExecStart"]
    line = (
        line.replace(VENV_PYTHON, sys.executable)
        .replace(CONFIG_DIR, directory + "/")
        .replace("%i", instance)
    )
    return shlex.split(line)


def _start_and_wait_ready(
    command: list[str], directory: str, notify: NotifySocket, port: int, pid_file: str, log: Any
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFY_SOCKET": notify.path}
    process = subprocess.Popen(
        command, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    message = notify.receive(timeout=45)
    assert message == "READY=1", f"no READY=1 (got {message!r}); exit status {process.poll()}"
    # READY=1 comes once the process serves: /health answers at the first try, and the pid
    # file has been written.
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    with open(pid_file) as f:
        assert int(f.read()) == process.pid
    return process


def _stop(process: subprocess.Popen[bytes], notify: NotifySocket) -> None:
    process.send_signal(signal.SIGTERM)
    assert notify.receive(timeout=10) == "STOPPING=1"
    assert process.wait(20) == 0


@pytest.fixture
def directory() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="hs-units-") as path:
        yield path


def test_exec_start_lines_notify_ready_only_once_serving(directory: str) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    sockets: list[NotifySocket] = []
    with (
        database_config("postgres", directory) as db,
        open(os.path.join(directory, "processes.log"), "ab") as log,
    ):
        try:
            main_port, worker_port = free_port(), free_port()
            shared = base_config(
                directory, db, main_port, server_name=f"units-{secrets.token_hex(4)}.test"
            )
            shared["redis"] = {"enabled": True, "host": REDIS_HOST, "port": REDIS_PORT}
            shared["instance_map"] = {"main": {"host": "127.0.0.1", "port": main_port}}
            with open(os.path.join(directory, "homeserver.yaml"), "w") as f:
                yaml.safe_dump(shared, f)
            os.makedirs(os.path.join(directory, "workers"))
            worker = worker_config("worker1", worker_port)
            worker["worker_pid_file"] = os.path.join(directory, "worker1.pid")
            with open(os.path.join(directory, "workers", "worker1.yaml"), "w") as f:
                yaml.safe_dump(worker, f)

            main_notify = NotifySocket(os.path.join(directory, "notify-main"))
            worker_notify = NotifySocket(os.path.join(directory, "notify-worker1"))
            sockets += [main_notify, worker_notify]
            main = _start_and_wait_ready(
                _exec_start("homeserver.service", directory),
                directory,
                main_notify,
                main_port,
                shared["pid_file"],
                log,
            )
            processes.append(main)
            worker_process = _start_and_wait_ready(
                _exec_start("homeserver-worker@.service", directory, "worker1"),
                directory,
                worker_notify,
                worker_port,
                worker["worker_pid_file"],
                log,
            )
            processes.append(worker_process)

            # Stopped in the order systemd uses (the worker is After= the main process).
            _stop(worker_process, worker_notify)
            _stop(main, main_notify)
            assert not os.path.exists(shared["pid_file"]) and not os.path.exists(
                worker["worker_pid_file"]
            )
        except BaseException:
            log.flush()
            with open(os.path.join(directory, "processes.log"), errors="replace") as f:
                print(f.read()[-5000:])
            raise
        finally:
            for process in reversed(processes):
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
            for notify in sockets:
                notify.close()


def test_no_ready_when_start_up_fails(directory: str) -> None:
    """A process that cannot serve (its port is taken) exits 1 without ever saying READY=1,
    so systemd marks the start as failed instead of running a broken unit."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = base_config(
            directory,
            {"name": "sqlite3", "args": {"database": os.path.join(directory, "hs.db")}},
            port,
        )
        with open(os.path.join(directory, "homeserver.yaml"), "w") as f:
            yaml.safe_dump(config, f)
        notify = NotifySocket(os.path.join(directory, "notify"))
        try:
            result = subprocess.run(
                _exec_start("homeserver.service", directory),
                cwd=directory,
                env={**os.environ, "NOTIFY_SOCKET": notify.path},
                capture_output=True,
                text=True,
                timeout=45,
            )
            assert result.returncode == 1
            assert f"Error: cannot listen on 127.0.0.1:{port}" in result.stderr
            assert notify.receive(timeout=0.5) is None
            assert not os.path.exists(config["pid_file"])
        finally:
            notify.close()
