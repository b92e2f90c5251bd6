"""What every process does at start: read config, set up logging, prepare the database, open
listeners, write the pid file and run the reactor. Failures print one line and exit 1.

With `daemonize: true` (`worker_daemonize: true` for a worker, or `--daemonize` on the command
line) the process detaches first (see `daemonize_process`): the command returns once the
daemon is serving (status 0), or with the daemon's one-line error (status 1)."""

import argparse
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from twisted.internet import defer
from twisted.internet.error import CannotListenError

from homeserver.config import ConfigError, HomeServerConfig, load_config
from homeserver.config.logger import setup_logging
from homeserver.http.server import HomeserverSite, Router
from homeserver.routes import ROUTES, Endpoint, endpoints_for
from homeserver.server import HomeServer
from homeserver.storage.prepare import SchemaError, prepare_database

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """A problem that stops the process; the message is shown as one line."""


def base_argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "-c", "--config-path", action="append", default=[], metavar="PATH",
        help="a config file or a directory of .yaml files; repeat to merge several, shared file first",
    )
    parser.add_argument(
        "-D", "--daemonize", action="store_true",
        help="detach into the background once serving, as `daemonize: true` (`worker_daemonize: "
             "true` for a worker) does; needs a pid file",
    )
    return parser


def fail(message: str) -> NoReturn:
    print(f"Error: {message}", file=sys.stderr)
    report_startup(f"Error: {message}")
    sys.exit(1)


# A daemon's end of the pipe its launching process waits on (see `daemonize_process`), until
# it has reported how start-up went.
_startup_pipe: int | None = None


def report_startup(line: str) -> None:
    """Tell the process that launched this daemon how start-up went (`READY PID` or an
    `Error: ...` line) and let it exit; a no-op when not daemonized or already reported."""
    global _startup_pipe
    if _startup_pipe is None:
        return
    pipe, _startup_pipe = _startup_pipe, None
    try:
        os.write(pipe, (" ".join(line.split()) + "\n").encode("utf-8", "replace"))
    except OSError:
        pass  # the launching process is gone; nobody is waiting
    finally:
        os.close(pipe)


def daemonize_process(name: str) -> None:
    """Detach from the terminal and the launching process: fork, start a new session, fork
    again (so the daemon can never get a controlling terminal), point stdin, stdout and
    stderr at /dev/null and close every other inherited descriptor. Returns only in the
    daemon. The launching process waits until the daemon reports (`report_startup`) that it
    is serving, then exits 0; or prints the daemon's error and exits 1. The working
    directory is kept, so relative paths in the config mean the same as in the foreground."""
    global _startup_pipe
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    first = os.fork()
    if first > 0:
        os.close(write_end)
        _wait_for_daemon(read_end, first, name)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)  # the intermediate process; the launcher reaps it
    # Keep nothing the launcher's caller may wait on (a shell's `$(...)`, a pipe): standard
    # streams go to /dev/null and every other inherited descriptor is closed.
    _close_descriptors(keep=write_end)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
    _startup_pipe = write_end


def _close_descriptors(keep: int) -> None:
    """Close every descriptor above stderr except `keep`."""
    try:
        open_fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every possible one, up to a sane limit
        open_fds = list(range(3, min(os.sysconf("SC_OPEN_MAX"), 65536)))
    for fd in open_fds:
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass  # not open (such as the one listdir used)


def _wait_for_daemon(read_end: int, child: int, name: str) -> NoReturn:
    os.waitpid(child, 0)
    with os.fdopen(read_end, "rb") as pipe:
        # EOF comes when the daemon has reported, or has died without a word.
        report = pipe.read().decode("utf-8", "replace").strip()
    if report.startswith("READY "):
        print(f"{name} is serving in the background (pid {report.split()[1]})", flush=True)
        sys.exit(0)
    if report.startswith("Error: "):
        print(report, file=sys.stderr)
        sys.exit(1)
    print(f"Error: {name} exited during start-up without reporting why; see its log", file=sys.stderr)
    sys.exit(1)


