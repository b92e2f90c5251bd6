"""`ReplicationHandler`: sends and receives replication commands for this process.

Writers announce `POSITION` after every write and once a second when idle, so a reader's view
of a quiet writer never stalls. Readers treat a `POSITION` as a doorbell: they read the rows
the writer persisted since the last position they saw from the database (the truth), apply
them (invalidate caches, then advance the stream, then wake the notifier) and so never skip a
gap, even after missing messages while Redis was down. On (re)connect a process sends
`REPLICATE`, and every writer answers with its positions.
"""

import logging
import secrets
import sys
import time
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task

from homeserver.replication.commands import (
    Command,
    CommandError,
    parse_command,
    position,
    replicate,
)
from homeserver.replication.redis import RedisTransport
from homeserver.replication.streams import ReplicatedStream, build_streams
from homeserver.util.linearizer import Linearizer

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0


class ReplicationHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.instance = hs.instance_name
        # Tells this process apart from another one wrongly started with the same name.
        self.nonce = secrets.token_hex(8)
        self.started = int(time.time() * 1000)
        self.streams: dict[str, ReplicatedStream] = build_streams(hs)
        self._transport: RedisTransport | None = None
        self._catch_up = Linearizer()
        self._heartbeat: task.LoopingCall | None = None

    def start(self) -> None:
        config = self.hs.config.redis
        if not config.enabled:
            return
        self._transport = RedisTransport(config, self.hs.hostname, self.on_line, self.on_connected)
        self._transport.start()
        self._heartbeat = task.LoopingCall(self.announce_positions)
        self._heartbeat.start(HEARTBEAT_SECONDS, now=False)

    def send(self, command: Command) -> None:
        if self._transport is not None:
            self._transport.publish(command.encode())

    def on_connected(self) -> None:
        self.send(replicate(self.instance))
        self.announce_positions()

    def announce_positions(self) -> None:
        self.send(Command("PING", {"instance": self.instance, "nonce": self.nonce, "started": self.started}))
        for name, stream in self.streams.items():
            if stream.is_writer:
                self.send(position(name, self.instance, stream.local_position()))

    def on_local_write(self, stream_name: str) -> None:
        stream = self.streams.get(stream_name)
        if stream is not None:
            self.send(position(stream_name, self.instance, stream.local_position()))

    def on_line(self, line: str) -> None:
        try:
            command = parse_command(line)
        except CommandError as e:
            logger.warning("Ignoring replication line: %s", e)
            return
        if command.body.get("instance") == self.instance:
            if command.name == "PING" and command.body.get("nonce") != self.nonce:
                self._duplicate_instance(command.body)
            return  # Our own echo.
        if command.name == "REPLICATE":
            self.announce_positions()
        elif command.name == "POSITION":
            defer.ensureDeferred(self._on_position(command.body))

    def _duplicate_instance(self, other: dict[str, Any]) -> None:
        """Two processes with one name would ignore each other's writes: the one started
        later refuses to go on."""
        from homeserver.app._base import stop_reactor

        theirs = (other.get("started", 0), str(other.get("nonce")))
        message = (f"another process is running with the instance name {self.instance!r}; "
                   "every worker needs its own worker_name")
        if (self.started, self.nonce) < theirs:
            logger.error("%s (the other one started later and will stop)", message)
            return
        logger.critical("%s", message)
        print(f"Error: {message}", file=sys.stderr)
        stop_reactor(exit_code=1)

    async def _on_position(self, body: dict[str, Any]) -> None:
        stream = self.streams.get(str(body.get("stream")))
        instance, target = body.get("instance"), body.get("position")
        if stream is None or not isinstance(instance, str) or not isinstance(target, int):
            return
        async with self._catch_up.queue(stream.name):
            try:
                await stream.catch_up(instance, target)
            except Exception:
                logger.exception("Catching up %s from %s failed; will retry on its next POSITION", stream.name, instance)
