"""`ReplicationHandler`: sends and receives replication commands for this process.

Writers announce `POSITION` whenever their position moves and once a second when idle, so a
reader's view of a quiet writer never stalls. Readers treat a `POSITION` as a doorbell: they
read the rows the writer persisted since the last position they saw from the database (the
truth; typing is fetched from its writer over HTTP), apply them (invalidate caches, then
advance the stream, then wake the notifier) and so never skip a gap, even after missing
messages while Redis was down. On (re)connect a process sends `REPLICATE`, and every writer
answers with its positions.

It also fences positions: `wait_for_positions` lets a caller that wrote through another
process wait until this process has applied that write (read-your-writes), and
`local_positions` is what this process reports back to such callers.
"""

import logging
import secrets
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge
from twisted.internet import defer, task

from homeserver.replication.commands import (
    Command,
    CommandError,
    clear_user_sync,
    parse_command,
    position,
    replicate,
    user_sync,
)
from homeserver.replication.redis import RedisTransport
from homeserver.replication.streams import ReplicatedStream, build_streams
from homeserver.util.linearizer import Linearizer

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
# Writers record their positions in `stream_positions` every this many heartbeats, so that a
# restarting process starts close to the present instead of replaying history.
PERSIST_POSITIONS_EVERY = 5
# How long a client's answer may wait for this process to see the write it made elsewhere.
FENCE_TIMEOUT_SECONDS = 5.0
# How long a read may wait for replication to bring what the database already holds.
DATABASE_CATCH_UP_SECONDS = 1.0
# An instance silent for this long is taken to be gone (its users' syncs are forgotten).
INSTANCE_TIMEOUT_SECONDS = 30.0

