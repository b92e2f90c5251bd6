"""The HTTP channel of a listener: twisted.web's, plus a deadline for receiving each request.

A client gets `request_read_timeout` seconds, from the moment its connection opens (or the
first byte of a later request on a kept-alive connection arrives), to send a whole request:
request line, headers and body. Twisted's own idle timeout restarts with every byte, so a
client trickling a byte now and then (slowloris) could otherwise hold a connection forever.
Once the request has arrived the timer stops: answering may take as long as it takes (a
long-polling `/sync`). A kept-alive connection may then sit idle for KEEPALIVE_IDLE_SECONDS,
longer than the pools of HTTP clients (Twisted's and so treq's: 240 s) keep idle connections,
so a client never sends a request on a connection the server is just closing."""

import logging
from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

from homeserver.util.jsonutil import encode

logger = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT = 60.0
KEEPALIVE_IDLE_SECONDS = 300.0

_TIMEOUT_BODY = encode({"errcode": "M_UNKNOWN", "error": "Timed out waiting for the request"})
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(_TIMEOUT_BODY)).encode("ascii") + b"\r\n"
    b"Cache-Control: no-cache, no-store, must-revalidate\r\n"
    b"Access-Control-Allow-Origin: *\r\n"
    b"Connection: close\r\n\r\n" + _TIMEOUT_BODY
)


class HomeserverChannel(http.HTTPChannel):
    """An HTTPChannel that closes connections whose request does not arrive in time."""

    site: Any = None

    def __init__(self) -> None:
        super().__init__()
        self._read_timer: Any = None  # an IDelayedCall
        self._received = False
        self._idle = False  # between requests on a kept-alive connection
        self._lost = False

    @property
    def read_timeout(self) -> float:
        return float(getattr(self.site, "request_read_timeout", DEFAULT_READ_TIMEOUT))

    def _arm(self, idle: bool = False) -> None:
        """Start the deadline for the next request (or, when `idle`, for its first byte)."""
        self._disarm()
        self._received = False
        self._idle = idle
        seconds = max(KEEPALIVE_IDLE_SECONDS, self.read_timeout) if idle else self.read_timeout
        if not self._lost:
            self._read_timer = self.callLater(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None and self._read_timer.active():
            self._read_timer.cancel()
        self._read_timer = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self._arm()

    def dataReceived(self, data: bytes) -> None:
        if data:
            if self._idle:
                self._arm()
            self._received = True
        super().dataReceived(data)

    def allContentReceived(self) -> None:
        self._disarm()
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        buffered = any(self._dataBuffer)
        super().requestDone(request)
        # Buffered (pipelined) data may already have brought the next whole request.
        if self.persistent and not self._handlingRequest and not self._lost:
            self._arm(idle=not buffered)
            self._received = buffered

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = True
        self._disarm()
        super().connectionLost(reason)

    def _read_timed_out(self) -> None:
        """Answer 408 to a client that started a request (the connection cannot be reused for
        the rest of it), or just close an idle connection; abort it if it will not close."""
        self._read_timer = None
        transport: Any = self.transport
        if self._handlingRequest or self._lost or transport is None:
            return
        peer = getattr(transport.getPeer(), "host", "-")
        logger.info("Closing connection from %s: %s", peer, "request incomplete" if self._received else "idle")
        if self._received:
            transport.write(_TIMEOUT_RESPONSE)
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()
