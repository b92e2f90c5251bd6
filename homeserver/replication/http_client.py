"""HTTP replication, the calling side: POST a JSON body to another instance's replication
listener (found in `instance_map`), with the shared secret, an idempotency key in the path,
and retries with backoff while the target restarts, within an overall deadline. Only
loopback/private traffic.

The callee reports the positions of the streams it writes in a response header; the caller
waits until it has seen them, so whatever the call wrote is readable here once it returns."""

import json
import logging
import time
from typing import TYPE_CHECKING, Any

import treq
from prometheus_client import Counter, Histogram
from twisted.internet import task

from homeserver.http.errors import MatrixError
from homeserver.http.server import INTERNAL_HEADER, POSITIONS_HEADER
from homeserver.util.stringutils import random_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

ATTEMPTS = 5
TIMEOUT_SECONDS = 30
# A call gives up (503) after this long, retries included: a target that accepts connections
# but never answers (paused, wedged) must not hold the client's request past its own timeout.
CALL_DEADLINE_SECONDS = 20.0
MIN_ATTEMPT_SECONDS = 1.0
# What a client is told when the process that must serve its request stays unreachable.
UNREACHABLE_MESSAGE = "A server process is temporarily unreachable; try again shortly"

http_calls = Counter(
    "homeserver_replication_http_calls_total", "HTTP replication calls made, by endpoint and outcome", ["endpoint", "outcome"]
)
http_call_seconds = Histogram(
    "homeserver_replication_http_call_seconds", "Time for an HTTP replication call, retries included", ["endpoint"]
)


class ReplicationClient:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def call(self, instance: str, name: str, body: dict[str, Any], txn_id: str | None = None,
                   fence: bool = True) -> dict[str, Any]:
        """Call endpoint `name` on `instance`; the same `txn_id` makes retries safe. With
        `fence`, return once this process has seen what the call wrote (calls made while
        catching up a stream must not wait for that stream)."""
        start = time.perf_counter()
        outcome = "error"
        try:
            result, positions = await self._call(instance, name, body, txn_id)
            outcome = "ok"
        finally:
            http_calls.labels(name, outcome).inc()
            http_call_seconds.labels(name).observe(time.perf_counter() - start)
        if positions and fence:
            await self.hs.replication.wait_for_positions(instance, positions)
        return result

    async def _call(self, instance: str, name: str, body: dict[str, Any], txn_id: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        from twisted.internet import reactor

        location = self.hs.config.worker.location_of(instance)
        if location is None:
            raise MatrixError(503, f"Instance {instance!r} is not in instance_map", "M_UNKNOWN")
        txn_id = txn_id or random_string(16)
        scheme = "https" if location.tls else "http"
        url = f"{scheme}://{location.host}:{location.port}/_synapse/replication/{name}/{txn_id}"
        headers: dict[bytes | str, list[bytes | str]] = {"Content-Type": ["application/json"], INTERNAL_HEADER: ["1"]}
        secret = self.hs.config.worker.replication_secret
        if secret:
            headers["Authorization"] = [f"Bearer {secret}"]
        payload = json.dumps(body).encode("utf-8")
        deadline = time.monotonic() + CALL_DEADLINE_SECONDS
        delay = 0.2
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await treq.post(url, data=payload, headers=headers, timeout=_attempt_timeout(deadline))
                content = await response.content()
                result = json.loads(content) if content else {}
            except Exception as e:  # refused, reset, timed out, garbled: the target may be restarting
                if _out_of_time(attempt, delay, deadline):
                    # The detail (an internal process and the socket error) goes to the log only.
                    logger.warning("Replication call %s to %s failed %d times: %s", name, instance, attempt, e)
                    raise MatrixError(503, UNREACHABLE_MESSAGE, "M_UNKNOWN") from e
                logger.info("Replication call %s to %s failed (%s); retrying", name, instance, e)
                await task.deferLater(reactor, delay, lambda: None)
                delay *= 2
                continue
            if response.code >= 500 and not _out_of_time(attempt, delay, deadline):
                await task.deferLater(reactor, delay, lambda: None)
                delay *= 2
                continue
            if response.code != 200:
                raise MatrixError(response.code, result.get("error", "Replication call failed"),
                                  result.get("errcode", "M_UNKNOWN"),
                                  **{k: v for k, v in result.items() if k not in ("errcode", "error")})
            return result, read_positions(response.headers.getRawHeaders(POSITIONS_HEADER, [b""])[0])
        raise AssertionError("unreachable")


def _attempt_timeout(deadline: float) -> float:
    """How long one attempt may wait for its answer: what is left of the call's deadline."""
    return max(MIN_ATTEMPT_SECONDS, min(TIMEOUT_SECONDS, deadline - time.monotonic()))


def _out_of_time(attempt: int, delay: float, deadline: float) -> bool:
    """Whether a failed attempt was the last: no attempts left, or no time for another."""
    return attempt >= ATTEMPTS or time.monotonic() + delay + MIN_ATTEMPT_SECONDS > deadline


def read_positions(raw: bytes | str | None) -> dict[str, Any]:
    """The callee's stream positions from its response header ({} when absent or garbled)."""
    if not raw:
        return {}
    try:
        positions = json.loads(raw)
    except ValueError:
        return {}
    return positions if isinstance(positions, dict) else {}
