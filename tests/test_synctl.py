"""Running in the background and `synctl`, with real processes on real PostgreSQL and Redis:
`daemonize: true` / `worker_daemonize: true` detach and return once serving (or with the
one-line error), and `synctl` starts a main process and two workers from a deployment
directory, reports them, restarts them with new pids, stops them (workers first, SIGKILL
after the timeout), copes with stale and foreign pid files, and fails with one line on a
config mistake."""

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import yaml

from homeserver.tools.synctl import running_command
from tests.harness import (
    REDIS_HOST,
    REDIS_PORT,
    base_config,
    database_config,
    free_port,
    worker_config,
)

MAIN_MODULE = "homeserver.app.homeserver"
WORKER_MODULE = "homeserver.app.generic_worker"


def _write(path: str, data: dict[str, Any]) -> str:
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def _log_config(directory: str, name: str) -> str:
    """A logging config writing the process's log to NAME.log in the directory."""
    return _write(
        os.path.join(directory, f"{name}-logging.yaml"),
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "filename": os.path.join(directory, f"{name}.log"),
                    "formatter": "plain",
                }
            },
            "root": {"level": "INFO", "handlers": ["file"]},
        },
    )


@dataclass
class Layout:
    """A deployment directory: `homeserver.yaml`, `workers/NAME.yaml`, pid and log files."""

    directory: str
    config: str
    workers_dir: str
    ports: dict[str, int]
    pid_files: dict[str, str]
    # Every pid seen, killed at the end if still a homeserver process.
    pids: set[int] = field(default_factory=set)

    def synctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "homeserver.tools.synctl", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.directory,
        )

    def pid(self, name: str) -> int:
        with open(self.pid_files[name]) as f:
            pid = int(f.read().strip())
        self.pids.add(pid)
        return pid

    def log(self) -> str:
        out = []
        for entry in sorted(os.listdir(self.directory)):
            if entry.endswith(".log"):
                with open(os.path.join(self.directory, entry), errors="replace") as f:
                    out.append(f"===== {entry} =====\n{f.read()[-3000:]}")
        return "\n".join(out)

    def health(self, name: str) -> int:
        return requests.get(f"http://127.0.0.1:{self.ports[name]}/health", timeout=5).status_code


def _kill_leftovers(layout: Layout) -> None:
    for name, path in layout.pid_files.items():
        if os.path.exists(path):
            try:
                layout.pid(name)
            except ValueError:
                pass
    for pid in layout.pids:
        command = running_command(pid)
        if command and any("homeserver.app." in part for part in command):
            os.kill(pid, signal.SIGKILL)


def _make_layout(directory: str, db: dict[str, Any], workers: bool = True) -> Layout:
    """Main (writes `events`) and, with `workers`, worker1 (writes `typing`, has a replication
    listener) and worker2 (client only); each with its own pid and log file."""
    ports = {"main": free_port()}
    shared = base_config(
        directory, db, ports["main"], server_name=f"synctl-{secrets.token_hex(4)}.test"
    )
    shared["log_config"] = _log_config(directory, "main")
    pid_files = {"main": shared["pid_file"]}
    workers_dir = os.path.join(directory, "workers")
    os.makedirs(workers_dir)
    if workers:
        ports |= {"worker1": free_port(), "worker2": free_port()}
        shared["redis"] = {"enabled": True, "host": REDIS_HOST, "port": REDIS_PORT}
        shared["instance_map"] = {
            "main": {"host": "127.0.0.1", "port": ports["main"]},
            "worker1": {"host": "127.0.0.1", "port": ports["worker1"]},
        }
        shared["stream_writers"] = {"typing": "worker1"}
        for name, resources in (("worker1", ("client", "replication")), ("worker2", ("client",))):
            worker = worker_config(name, ports[name], resources=resources)
            pid_files[name] = os.path.join(directory, f"{name}.pid")
            worker["worker_pid_file"] = pid_files[name]
            worker["worker_log_config"] = _log_config(directory, name)
            _write(os.path.join(workers_dir, f"{name}.yaml"), worker)
    config = _write(os.path.join(directory, "homeserver.yaml"), shared)
    return Layout(directory, config, workers_dir, ports, pid_files)


@contextmanager
def layout_on(engine: str, workers: bool = True) -> Iterator[Layout]:
    with (
        tempfile.TemporaryDirectory(prefix="hs-synctl-") as directory,
        database_config(engine, directory) as db,
    ):
        layout = _make_layout(directory, db, workers)
        try:
            yield layout
        finally:
            _kill_leftovers(layout)


@pytest.fixture
def deployment() -> Iterator[Layout]:
    """Main and two workers on a fresh PostgreSQL database with Redis, not started."""
    with layout_on("postgres") as layout:
        yield layout


