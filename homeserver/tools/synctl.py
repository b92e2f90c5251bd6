"""`synctl`: run a deployment's processes in the background and control them by pid file.

    synctl start|stop|restart|status [-w WORKER_FILE | -a WORKERS_DIR] [CONFIGFILE]

CONFIGFILE (default `homeserver.yaml`) is the shared config. Without `-w`/`-a` only the main
process is acted on; `-a DIR` adds every worker file in DIR; `-w FILE` acts on that one worker
alone. Processes are started with `python -m homeserver.app.NAME -c CONFIGFILE [-c WORKER_FILE]
--daemonize` (the Python running synctl) and found again through the pid file each writes
(`pid_file`, `worker_pid_file`), which is therefore required.

`start` starts the main process first and waits until it answers `/health`, then each worker;
`stop` sends SIGTERM to the workers first, then the main process, waits for each to exit and
sends SIGKILL after `--stop-timeout` seconds; `restart` is `stop` then `start`; `status`
prints one line per process. A pid is signalled only after /proc shows it is a homeserver
process of the right kind; a pid file naming anything else is reported and removed.

Exit status: 0 success; 1 something failed (a config problem, a process that did not start or
stop, or, for `status`, one running but unhealthy); 2 wrong command-line usage; 3 (`status`
only) some process is not running.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import yaml

from homeserver.config import ConfigError
from homeserver.config.homeserver import config_files
from homeserver.config.workers import app_name
from homeserver.tools.deployment import Process, load_deployment

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2  # argparse's status for wrong usage
EXIT_NOT_RUNNING = 3

MAIN_MODULE = "homeserver.app.homeserver"
WORKER_MODULE = "homeserver.app.generic_worker"

# Pid file states.
RUNNING = "running"
NO_PID_FILE = "no pid file"
STALE = "stale"


class UsageError(Exception):
    """A config or file synctl cannot work with; shown as one line, exit 1."""


@dataclass
class PidStatus:
    state: str  # RUNNING, NO_PID_FILE or STALE
    pid: int | None = None
    # For STALE: why the pid file does not name a running process of ours.
    reason: str = ""


@dataclass
class Managed:
    """One process of the deployment as synctl sees it."""

    process: Process
    pid_file: str
    pid_key: str

    @property
    def name(self) -> str:
        return "main" if self.process.is_main else self.process.name

    @property
    def module(self) -> str:
        return MAIN_MODULE if self.process.is_main else WORKER_MODULE

    def command(self) -> list[str]:
        args = [sys.executable, "-m", self.module]
        for path in self.process.files:
            args += ["-c", path]
        return [*args, "--daemonize"]

    def status(self) -> PidStatus:
        return pid_status(self.pid_file, self.module)


# --- processes ------------------------------------------------------------------------------


def running_command(pid: int) -> list[str] | None:
    """The command line of process `pid`, or None when no such process is alive (a zombie,
    which nobody may have reaped inside a container, counts as gone)."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except (FileNotFoundError, ProcessLookupError):
            return None
        except PermissionError:
            return ["(its command line cannot be read)"]
        state = stat[stat.rfind(b")") + 1 :].split()[:1]
        if state in ([b"Z"], [b"X"]):
            return None
        return [part.decode("utf-8", "replace") for part in cmdline.split(b"\0") if part]
    # No /proc (not Linux): ask ps.
    result = subprocess.run(
        ["ps", "-o", "stat=,command=", "-p", str(pid)], capture_output=True, text=True
    )
    line = result.stdout.strip()
    if result.returncode != 0 or not line or line.startswith("Z"):
        return None
    return line.split(None, 1)[1:] or [""]


def is_homeserver(command: list[str], module: str) -> bool:
    """Whether a command line is a homeserver process running `module`."""
    return any(module in part for part in command)