commands_sent = Counter("homeserver_replication_commands_sent_total", "Replication commands published", ["command"])
commands_received = Counter(
    "homeserver_replication_commands_received_total", "Replication commands received from other processes", ["command"]
)
replication_lag = Gauge(
    "homeserver_replication_lag", "Writer's announced position minus the position applied here", ["stream", "instance"]
)
fence_timeouts = Counter(
    "homeserver_replication_fence_timeouts_total", "Answers sent before this process saw a write made elsewhere", ["stream"]
)


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
        self._beats = 0
        # (stream, instance) -> the latest position the instance announced.
        self._announced: dict[tuple[str, str], int] = {}
        # stream -> [(instance, position, deferred)] of callers waiting to see a position
        # (instance None: the stream's current token, the minimum over its writers).
        self._waiters: dict[str, list[tuple[str | None, int, defer.Deferred[None]]]] = {}
        self._last_seen: dict[str, float] = {}
        self._pending_announcements: set[str] = set()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        config = self.hs.config.redis
        if not config.enabled:
            return
        for name, stream in self.streams.items():
            if stream.is_writer and stream.persisted:
                # Own event writes are announced once everything about them is stored
                # (server.py hooks the persister); catching up with other persisters is not.
                stream.ids.on_local_advance.append(self._announcer(name, own_writes=name != "events"))
        self._transport = RedisTransport(config, self.hs.hostname, self.on_line, self.on_connected)
        self._transport.start()
        self._heartbeat = task.LoopingCall(self._beat)
        self._heartbeat.start(HEARTBEAT_SECONDS, now=False)
        from twisted.internet import reactor as twisted_reactor

        reactor: Any = twisted_reactor
        reactor.addSystemEventTrigger("before", "shutdown", self.persist_positions)

    def send(self, command: Command) -> None:
        if self._transport is not None:
            commands_sent.labels(command.name).inc()
            self._transport.publish(command.encode())

    def on_connected(self) -> None:
        self.send(replicate(self.instance))
        self.announce_positions()
        # USER_SYNCs sent while Redis was away are lost: start the presence writer afresh.
        if not self.hs.presence_handler.is_writer:
            self.send(clear_user_sync(self.instance))
            for user_id, presence in self.hs.presence_handler.remote_syncs():
                self.send(user_sync(self.instance, user_id, True, presence))

    # --- writing side ------------------------------------------------------------------------

    def _beat(self) -> "defer.Deferred[None] | None":
        self.announce_positions()
        self._beats += 1
        if self._beats % PERSIST_POSITIONS_EVERY == 0:
            return self.persist_positions()
        return None

    def announce_positions(self) -> None:
        self.send(Command("PING", {"instance": self.instance, "nonce": self.nonce, "started": self.started}))
        for name, stream in self.streams.items():
            if stream.is_writer:
                self.send(position(name, self.instance, stream.local_position()))

    def persist_positions(self) -> "defer.Deferred[None]":
        async def persist() -> None:
            for stream in self.streams.values():
                if stream.is_writer and stream.persisted:
                    try:
                        await stream.ids.persist_position(self.hs.database)
                    except Exception:
                        logger.warning("Could not record the %s stream position", stream.name, exc_info=True)

        return defer.ensureDeferred(persist())

    def _announcer(self, stream_name: str, own_writes: bool) -> Callable[[bool], None]:
        def announce(own_write: bool) -> None:
            if own_writes or not own_write:
                self.on_local_write(stream_name)

        return announce

    def on_local_write(self, stream_name: str) -> None:
        """This process wrote to `stream_name`: announce the new position (once per tick,
        however many writes finished in it)."""
        if stream_name not in self.streams or stream_name in self._pending_announcements:
            return
        from twisted.internet import reactor as twisted_reactor

        reactor: Any = twisted_reactor
        self._pending_announcements.add(stream_name)
        reactor.callLater(0, self._announce_one, stream_name)

    def _announce_one(self, stream_name: str) -> None:
        self._pending_announcements.discard(stream_name)
        stream = self.streams[stream_name]
        self.send(position(stream_name, self.instance, stream.local_position()))
        self._wake_waiters(stream)

    def local_positions(self) -> dict[str, int]:
        """The positions of the streams this process writes (reported to callers so they can
        wait to see what this process just wrote)."""
        return {name: stream.local_position() for name, stream in self.streams.items() if stream.is_writer}

    def send_user_sync(self, user_id: str, active: bool, presence: str | None = None) -> None:
        self.send(user_sync(self.instance, user_id, active, presence))

    # --- reading side ------------------------------------------------------------------------

    def on_line(self, line: str) -> None:
        try:
            command = parse_command(line)
        except CommandError as e:
            logger.warning("Ignoring replication line: %s", e)
            return
        sender = command.body.get("instance")
        if sender == self.instance:
            if command.name == "PING" and command.body.get("nonce") != self.nonce:
                self._duplicate_instance(command.body)
            return  # Our own echo.
        commands_received.labels(command.name).inc()
        if isinstance(sender, str):
            self._last_seen[sender] = time.monotonic()
        if command.name == "REPLICATE":
            self.announce_positions()
        elif command.name == "POSITION":
            defer.ensureDeferred(self._on_position(command.body))
        elif command.name in ("USER_SYNC", "CLEAR_USER_SYNC"):
            defer.ensureDeferred(self.hs.presence_handler.on_remote_sync_command(command.name, command.body))

    def is_alive(self, instance: str) -> bool:
        """Whether `instance` was heard from lately (PINGs come every second)."""
        seen = self._last_seen.get(instance)
        return seen is not None and time.monotonic() - seen < INSTANCE_TIMEOUT_SECONDS

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
        key = (stream.name, instance)
        if key not in self._announced:
            replication_lag.labels(stream.name, instance).set_function(
                lambda: max(0, self._announced.get(key, 0) - stream.get_position(instance))
            )
        self._announced[key] = max(target, self._announced.get(key, 0)) if stream.persisted else target
        async with self._catch_up.queue(stream.name):
            try:
                await stream.catch_up(instance, target)
            except Exception:
                logger.exception("Catching up %s from %s failed; will retry on its next POSITION", stream.name, instance)
        self._wake_waiters(stream)

    # --- fencing -------------------------------------------------------------------------------

    async def wait_for_positions(self, instance: str, positions: dict[str, Any],
                                 timeout: float = FENCE_TIMEOUT_SECONDS) -> None:
        """Wait (at most `timeout` seconds) until this process has applied `instance`'s writes
        up to `positions` ({stream: position}); afterwards a read here sees them."""
        if instance == self.instance:
            return
        waiting = []
        for name, wanted in positions.items():
            stream = self.streams.get(name)
            if stream is None or not isinstance(wanted, int) or stream.get_position(instance) >= wanted:
                continue
            waiting.append((name, wanted, self._add_waiter(name, instance, wanted)))
        for name, wanted, d in waiting:
            await self._await_waiter(name, wanted, d, timeout)

    async def wait_for_current_token(self, stream_name: str, wanted: int, timeout: float = FENCE_TIMEOUT_SECONDS) -> None:
        """Wait (bounded) until the stream's current token — what reads here serve, the
        minimum over its writers — reaches `wanted`."""
        stream = self.streams[stream_name]
        if stream.ids.get_current_token() < wanted:
            await self._await_waiter(stream_name, wanted, self._add_waiter(stream_name, None, wanted), timeout)

    async def wait_for_database(self, timeout: float = DATABASE_CATCH_UP_SECONDS) -> None:
        """Wait (bounded) until this process serves everything committed to the database-backed
        streams when the call began: a read that must not miss a write just made through
        another process (an initial sync, a sync that will not wait) calls this first. One
        query of indexed maxima; nothing to do without workers."""
        if self._transport is None:
            return
        streams = [s for name, s in self.streams.items() if s.persisted and name != "caches"]
        committed = await self.hs.database.run_interaction("stream_maxima", _stream_maxima_txn, [s.ids for s in streams])
        for stream, reached in zip(streams, committed, strict=True):
            if stream.ids.get_current_token() < reached:
                await self.wait_for_current_token(stream.name, reached, timeout)

    def _add_waiter(self, name: str, instance: str | None, wanted: int) -> "defer.Deferred[None]":
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.setdefault(name, []).append((instance, wanted, d))
        return d

    async def _await_waiter(self, name: str, wanted: int, d: "defer.Deferred[None]", timeout: float) -> None:
        from twisted.internet import reactor

        d.addTimeout(timeout, reactor)  # type: ignore[arg-type]
        try:
            await d
        except defer.TimeoutError:
            fence_timeouts.labels(name).inc()
            logger.warning("Answering before this process saw the %s stream reach %d", name, wanted)
            self._waiters[name] = [w for w in self._waiters.get(name, []) if w[2] is not d]

    def _wake_waiters(self, stream: ReplicatedStream) -> None:
        waiters = self._waiters.get(stream.name)
        if not waiters:
            return
        still = []
        for instance, wanted, d in waiters:
            if d.called:
                continue
            reached = stream.ids.get_current_token() if instance is None else stream.get_position(instance)
            if reached >= wanted:
                d.callback(None)
            else:
                still.append((instance, wanted, d))
        self._waiters[stream.name] = still


def _stream_maxima_txn(txn: Any, generators: list[Any]) -> list[int]:
    """The highest position committed in each stream's table, in one statement."""
    parts = [f"(SELECT COALESCE(MAX({ids.id_column}), 0) FROM {ids.table})" for ids in generators]
    txn.execute("SELECT " + ", ".join(parts))
    return [int(value) for value in txn.fetchone()]
