"""What every process does at start: read config, set up logging, prepare the database, open
listeners, write the pid file and run the reactor. Failures print one line and exit 1."""

import argparse
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

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
    return parser


def fail(message: str) -> "None":
    print(f"Error: {message}", file=sys.stderr)
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
        site = HomeserverSite(router, max_body, listener.x_forwarded)
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
        stop_reactor(exit_code=1)
        return
    except Exception as e:
        logger.exception("Failed to start")
        print(f"Error: failed to start: {e}", file=sys.stderr)
        stop_reactor(exit_code=1)
        return
    write_pid_file(pid_file)
    logger.info("%s serving on %s", hs.instance_name, ", ".join(opened))
    notify_systemd("READY=1")
    if on_started:
        on_started(opened)


_exit_code = 0


def stop_reactor(exit_code: int = 0) -> None:
    from twisted.internet import reactor

    global _exit_code
    _exit_code = exit_code
    if reactor.running:  # type: ignore[attr-defined,arg-type,misc,call-arg]
        reactor.stop()  # type: ignore[attr-defined,arg-type,misc,call-arg]


def run(config: HomeServerConfig, log_config: str | None, pid_file: str | None,
        on_started: Callable[[list[str]], None] | None = None) -> None:
    """Set up logging, then run the process until it is stopped."""
    from twisted.internet import reactor

    try:
        setup_logging(log_config, config.logging.origin)
    except ConfigError as e:
        fail(f"in configuration: {e}")
    for line in config.warnings:
        logger.warning("%s", line)
    hs = HomeServer(config)
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