@pytest.fixture
def offline_layout() -> Iterator[Layout]:
    """The same files on a database nobody connects to: for what needs no running server."""
    with tempfile.TemporaryDirectory(prefix="hs-synctl-") as directory:
        layout = _make_layout(directory, {"name": "psycopg2", "args": {"dbname": "never_used"}})
        try:
            yield layout
        finally:
            _kill_leftovers(layout)


def _status_lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {line.split(":", 1)[0]: line for line in result.stdout.splitlines()}


def _assert_running(layout: Layout, names: list[str]) -> dict[str, int]:
    pids = {}
    for name in names:
        pid = layout.pid(name)
        command = running_command(pid)
        assert command is not None, f"{name} (pid {pid}) is not running"
        assert any((MAIN_MODULE if name == "main" else WORKER_MODULE) in part for part in command)
        assert os.getsid(pid) != os.getsid(0), f"{name} did not leave our session"
        assert layout.health(name) == 200
        pids[name] = pid
    return pids


def _assert_gone(pids: dict[str, int]) -> None:
    for name, pid in pids.items():
        assert running_command(pid) is None, f"{name} (pid {pid}) still runs"


# --- daemonize ------------------------------------------------------------------------------


def test_daemonize_returns_once_serving_and_detaches() -> None:
    with layout_on("sqlite", workers=False) as layout:
        with open(layout.config) as f:
            config = yaml.safe_load(f)
        _write(layout.config, {**config, "daemonize": True})
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", MAIN_MODULE, "-c", layout.config],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=layout.directory,
        )
        assert result.returncode == 0, result.stderr + layout.log()
        assert time.monotonic() - started < 30
        pid = layout.pid("main")
        assert result.stdout.strip() == f"master is serving in the background (pid {pid})"
        assert result.stderr == ""
        # Serving as soon as the command returns: no waiting needed.
        assert layout.health("main") == 200
        assert os.getsid(pid) != os.getsid(0)
        with open(f"/proc/{pid}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) != os.getpid()  # not our child
        for fd in (0, 1, 2):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
        # Nothing else inherited from us (such as the pipes capturing the command's output).
        pipes = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                pipes.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except FileNotFoundError:  # closed meanwhile (the server is running)
                pass
        assert sum(target.startswith("pipe:") for target in pipes) <= 2  # the reactor's waker
        with open(os.path.join(layout.directory, "main.log")) as f:
            assert "master serving on 127.0.0.1:" in f.read()
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while running_command(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running_command(pid) is None
        assert not os.path.exists(layout.pid_files["main"])


def test_worker_daemonize_reports_a_start_up_error_in_one_line() -> None:
    """`worker_daemonize: true` on a database the main process never migrated: the error
    (found by the detached process, after the fork) comes back as the command's one line."""
    with layout_on("postgres") as layout:
        worker_file = os.path.join(layout.workers_dir, "worker2.yaml")
        with open(worker_file) as f:
            worker = yaml.safe_load(f)
        _write(worker_file, {**worker, "worker_daemonize": True})
        result = subprocess.run(
            [sys.executable, "-m", WORKER_MODULE, "-c", layout.config, "-c", worker_file],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=layout.directory,
        )
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert (
            lines[0].startswith("Error: ")
            and "schema version" in lines[0]
            and "main process" in lines[0]
        )
        assert result.stdout == ""
        assert not os.path.exists(layout.pid_files["worker2"])


def test_daemonize_needs_a_pid_file() -> None:
    with layout_on("sqlite", workers=False) as layout:
        with open(layout.config) as f:
            config = yaml.safe_load(f)
        del config["pid_file"]
        _write(layout.config, config)
        result = subprocess.run(
            [sys.executable, "-m", MAIN_MODULE, "-c", layout.config, "--daemonize"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=layout.directory,
        )
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"Error: in configuration: {layout.config}: pid_file: required to run in the background (daemonize); "
            "set it to a file the process may write, such as /run/homeserver/NAME.pid"
        ]


# --- synctl ---------------------------------------------------------------------------------


def test_synctl_start_status_restart_stop(deployment: Layout) -> None:
    layout = deployment
    started = layout.synctl("start", "-a", layout.workers_dir, layout.config)
    assert started.returncode == 0, started.stdout + started.stderr + layout.log()
    assert [line.split(":")[0] for line in started.stdout.splitlines()] == [
        "main",
        "worker1",
        "worker2",
    ]
    assert all(": started (pid " in line for line in started.stdout.splitlines())
    assert started.stderr == ""
    names = ["main", "worker1", "worker2"]
    first = _assert_running(layout, names)

    status = layout.synctl("status", "-a", layout.workers_dir, layout.config)
    assert status.returncode == 0, status.stdout + status.stderr
    lines = _status_lines(status)
    assert list(lines) == names
    for name in names:
        assert f"{name}: running, pid {first[name]}, health ok; " in lines[name]
    assert (
        f"listeners 127.0.0.1:{layout.ports['main']} [client metrics replication]" in lines["main"]
    )
    assert (
        f"listeners 127.0.0.1:{layout.ports['worker1']} [client replication]; streams typing"
        in lines["worker1"]
    )
    assert lines["worker2"].endswith(
        f"listeners 127.0.0.1:{layout.ports['worker2']} [client]; streams -"
    )
    streams = lines["main"].rsplit("; streams ", 1)[1].split()
    assert "events" in streams and "typing" not in streams

    # A second start leaves running processes alone.
    again = layout.synctl("start", "-a", layout.workers_dir, layout.config)
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        f"{name}: already running (pid {first[name]})" for name in names
    ]

    # -w: one worker only.
    one = layout.synctl(
        "restart", "-w", os.path.join(layout.workers_dir, "worker2.yaml"), layout.config
    )
    assert one.returncode == 0, one.stdout + one.stderr + layout.log()
    assert [line.split(":")[0] for line in one.stdout.splitlines()] == ["worker2", "worker2"]
    assert layout.pid("worker2") != first["worker2"]
    assert layout.pid("main") == first["main"] and layout.pid("worker1") == first["worker1"]
    _assert_gone({"worker2": first["worker2"]})

    restarted = layout.synctl("restart", "-a", layout.workers_dir, layout.config)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr + layout.log()
    # Workers stop first, then main; main starts first, then the workers.
    assert [line.split(":")[0] for line in restarted.stdout.splitlines()] == [
        "worker1",
        "worker2",
        "main",
        "main",
        "worker1",
        "worker2",
    ]
    second = _assert_running(layout, names)
    assert all(second[name] != first[name] for name in names)
    _assert_gone(first)
    assert layout.synctl("status", "-a", layout.workers_dir, layout.config).returncode == 0

    stopped = layout.synctl("stop", "-a", layout.workers_dir, layout.config)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stopped.stdout.splitlines() == [
        f"{name}: stopped (pid {second[name]})" for name in ["worker1", "worker2", "main"]
    ]
    _assert_gone(second)
    assert not any(os.path.exists(path) for path in layout.pid_files.values())

    after = layout.synctl("status", "-a", layout.workers_dir, layout.config)
    assert after.returncode == 3
    for name, line in _status_lines(after).items():
        assert line.startswith(
            f"{name}: stopped (no pid file {layout.pid_files[name]}), pid -, health -; "
        )

    # Stopping again: nothing to do, said in one line each.
    again = layout.synctl("stop", "-a", layout.workers_dir, layout.config)
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        f"{name}: not running (no pid file {layout.pid_files[name]})"
        for name in ["worker1", "worker2", "main"]
    ]


