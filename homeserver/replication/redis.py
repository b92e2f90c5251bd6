"""The Redis transport: a subscriber connection on the server's channel (reconnecting with
backoff) and a lazy publisher connection."""

import logging
from collections.abc import Callable
from typing import Any

import txredisapi
from twisted.internet import reactor
from twisted.internet.protocol import ClientFactory

from homeserver.config.redis import RedisConfig

logger = logging.getLogger(__name__)
_reactor: Any = reactor

MAX_BACKOFF_SECONDS = 30.0


class _Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc]
    transport_owner: "RedisTransport"

    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport_owner._on_connected(self)

    def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
        text = message.decode("utf-8") if isinstance(message, bytes) else str(message)
        self.transport_owner.on_line(text)

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self.transport_owner._on_lost(reason)


class RedisTransport:
    def __init__(self, config: RedisConfig, channel: str, on_line: Callable[[str], None],
                 on_connected: Callable[[], None]):
        self.config = config
        self.channel = channel
        self.on_line = on_line
        self.on_connected = on_connected
        self._backoff = 0.5
        self._stopping = False
        self._publisher: Any = None

    def start(self) -> None:
        self._publisher = txredisapi.lazyConnection(
            self.config.host, self.config.port, dbid=self.config.dbid, reconnect=True, password=self.config.password,
        )
        self._connect()

    def stop(self) -> None:
        self._stopping = True

    def _connect(self) -> None:
        owner = self

        class Subscriber(_Subscriber):
            transport_owner = owner

        class Factory(txredisapi.SubscriberFactory, ClientFactory):  # type: ignore[misc]
            protocol = Subscriber

            def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
                owner._on_lost(reason)

            def clientConnectionLost(self, connector: Any, reason: Any) -> None:
                pass  # The protocol's connectionLost reports it.

        factory = Factory()
        factory.password = self.config.password
        factory.dbid = self.config.dbid
        _reactor.connectTCP(self.config.host, self.config.port, factory, timeout=10)

    def _on_connected(self, protocol: Any) -> None:
        def subscribed(_: Any) -> None:
            logger.info("Subscribed to Redis channel %s", self.channel)
            self._backoff = 0.5
            self.on_connected()

        protocol.subscribe(self.channel).addCallbacks(subscribed, lambda f: logger.warning("Subscribe failed: %s", f))

    def _on_lost(self, reason: Any) -> None:
        if self._stopping:
            return
        delay = self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_SECONDS)
        logger.warning("Redis connection lost (%s); reconnecting in %.1fs", getattr(reason, "value", reason), delay)
        _reactor.callLater(delay, self._connect)

    def publish(self, line: str) -> None:
        if self._publisher is None:
            return
        d = self._publisher.publish(self.channel, line)
        d.addErrback(lambda f: logger.warning("Publishing to Redis failed: %s", f.value))
