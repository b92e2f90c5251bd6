"""The misroute guard (DESIGN §4): a request that reaches a process which may not serve it
(an endpoint placed on the main process or on a stream's writer) is forwarded to one that can,
and the answer relayed. The reverse proxy's routing is then an optimisation, never a
correctness requirement.

Forwarded requests go to the target's replication listener (its `instance_map` entry), which
also serves the client API for this purpose, carrying the user's own credentials plus the
replication secret; a forwarded request is never forwarded again.
"""

import logging
from typing import TYPE_CHECKING, Any

import treq
from prometheus_client import Counter

from homeserver.http.errors import MatrixError
from homeserver.http.server import INTERNAL_HEADER, POSITIONS_HEADER, HomeserverRequest
from homeserver.http.servlet import RawResponse
from homeserver.replication.http_client import read_positions
from homeserver.routes import Endpoint

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

FORWARDED_HEADER = INTERNAL_HEADER
# Long enough for a forwarded long-poll /sync.
FORWARD_TIMEOUT_SECONDS = 330
_COPIED_HEADERS = ("authorization", "content-type", "user-agent")

forwarded_requests = Counter(
    "homeserver_forwarded_requests_total", "Requests forwarded to a process that may serve them", ["servlet", "target"]
)


class RequestForwarder:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self._logged: set[str] = set()

    def target_for(self, endpoint: Endpoint) -> str:
        if endpoint.placement.startswith("writer:"):
            return self.hs.config.worker.writers_of(endpoint.placement.split(":", 1)[1])[0]
        return "master"

    def is_forwarded(self, request: HomeserverRequest) -> bool:
        return request.getHeader(FORWARDED_HEADER) is not None

    async def forward(self, request: HomeserverRequest, endpoint: Endpoint) -> tuple[int, Any]:
        if self.is_forwarded(request):
            raise MatrixError(503, f"No process here serves {endpoint.name}", "M_UNKNOWN")
        target = self.target_for(endpoint)
        location = self.hs.config.worker.location_of(target)
        if location is None:
            raise MatrixError(503, f"{endpoint.name} is served by {target}, which is missing from instance_map", "M_UNKNOWN")
        if endpoint.name not in self._logged:
            self._logged.add(endpoint.name)
            logger.info("Forwarding %s requests to %s (the reverse proxy sends them here)", endpoint.name, target)
        forwarded_requests.labels(endpoint.name, target).inc()
        headers: dict[bytes | str, list[bytes | str]] = {
            name: [value] for name in _COPIED_HEADERS if (value := request.getHeader(name)) is not None
        }
        headers[FORWARDED_HEADER] = [self.hs.config.worker.replication_secret or "1"]
        headers["X-Forwarded-For"] = [request.client_ip()]
        body = b""
        if request.content is not None:
            request.content.seek(0)
            body = request.content.read()
        scheme = "https" if location.tls else "http"
        url = f"{scheme}://{location.host}:{location.port}{request.uri.decode('ascii')}"
        try:
            response = await treq.request(
                request.method.decode("ascii"), url, data=body or None, headers=headers, timeout=FORWARD_TIMEOUT_SECONDS,
            )
            content = await response.content()
        except Exception as e:
            raise MatrixError(502, f"{target} did not answer: {e}", "M_UNKNOWN") from e
        content_type = response.headers.getRawHeaders("content-type", ["application/json"])[0]
        # Read-your-writes: answer once this process has seen what the target wrote.
        positions = read_positions(response.headers.getRawHeaders(POSITIONS_HEADER, [b""])[0])
        if positions and response.code < 400:
            await self.hs.replication.wait_for_positions(target, positions)
        return response.code, RawResponse(content, content_type)