def test_synctl_stop_kills_what_does_not_stop() -> None:
    with layout_on("sqlite", workers=False) as layout:
        started = layout.synctl("start", layout.config)
        assert started.returncode == 0, started.stderr + layout.log()
        pid = layout.pid("main")
        os.kill(pid, signal.SIGSTOP)  # SIGTERM now waits; SIGKILL does not
        result = layout.synctl("stop", "--stop-timeout", "1", layout.config)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stderr.splitlines() == [
            f"main: pid {pid} did not stop within 1s of SIGTERM; sending SIGKILL"
        ]
        assert result.stdout.splitlines() == [f"main: stopped (pid {pid}, killed)"]
        assert running_command(pid) is None
        assert not os.path.exists(layout.pid_files["main"])


def _gone_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_synctl_stale_and_foreign_pid_files(offline_layout: Layout) -> None:
    layout = offline_layout
    args = ["-a", layout.workers_dir, layout.config]
    gone = _gone_pid()
    with open(layout.pid_files["worker1"], "w") as f:
        f.write(f"{gone}\n")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with open(layout.pid_files["main"], "w") as f:
            f.write(f"{sleeper.pid}\n")
        with open(layout.pid_files["worker2"], "w") as f:
            f.write("not a pid\n")

        status = layout.synctl("status", *args)
        assert status.returncode == 3
        lines = _status_lines(status)
        assert lines["worker1"].startswith(
            f"worker1: stale pid file {layout.pid_files['worker1']} (pid {gone} is gone), pid -"
        )
        assert lines["main"].startswith(
            f"main: stale pid file {layout.pid_files['main']} (pid {sleeper.pid} is another program, "
            f"not {MAIN_MODULE}: sleep 60), pid -"
        )
        assert (
            f"stale pid file {layout.pid_files['worker2']} (it does not hold a pid)"
            in lines["worker2"]
        )
        assert all(
            os.path.exists(path) for path in layout.pid_files.values()
        )  # status changes nothing

        stopped = layout.synctl("stop", *args)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.splitlines() == [
            f"worker1: not running: stale pid file {layout.pid_files['worker1']} (pid {gone} is gone); removed it, signalled nothing",
            f"worker2: not running: stale pid file {layout.pid_files['worker2']} (it does not hold a pid); removed it, signalled nothing",
            f"main: not running: stale pid file {layout.pid_files['main']} (pid {sleeper.pid} is another program, "
            f"not {MAIN_MODULE}: sleep 60); removed it, signalled nothing",
        ]
        assert sleeper.poll() is None, "synctl signalled a process that is not a homeserver"
        assert not any(os.path.exists(path) for path in layout.pid_files.values())
    finally:
        sleeper.kill()
        sleeper.wait()