def load_or_exit(paths: list[str]) -> HomeServerConfig:
    if not paths:
        fail("no config given: use -c/--config-path FILE (run with --generate-config to create one)")
    try:
        return load_config(paths)
    except ConfigError as e:
        fail(f"in configuration: {e}")
    raise AssertionError("unreachable")


def build_router(hs: HomeServer, resources: set[str]) -> Router:
    """The routes of one listener: what this process serves, and forwarding (the misroute
    guard) for the client endpoints it may not serve. A replication listener also serves the
    client API, for requests other processes forward here."""
    if "replication" in resources:
        resources = resources | {"client"}
    router = Router(hs.instance_name, hs.replication.local_positions)
    writers = hs.config.worker.stream_writers
    local = set()
    for endpoint in endpoints_for(resources, hs.is_main, hs.instance_name, writers):
        local.add(endpoint.name)
        servlet = endpoint.servlet_class()(hs)
        for method in endpoint.methods:
            router.register(endpoint.pattern, [method], getattr(servlet, f"on_{method}"), endpoint.name)
    for endpoint in ROUTES:
        if endpoint.resource == "client" and "client" in resources and endpoint.name not in local:
            router.register(endpoint.pattern, endpoint.methods, _forwarding_handler(hs, endpoint), endpoint.name)
    return router


def _forwarding_handler(hs: HomeServer, endpoint: Endpoint) -> Callable[..., Any]:
    async def forward(request: Any, **_: str) -> tuple[int, Any]:
        return await hs.request_forwarder.forward(request, endpoint)

    return forward


def start_listeners(hs: HomeServer) -> list[str]:
    """Open every configured listener; returns `host:port` strings for the log."""
    from twisted.internet import reactor

    opened = []
    for listener in hs.config.listeners:
        if listener.type == "manhole":
            logger.warning("manhole listeners are not supported; skipping port %d", listener.port)
            continue
        router = build_router(hs, listener.resources)
        max_body = max(hs.config.server.max_request_body_size, hs.config.server.max_upload_size if "media" in listener.resources else 0)
        site = HomeserverSite(router, max_body, listener.x_forwarded, hs.config.server.request_read_timeout)
        bound_any = False
        for address in listener.bind_addresses:
            try:
                reactor.listenTCP(listener.port, site, interface=address)  # type: ignore[attr-defined,arg-type,misc,call-arg]
                bound_any = True
                opened.append(f"{address}:{listener.port}")
            except CannotListenError as e:
                # "::" usually covers IPv4 too, making the "0.0.0.0" bind fail; that is fine.
                if address == "0.0.0.0" and bound_any:
                    continue
                raise StartupError(f"cannot listen on {address}:{listener.port}: {e.socketError}") from e
    return opened


def write_pid_file(path: str | None) -> None:
    if not path:
        return
    with open(path, "w") as f:
        f.write(f"{os.getpid()}\n")


def remove_pid_file(path: str | None) -> None:
    if path and os.path.exists(path):
        try:
            with open(path) as f:
                if f.read().strip() == str(os.getpid()):
                    os.unlink(path)
        except OSError:
            pass