def read_pid(path: str) -> int | None:
    """The pid a pid file holds; None when the file holds no pid. Raises FileNotFoundError."""
    with open(path) as f:
        text = f.read().strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def pid_status(path: str, module: str) -> PidStatus:
    try:
        pid = read_pid(path)
    except FileNotFoundError:
        return PidStatus(NO_PID_FILE)
    except OSError as e:
        return PidStatus(STALE, reason=f"cannot read it: {e.strerror}")
    if pid is None:
        return PidStatus(STALE, reason="it does not hold a pid")
    command = running_command(pid)
    if command is None:
        return PidStatus(STALE, pid, f"pid {pid} is gone")
    if not is_homeserver(command, module):
        shown = " ".join(command)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return PidStatus(
            STALE,
            pid,
            f"pid {pid} is another program, not {module}: {shown or '(no command line)'}",
        )
    return PidStatus(RUNNING, pid)


def remove_pid_file(path: str, pid: int | None) -> None:
    """Remove a pid file if it still holds `pid` (or no valid pid, when `pid` is None)."""
    try:
        if read_pid(path) == pid:
            os.unlink(path)
    except OSError:
        pass


def wait_until_gone(pid: int, deadline: float) -> bool:
    while running_command(pid) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


# --- health ---------------------------------------------------------------------------------


def health_url(process: Process) -> str | None:
    """Where the process answers /health: its first HTTP listener (every one answers it), a
    wildcard bind address reached on loopback."""
    for listener in process.listeners:
        if listener.type != "http":
            continue
        host = listener.bind_addresses[0] if listener.bind_addresses else "127.0.0.1"
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{listener.port}/health"
    return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def check_health(process: Process, timeout: float = 3.0) -> tuple[bool, str]:
    """(healthy, what to show): `ok`, `HTTP 503`, `unreachable (...)`."""
    url = health_url(process)
    if url is None:
        return False, "unknown (no http listener)"
    try:
        with _opener.open(url, timeout=timeout) as response:
            return (True, "ok") if response.status == 200 else (False, f"HTTP {response.status}")
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return False, f"unreachable ({getattr(reason, 'strerror', None) or reason})"


def wait_healthy(process: Process, deadline: float) -> tuple[bool, str]:
    while True:
        healthy, detail = check_health(process, timeout=2.0)
        if healthy or time.monotonic() >= deadline:
            return healthy, detail
        time.sleep(0.2)


# --- actions --------------------------------------------------------------------------------


def say(line: str) -> None:
    print(line, flush=True)


