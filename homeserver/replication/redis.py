"""The Redis transport: two connections to Redis, each reconnecting with backoff: a subscriber
on the server's channel and a publisher.

Only four commands are needed (AUTH, SELECT, SUBSCRIBE, PUBLISH), so this speaks RESP2 itself
instead of using a client library: the one we used imported Twisted's TLS support, and with it
pyOpenSSL and `cryptography`, about 12 MB in every process for connections that are never TLS
(`redis.use_tls` is refused at start-up)."""

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure

from homeserver.config.redis import RedisConfig

logger = logging.getLogger(__name__)
_reactor: Any = reactor

MAX_BACKOFF_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10
# Lines published while the publisher is disconnected, sent once it is back (the oldest are
# dropped beyond this: they are doorbells, and readers catch up from the database anyway).
MAX_QUEUED_LINES = 1000


class RedisError(Exception):
    """Redis answered a command with an error."""


class _Incomplete(Exception):
    """The buffer ends inside a reply."""


def encode_command(*args: str | bytes | int) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def parse_reply(buffer: bytes, pos: int = 0) -> tuple[Any, int]:
    """One RESP2 reply starting at `pos`: (value, position after it). Errors are returned as
    `RedisError` values; raises `_Incomplete` when the buffer ends first."""
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line, after = buffer[pos:pos + 1], buffer[pos + 1:end], end + 2
    if kind == b"+":
        return line, after
    if kind == b"-":
        return RedisError(line.decode("utf-8", "replace")), after
    if kind == b":":
        return int(line), after
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, after
        if len(buffer) < after + length + 2:
            raise _Incomplete
        return buffer[after:after + length], after + length + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            item, after = parse_reply(buffer, after)
            items.append(item)
        return items, after
    raise ValueError(f"not a RESP reply: {buffer[pos:pos + 20]!r}")


class RedisConnection(Protocol):
    """One connection: commands answered in order (a Deferred each), and, once subscribed,
    channel messages handed to `on_message`."""

    def __init__(self, on_ready: Callable[["RedisConnection"], None], on_lost: Callable[[Any], None],
                 on_message: Callable[[bytes], None] | None = None):
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._on_message = on_message
        self._buffer = b""
        self._pending: deque[defer.Deferred[Any]] = deque()

    def connectionMade(self) -> None:
        self._on_ready(self)

    def command(self, *args: str | bytes | int) -> "defer.Deferred[Any]":
        answer: defer.Deferred[Any] = defer.Deferred()
        self._pending.append(answer)
        self.socket.write(encode_command(*args))
        return answer

    @property
    def socket(self) -> Any:
        """The connection's transport (untyped: Twisted's interfaces confuse mypy)."""
        return self.transport

    def close(self) -> None:
        if self.transport is not None:
            self.socket.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        pos = 0
        try:
            while pos < len(self._buffer):
                value, pos = parse_reply(self._buffer, pos)
                self._dispatch(value)
        except _Incomplete:
            pass
        except ValueError as e:
            logger.warning("Unreadable answer from Redis (%s); reconnecting", e)
            self._buffer = b""
            self.close()
            return
        self._buffer = self._buffer[pos:]

    def _dispatch(self, value: Any) -> None:
        if (self._on_message is not None and isinstance(value, list) and len(value) == 3
                and value[0] == b"message"):
            self._on_message(value[2])
            return
        if not self._pending:
            logger.debug("Unexpected answer from Redis: %r", value)
            return
        answer = self._pending.popleft()
        if isinstance(value, RedisError):
            answer.errback(value)
        else:
            answer.callback(value)

    def connectionLost(self, reason: Failure | None = None) -> None:
        pending, self._pending = self._pending, deque()
        for answer in pending:
            answer.errback(ConnectionError("Redis connection lost"))
        self._on_lost(reason)


class _Link:
    """One role (subscriber or publisher): keeps a connection up, reconnecting with backoff,
    and runs the role's set-up commands on every new connection."""

    def __init__(self, transport: "RedisTransport", name: str, subscribe: bool):
        self.transport = transport
        self.name = name
        self.subscribe = subscribe
        self.connection: RedisConnection | None = None  # set once set up
        self._backoff = 0.5

    def connect(self) -> None:
        if self.transport.stopping:
            return
        link = self

        class Factory(ClientFactory):
            def buildProtocol(self, addr: Any) -> RedisConnection:
                on_message = link.transport.on_message if link.subscribe else None
                return RedisConnection(link._ready, link._lost, on_message)

            def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
                link._lost(reason)

        config = self.transport.config
        _reactor.connectTCP(config.host, config.port, Factory(), timeout=CONNECT_TIMEOUT_SECONDS)

    def _ready(self, connection: RedisConnection) -> None:
        defer.ensureDeferred(self._set_up(connection))

    async def _set_up(self, connection: RedisConnection) -> None:
        config = self.transport.config
        try:
            if config.password:
                await connection.command("AUTH", config.password)
            if config.dbid is not None:
                await connection.command("SELECT", config.dbid)
            if self.subscribe:
                await connection.command("SUBSCRIBE", self.transport.channel)
        except Exception as e:
            logger.warning("Redis %s set-up failed: %s", self.name, e)
            connection.close()
            return
        self._backoff = 0.5
        self.connection = connection
        if self.subscribe:
            logger.info("Subscribed to Redis channel %s", self.transport.channel)
        self.transport.on_link_ready(self)

    def _lost(self, reason: Any) -> None:
        self.connection = None
        if self.transport.stopping:
            return
        delay = self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_SECONDS)
        logger.warning("Redis %s connection lost (%s); reconnecting in %.1fs", self.name,
                       getattr(reason, "value", reason), delay)
        _reactor.callLater(delay, self.connect)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


class RedisTransport:
    def __init__(self, config: RedisConfig, channel: str, on_line: Callable[[str], None],
                 on_connected: Callable[[], None]):
        self.config = config
        self.channel = channel
        self.on_line = on_line
        self.on_connected = on_connected
        self.stopping = False
        self._subscriber = _Link(self, "subscriber", subscribe=True)
        self._publisher = _Link(self, "publisher", subscribe=False)
        self._queued: deque[str] = deque(maxlen=MAX_QUEUED_LINES)

    def start(self) -> None:
        self._publisher.connect()
        self._subscriber.connect()

    def stop(self) -> None:
        self.stopping = True
        self._subscriber.close()
        self._publisher.close()

    def on_message(self, message: bytes) -> None:
        self.on_line(message.decode("utf-8", "replace"))

    def on_link_ready(self, link: _Link) -> None:
        if link is self._subscriber:
            self.on_connected()
            return
        while self._queued and self._publisher.connection is not None:
            self.publish(self._queued.popleft())

    def publish(self, line: str) -> None:
        connection = self._publisher.connection
        if connection is None:
            self._queued.append(line)
            return
        connection.command("PUBLISH", self.channel, line).addErrback(
            lambda f: logger.warning("Publishing to Redis failed: %s", f.value))