def notify_systemd(state: str) -> None:
    """Tell systemd (Type=notify units) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode("ascii"))
        except OSError as e:
            logger.warning("Could not notify systemd: %s", e)


async def start(hs: HomeServer, pid_file: str | None, on_started: Callable[[list[str]], None] | None) -> None:
    try:
        await prepare_database(hs.database, hs.is_main)
        await hs.stores.load()
        hs.notifier  # noqa: B018 - built now so it sees every event persisted from here on
        hs.push_actions_processor  # noqa: B018 - evaluates push rules for every event persisted from here on
        await hs.presence_handler.start()
        opened = start_listeners(hs)
        hs.replication.start()
        hs.background_jobs.start()
    except (SchemaError, StartupError) as e:
        logger.error("%s", e)
        print(f"Error: {e}", file=sys.stderr)
        report_startup(f"Error: {e}")
        stop_reactor(exit_code=1)
        return
    except Exception as e:
        logger.exception("Failed to start")
        print(f"Error: failed to start: {e}", file=sys.stderr)
        report_startup(f"Error: failed to start: {e}")
        stop_reactor(exit_code=1)
        return
    try:
        write_pid_file(pid_file)
    except OSError as e:
        logger.error("cannot write the pid file %s: %s", pid_file, e.strerror)
        print(f"Error: cannot write the pid file {pid_file}: {e.strerror}", file=sys.stderr)
        report_startup(f"Error: cannot write the pid file {pid_file}: {e.strerror}")
        stop_reactor(exit_code=1)
        return
    logger.info("%s serving on %s", hs.instance_name, ", ".join(opened))
    notify_systemd("READY=1")
    report_startup(f"READY {os.getpid()}")
    if on_started:
        on_started(opened)


_exit_code = 0


def _leave_out_unused_libraries(config: HomeServerConfig) -> None:
    """Listeners never speak TLS (the proxy terminates it) and Redis over TLS is refused, so
    unless an `instance_map` entry asks for HTTPS nothing here needs pyOpenSSL: keep Twisted
    from loading it (and `cryptography` with it), which saves about 12 MB in every process.
    Without TLS there is no HTTP/2 either (Twisted offers it only through TLS negotiation), so
    the `h2` package, when something else installed it, is left out too."""
    # An import of a module set to None raises ImportError, which Twisted handles.
    if not any(location.tls for location in config.worker.instance_map.values()):
        sys.modules.setdefault("OpenSSL", None)  # type: ignore[arg-type]
        sys.modules.setdefault("h2", None)  # type: ignore[arg-type]


def stop_reactor(exit_code: int = 0) -> None:
    from twisted.internet import reactor

    global _exit_code
    _exit_code = exit_code
    if reactor.running:  # type: ignore[attr-defined,arg-type,misc,call-arg]
        reactor.stop()  # type: ignore[attr-defined,arg-type,misc,call-arg]


def run(config: HomeServerConfig, log_config: str | None, pid_file: str | None,
        on_started: Callable[[list[str]], None] | None = None, daemonize: bool = False) -> None:
    """Set up logging, then run the process until it is stopped; with `daemonize`, in the
    background (the calling process exits once the daemon serves or fails)."""
    if daemonize:
        pid_key = "pid_file" if config.worker.is_main else "worker_pid_file"
        if not pid_file:
            fail(f"in configuration: {config.raw.files[-1]}: {pid_key}: required to run in the background "
                 "(daemonize); set it to a file the process may write, such as /run/homeserver/NAME.pid")
        if not log_config:
            log_key = "log_config" if config.worker.is_main else "worker_log_config (or log_config)"
            print(f"Warning: {log_key} is not set: in the background, the process's log lines are discarded",
                  file=sys.stderr)
        # Before the reactor exists: nothing it sets up (threads, its waker) survives a fork well.
        daemonize_process(config.instance_name)

    _leave_out_unused_libraries(config)
    from twisted.internet import reactor

    try:
        setup_logging(log_config, config.logging.origin)
    except ConfigError as e:
        fail(f"in configuration: {e}")
    for line in config.warnings:
        logger.warning("%s", line)
    try:
        hs = HomeServer(config)
    except Exception as e:
        logger.exception("Failed to start")
        fail(f"failed to start: {e}")
    reactor.callWhenRunning(lambda: defer.ensureDeferred(start(hs, pid_file, on_started)))  # type: ignore[attr-defined,arg-type,misc,call-arg]

    def on_signal(signum: int, frame: Any) -> None:
        logger.info("Received signal %d, shutting down", signum)
        notify_systemd("STOPPING=1")
        reactor.callFromThread(stop_reactor)  # type: ignore[attr-defined,arg-type,misc,call-arg]

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reactor.run(installSignalHandlers=False)  # type: ignore[attr-defined,arg-type,misc,call-arg]
    remove_pid_file(pid_file)
    sys.exit(_exit_code)
