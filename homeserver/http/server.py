"""The twisted.web site of one listener: routing by regex, Matrix errors, CORS, body limits,
request ids and the access log."""

import itertools
import json
import logging
import re
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from prometheus_client import Counter, Histogram
from twisted.internet import defer
from twisted.web import resource, server
from twisted.web.server import NOT_DONE_YET

from homeserver.http.channel import DEFAULT_READ_TIMEOUT, HomeserverChannel
from homeserver.http.context import set_request_id
from homeserver.http.errors import InteractiveAuthIncomplete, MatrixError
from homeserver.http.servlet import RawResponse
from homeserver.storage.database import DatabaseUnavailableError
from homeserver.util.jsonutil import encode

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("homeserver.access")

Handler = Callable[..., Any]

CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
    b"Access-Control-Expose-Headers": b"Synapse-Trace-Id, Server",
}

requests_total = Counter(
    "homeserver_http_requests_total", "HTTP requests answered", ["method", "servlet", "code"]
)
request_seconds = Histogram("homeserver_http_request_seconds", "Time to answer an HTTP request", ["servlet"])

# Query parameters as twisted.web splits them: on `&` and `;`.
_QUERY_SEPARATORS = re.compile(r"([&;])")
_request_counter = itertools.count(1)

# Marks a request from another process of this deployment (a forwarded client request or an
# HTTP replication call); its answer carries this process's stream positions in
# POSITIONS_HEADER so the caller can wait to see what the request wrote.
INTERNAL_HEADER = "X-Homeserver-Forwarded"
POSITIONS_HEADER = "X-Homeserver-Positions"


class HomeserverRequest(server.Request):
    """Counts body bytes against the listener's limit and carries a request id."""

    def __init__(self, channel: Any, *args: Any, **kwargs: Any):
        super().__init__(channel, *args, **kwargs)
        self.request_id = "-"
        self.start_time = time.monotonic()
        self.body_too_large = False
        self.requester_name: str | None = None
        self.servlet_name = "unrecognised"
        self._body_bytes = 0
        self._site = getattr(channel, "site", None)
        self._client_ip: str | None = None

    @property
    def max_body_size(self) -> int:
        return int(getattr(self._site, "max_request_body_size", 10 * 1024 * 1024))

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body_size:
            self.body_too_large = True
        super().gotLength(None if self.body_too_large else length)

    def handleContentChunk(self, data: bytes) -> None:
        self._body_bytes += len(data)
        if self._body_bytes > self.max_body_size:
            self.body_too_large = True
            if self._body_bytes > 10 * self.max_body_size and self.transport is not None:
                self.transport.abortConnection()
            return
        super().handleContentChunk(data)

    def client_ip(self) -> str:
        if self._client_ip is None:
            self._client_ip = getattr(self.getClientAddress(), "host", "-")
            if getattr(self._site, "x_forwarded", False):
                forwarded = self.getHeader("x-forwarded-for")
                if forwarded:
                    self._client_ip = forwarded.split(",")[0].strip()
        return self._client_ip

    def loggable_path(self) -> str:
        """The URI with the value of every `access_token` parameter (however its name is
        percent-encoded, as twisted.web decodes it) replaced by `<redacted>`."""
        path, sep, query = self.uri.decode("ascii", "replace").partition("?")
        parts = _QUERY_SEPARATORS.split(query)
        for index in range(0, len(parts), 2):
            name, eq, _ = parts[index].partition("=")
            if eq and unquote_to_bytes(name.replace("+", " ")) == b"access_token":
                parts[index] = name + "=<redacted>"
        return path + sep + "".join(parts)


class Route:
    """One compiled path regex with the handlers of its methods."""

    def __init__(self, pattern: str, name: str):
        self.pattern = re.compile(pattern + "$")
        self.name = name
        self.handlers: dict[str, Handler] = {}


