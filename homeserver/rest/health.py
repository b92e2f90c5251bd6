"""`/health` (liveness for load balancers and synctl) and `/_synapse/metrics` (Prometheus)."""

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from homeserver.http.servlet import RawResponse, RestServlet


class HealthServlet(RestServlet):
    async def on_GET(self, request: Any) -> tuple[int, Any]:
        return 200, RawResponse(b"OK", "text/plain; charset=utf-8")


class MetricsServlet(RestServlet):
    async def on_GET(self, request: Any) -> tuple[int, Any]:
        return 200, RawResponse(generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