def test_synctl_start_removes_a_stale_pid_file() -> None:
    with layout_on("sqlite", workers=False) as layout:
        gone = _gone_pid()
        with open(layout.pid_files["main"], "w") as f:
            f.write(f"{gone}\n")
        started = layout.synctl("start", layout.config)
        assert started.returncode == 0, started.stderr + layout.log()
        out = started.stdout.splitlines()
        assert (
            out[0]
            == f"main: removing the stale pid file {layout.pid_files['main']} (pid {gone} is gone)"
        )
        assert out[1].startswith(
            f"main: started (pid {layout.pid('main')}), healthy at http://127.0.0.1:{layout.ports['main']}/health"
        )
        assert layout.synctl("stop", layout.config).returncode == 0


def test_synctl_config_error_fails_in_one_line(offline_layout: Layout) -> None:
    layout = offline_layout
    worker_file = os.path.join(layout.workers_dir, "worker2.yaml")
    with open(worker_file) as f:
        worker = yaml.safe_load(f)
    _write(worker_file, {**worker, "worker_listeners": [{"type": "http", "port": "eighty"}]})
    result = layout.synctl("start", "-a", layout.workers_dir, layout.config)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: in configuration: {worker_file}: worker_listeners[0].port: 'eighty' is not of type 'integer'"
    ]
    assert not any(os.path.exists(path) for path in layout.pid_files.values())

    # A worker without a pid file cannot be managed.
    del worker["worker_pid_file"]
    _write(worker_file, worker)
    result = layout.synctl("start", "-a", layout.workers_dir, layout.config)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: worker worker2 has no pid file, which synctl needs to find it again: "
        f"set `worker_pid_file` in {worker_file}"
    ]

    missing = layout.synctl("status", os.path.join(layout.directory, "nope.yaml"))
    assert missing.returncode == 1 and missing.stderr.startswith("Error: config file ")
    assert layout.synctl("status", "-a", "x", "-w", "y", layout.config).returncode == 2


def test_synctl_start_reports_the_process_error_in_one_line() -> None:
    """Errors only the starting process finds (after it detached): a log config it cannot
    read, and a worker on a database the main process has not migrated yet."""
    with layout_on("postgres") as layout:
        with open(layout.config) as f:
            shared = yaml.safe_load(f)
        missing = os.path.join(layout.directory, "missing-logging.yaml")
        _write(layout.config, {**shared, "log_config": missing})
        result = layout.synctl("start", "-a", layout.workers_dir, layout.config)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"Error: main did not start: in configuration: {layout.config}: log_config: cannot read {missing}: "
            "No such file or directory",
            "Error: not starting the workers, as the main process did not start",
        ]
        assert not any(os.path.exists(path) for path in layout.pid_files.values())

        _write(layout.config, shared)
        result = layout.synctl(
            "start", "-w", os.path.join(layout.workers_dir, "worker2.yaml"), layout.config
        )
        assert result.returncode == 1
        [line] = result.stderr.splitlines()
        assert line.startswith("Error: worker2 did not start: ") and "schema version" in line
        assert not any(os.path.exists(path) for path in layout.pid_files.values())


def test_synctl_skips_a_synapse_style_main_process_file(offline_layout: Layout) -> None:
    """Synapse's synctl wants `workers/` to hold a file with `worker_app:
    synapse.app.homeserver` for the main process; here main runs from the shared config, so
    such a file is skipped with a note rather than refused."""
    layout = offline_layout
    main_file = _write(
        os.path.join(layout.workers_dir, "main.yaml"), {"worker_app": "synapse.app.homeserver"}
    )
    result = layout.synctl("status", "-a", layout.workers_dir, layout.config)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        f"Note: skipping {main_file}: it configures the main process (worker_app: synapse.app.homeserver), "
        "which synctl runs from the shared config alone"
    ]
    assert list(_status_lines(result)) == ["main", "worker1", "worker2"]