def complain(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def start(processes: list[Managed], timeout: float) -> bool:
    """Start each process in order (the main process first); the workers are not started
    when the main process fails."""
    ok = True
    for managed in processes:
        if start_one(managed, timeout):
            continue
        ok = False
        if managed.process.is_main and len(processes) > 1:
            complain("Error: not starting the workers, as the main process did not start")
            return False
    return ok


def _child_error(result: "subprocess.CompletedProcess[str]") -> str:
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    if errors:
        return errors[-1][len("Error: ") :]
    if lines:
        return lines[-1]
    return f"it exited with status {result.returncode} without saying why; see its log"


def start_one(managed: Managed, timeout: float) -> bool:
    status = managed.status()
    if status.state == RUNNING:
        say(f"{managed.name}: already running (pid {status.pid})")
        return True
    if status.state == STALE:
        say(f"{managed.name}: removing the stale pid file {managed.pid_file} ({status.reason})")
        remove_pid_file(managed.pid_file, status.pid)
    deadline = time.monotonic() + timeout
    try:
        result = subprocess.run(
            managed.command(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        complain(
            f"Error: {managed.name} did not start within {timeout:g}s; it may still be starting "
            "(a long schema upgrade?): see its log and `synctl status`"
        )
        return False
    for line in result.stderr.splitlines():
        if line.startswith("Warning: "):
            complain(f"{managed.name}: {line}")
    if result.returncode != 0:
        complain(f"Error: {managed.name} did not start: {_child_error(result)}")
        return False
    status = managed.status()
    if status.state != RUNNING:
        complain(
            f"Error: {managed.name} reported that it started but its pid file {managed.pid_file} "
            f"does not name it ({status.reason or status.state})"
        )
        return False
    healthy, detail = wait_healthy(managed.process, max(deadline, time.monotonic() + 10))
    if not healthy:
        complain(
            f"Error: {managed.name} started (pid {status.pid}) but {health_url(managed.process)} "
            f"does not answer: {detail}"
        )
        return False
    say(f"{managed.name}: started (pid {status.pid}), healthy at {health_url(managed.process)}")
    return True


def stop(processes: list[Managed], timeout: float) -> bool:
    """SIGTERM every process given (together), wait up to `timeout` for each to exit, then
    SIGKILL. True when none of them is running afterwards."""
    ok = True
    signalled: list[tuple[Managed, int]] = []
    for managed in processes:
        status = managed.status()
        if status.state == NO_PID_FILE:
            say(f"{managed.name}: not running (no pid file {managed.pid_file})")
            continue
        if status.state == STALE:
            say(
                f"{managed.name}: not running: stale pid file {managed.pid_file} ({status.reason}); "
                "removed it, signalled nothing"
            )
            remove_pid_file(managed.pid_file, status.pid)
            continue
        assert status.pid is not None
        try:
            os.kill(status.pid, signal.SIGTERM)
        except ProcessLookupError:
            say(f"{managed.name}: not running: pid {status.pid} exited just now")
            remove_pid_file(managed.pid_file, status.pid)
            continue
        except PermissionError:
            complain(
                f"Error: {managed.name}: not allowed to signal pid {status.pid}; run synctl as the "
                "user the process runs as"
            )
            ok = False
            continue
        signalled.append((managed, status.pid))
    deadline = time.monotonic() + timeout
    for managed, pid in signalled:
        if wait_until_gone(pid, deadline):
            say(f"{managed.name}: stopped (pid {pid})")
        else:
            command = running_command(pid)
            if command is not None and is_homeserver(command, managed.module):
                complain(
                    f"{managed.name}: pid {pid} did not stop within {timeout:g}s of SIGTERM; sending SIGKILL"
                )
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                except PermissionError:
                    pass
            if wait_until_gone(pid, time.monotonic() + 10):
                say(f"{managed.name}: stopped (pid {pid}, killed)")
            else:
                complain(f"Error: {managed.name}: pid {pid} is still running")
                ok = False
                continue
        remove_pid_file(managed.pid_file, pid)
    return ok


def describe_listeners(process: Process) -> str:
    parts = []
    for listener in process.listeners:
        addresses = ",".join(f"[{a}]" if ":" in a else a for a in listener.bind_addresses) or "*"
        parts.append(
            f"{addresses}:{listener.port} [{' '.join(sorted(listener.resources)) or listener.type}]"
        )
    return ", ".join(parts) or "-"


def status_line(managed: Managed) -> tuple[str, int]:
    """The process's status line and its exit code (0, 1 unhealthy, 3 not running)."""
    status = managed.status()
    code = EXIT_OK
    if status.state == RUNNING:
        healthy, health = check_health(managed.process)
        state = f"running, pid {status.pid}, health {health}"
        code = EXIT_OK if healthy else EXIT_FAILED
    elif status.state == NO_PID_FILE:
        state = f"stopped (no pid file {managed.pid_file}), pid -, health -"
        code = EXIT_NOT_RUNNING
    else:
        state = f"stale pid file {managed.pid_file} ({status.reason}), pid -, health -"
        code = EXIT_NOT_RUNNING
    streams = " ".join(managed.process.streams_written()) or "-"
    return (
        f"{managed.name}: {state}; listeners {describe_listeners(managed.process)}; streams {streams}",
        code,
    )


def status(processes: list[Managed]) -> int:
    codes = []
    for managed in processes:
        line, code = status_line(managed)
        say(line)
        codes.append(code)
    if EXIT_NOT_RUNNING in codes:
        return EXIT_NOT_RUNNING
    return EXIT_FAILED if EXIT_FAILED in codes else EXIT_OK


# --- the command ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synctl",
        description="Start, stop, restart or check the homeserver's processes in the background.",
        epilog="Exit status: 0 success; 1 something failed; 2 wrong usage; "
        "3 (status) a process is not running.",
    )
    parser.add_argument("action", choices=["start", "stop", "restart", "status"])
    parser.add_argument(
        "configfile",
        nargs="?",
        default="homeserver.yaml",
        help="the shared config file (default: homeserver.yaml)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "-w",
        "--worker",
        metavar="WORKERCONFIG",
        help="act on this one worker only (its own config file); the main process is not touched",
    )
    which.add_argument(
        "-a",
        "--all-processes",
        metavar="WORKERS_DIR",
        help="act on the main process and every worker config (*.yaml) in this directory",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long each process may take to start (default 300: schema upgrades take time)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long each process may take to stop before it is killed (default 30)",
    )
    return parser


def _configures_main(path: str) -> bool:
    """Whether a file in the workers directory is Synapse synctl's main-process file
    (`worker_app: synapse.app.homeserver`): the main process runs from CONFIGFILE here, so the
    file is skipped, with a note."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return False  # reported properly when the deployment loads
    if not isinstance(data, dict) or not isinstance(data.get("worker_app"), str):
        return False
    if app_name(data["worker_app"]) != "homeserver":
        return False
    complain(
        f"Note: skipping {path}: it configures the main process (worker_app: {data['worker_app']}), "
        "which synctl runs from the shared config alone"
    )
    return True


def select_processes(args: argparse.Namespace) -> list[Managed]:
    """The processes to act on, main first, each with its pid file; raises UsageError."""
    if not os.path.isfile(args.configfile):
        raise UsageError(
            f"config file {args.configfile} not found; give the shared config as the last "
            "argument, e.g. synctl start /etc/homeserver/homeserver.yaml"
        )
    worker_paths: list[str] = []
    if args.worker:
        if not os.path.isfile(args.worker):
            raise UsageError(f"worker config file {args.worker} not found")
        worker_paths = [args.worker]
    elif args.all_processes:
        if not os.path.isdir(args.all_processes):
            raise UsageError(f"{args.all_processes} is not a directory of worker config files")
        worker_paths = [
            path for path in config_files([args.all_processes]) if not _configures_main(path)
        ]
    try:
        deployment = load_deployment([args.configfile], worker_paths)
    except ConfigError as e:
        raise UsageError(f"in configuration: {e}") from e
    if args.all_processes and not deployment.workers:
        raise UsageError(f"no worker config files (*.yaml) in {args.all_processes}")
    chosen = deployment.workers if args.worker else deployment.processes
    managed = []
    for process in chosen:
        if process.is_main:
            pid_file, key, where = process.config.server.pid_file, "pid_file", args.configfile
        else:
            pid_file, key, where = (
                process.config.worker.pid_file,
                "worker_pid_file",
                process.worker_file,
            )
        if not pid_file:
            name = "the main process" if process.is_main else f"worker {process.name}"
            raise UsageError(
                f"{name} has no pid file, which synctl needs to find it again: set `{key}` in {where}"
            )
        managed.append(Managed(process, pid_file, key))
    seen: dict[str, str] = {}
    for item in managed:
        path = os.path.abspath(item.pid_file)
        if path in seen:
            raise UsageError(
                f"{seen[path]} and {item.name} use the same pid file {item.pid_file}; give each process its own"
            )
        seen[path] = item.name
    return managed


def main(argv: list[str] | None = None) -> int:
    # Options may come anywhere, as in `synctl start -a workers/ homeserver.yaml`.
    args = build_parser().parse_intermixed_args(argv)
    try:
        processes = select_processes(args)
    except UsageError as e:
        complain(f"Error: {e}")
        return EXIT_FAILED
    workers = [m for m in processes if not m.process.is_main]
    mains = [m for m in processes if m.process.is_main]
    if args.action == "status":
        return status(processes)
    if args.action in ("stop", "restart"):
        # Workers first: they need the main process while they shut down.
        workers_stopped = stop(workers, args.stop_timeout)
        main_stopped = stop(mains, args.stop_timeout)
        if not (workers_stopped and main_stopped):
            if args.action == "restart":
                complain("Error: not starting again, as not everything stopped")
            return EXIT_FAILED
        if args.action == "stop":
            return EXIT_OK
    return EXIT_OK if start(processes, args.start_timeout) else EXIT_FAILED


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