class Router(resource.Resource):
    """A leaf resource dispatching every request by path regex and method."""

    isLeaf = True

    def __init__(self, instance_name: str, positions: Callable[[], dict[str, int]] | None = None):
        super().__init__()
        self.instance_name = instance_name
        self.positions = positions
        self._routes: list[Route] = []
        self._by_pattern: dict[str, Route] = {}

    def register(self, pattern: str, methods: Iterable[str], handler: Handler, name: str = "") -> None:
        route = self._by_pattern.get(pattern)
        if route is None:
            route = self._by_pattern[pattern] = Route(pattern, name or pattern)
            self._routes.append(route)
        for method in methods:
            route.handlers[method] = handler

    def render(self, request: HomeserverRequest) -> int:  # type: ignore[override]
        request.request_id = f"{request.method.decode('ascii', 'replace')}-{next(_request_counter)}"
        request.client_ip()
        for name, value in CORS_HEADERS.items():
            request.setHeader(name, value)
        defer.ensureDeferred(self._handle(request))
        return NOT_DONE_YET

    def _match(self, request: HomeserverRequest) -> tuple[Handler, dict[str, str]]:
        path = request.path.decode("ascii", "replace")
        method = request.method.decode("ascii", "replace")
        path_matched = False
        for route in self._routes:
            match = route.pattern.match(path)
            if not match:
                continue
            path_matched = True
            request.servlet_name = route.name
            handler = route.handlers.get(method) or (route.handlers.get("GET") if method == "HEAD" else None)
            if handler is not None:
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                if any("\x00" in v for v in args.values()):
                    raise MatrixError(400, "Path parameters must not contain NUL characters", "M_INVALID_PARAM")
                return handler, args
        if path_matched:
            raise MatrixError(405, "Unrecognized request", "M_UNRECOGNIZED")
        raise MatrixError(404, "Unrecognized request", "M_UNRECOGNIZED")

    async def _handle(self, request: HomeserverRequest) -> None:
        token = set_request_id(request.request_id)
        try:
            code, body = await self._dispatch(request)
            if self.positions is not None and request.getHeader(INTERNAL_HEADER) is not None:
                request.setHeader(POSITIONS_HEADER, json.dumps(self.positions(), separators=(",", ":")))
            respond(request, code, body)
        finally:
            log_access(request)
            from homeserver.http.context import _request_id

            _request_id.reset(token)

    async def _dispatch(self, request: HomeserverRequest) -> tuple[int, Any]:
        try:
            if request.method == b"OPTIONS":
                return 200, {}
            if request.body_too_large:
                raise MatrixError(413, "Request body too large", "M_TOO_LARGE")
            handler, kwargs = self._match(request)
            return await handler(request, **kwargs)
        except MatrixError as e:
            if e.code >= 500:
                logger.error("Request failed: %s %s", e.code, e.msg)
            return e.code, e.to_json()
        except InteractiveAuthIncomplete as e:
            return 401, e.body
        except defer.CancelledError:
            return 499, {"errcode": "M_UNKNOWN", "error": "Request cancelled"}
        except DatabaseUnavailableError as e:
            logger.warning("%s %s: database unavailable: %s", request.method.decode(), request.loggable_path(), e)
            request.setHeader(b"Retry-After", b"1")
            return 503, {"errcode": "M_UNKNOWN", "error": "The database is unavailable; try again shortly"}
        except Exception:
            logger.error("Unexpected error handling %s %s:\n%s", request.method.decode(), request.loggable_path(), traceback.format_exc())
            return 500, {"errcode": "M_UNKNOWN", "error": f"Internal server error (request {request.request_id})"}


def respond(request: HomeserverRequest, code: int, body: Any) -> None:
    if request._disconnected or request.finished:
        return
    if isinstance(body, RawResponse):
        payload, content_type = body.body, body.content_type.encode("ascii")
    else:
        payload, content_type = encode(body), b"application/json"
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Content-Length", str(len(payload)).encode("ascii"))
    request.setHeader(b"Cache-Control", b"no-cache, no-store, must-revalidate")
    if request.method != b"HEAD":
        request.write(payload)
    request.finish()


def log_access(request: HomeserverRequest) -> None:
    duration = time.monotonic() - request.start_time
    method = request.method.decode("ascii", "replace")
    method_label = method if method in ("GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD") else "other"
    requests_total.labels(method_label, request.servlet_name, str(request.code)).inc()
    request_seconds.labels(request.servlet_name).observe(duration)
    access_logger.info(
        "%s - {%s} %s %s %d %.3fsec %dB \"%s\"",
        request.client_ip(),
        request.requester_name or "",
        request.method.decode("ascii", "replace"),
        request.loggable_path(),
        request.code,
        duration,
        request.sentLength,
        (request.getHeader("user-agent") or "-")[:200],
    )


class HomeserverSite(server.Site):
    requestFactory = HomeserverRequest  # type: ignore[assignment]
    # HTTP/1.1 only, with a deadline for receiving each request (`request_read_timeout`).
    protocol = HomeserverChannel  # type: ignore[assignment]

    def __init__(self, router: Router, max_request_body_size: int, x_forwarded: bool,
                 request_read_timeout: float = DEFAULT_READ_TIMEOUT):
        super().__init__(router)
        self.max_request_body_size = max_request_body_size
        self.x_forwarded = x_forwarded
        self.request_read_timeout = request_read_timeout
        self.noisy = False

    def log(self, request: Any) -> None:
        """Access logging happens in the router, with the request id and user."""
