"""Housekeeping jobs, run by one process of the deployment: the one named by
`run_background_tasks_on` (the main process unless configured otherwise). Every other
process leaves them alone, so they never run twice.

Jobs that belong to a stream's writer (presence and typing timeouts) run there instead;
see handlers/presence.py and handlers/typing.py.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from twisted.internet import defer, task

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
# The first run waits a little, so that start-up is not slowed down by housekeeping.
FIRST_RUN_DELAY_SECONDS = 2.0

job_runs = Counter("homeserver_background_job_runs_total", "Background job runs", ["job", "outcome"])
job_rows = Counter("homeserver_background_job_rows_total", "Rows removed by background jobs", ["job"])


@dataclass(frozen=True)
class Job:
    name: str
    interval_seconds: float
    run: Callable[[], Awaitable[int | None]]


class BackgroundJobs:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.enabled = hs.instance_name == hs.config.worker.run_background_tasks_on
        self._loops: list[task.LoopingCall] = []

    def jobs(self) -> list[Job]:
        stores = self.hs.stores
        return [
            Job("prune_cache_invalidations", 600, lambda: stores.caches.prune(HOUR_MS)),
            Job("prune_ui_auth_sessions", 3600, lambda: stores.ui_auth.delete_old_sessions(2 * DAY_MS)),
            Job("prune_to_device", 3600, lambda: stores.to_device.prune(DAY_MS)),
            Job("prune_event_push_actions", 3600, lambda: stores.event_push_actions.prune(30 * DAY_MS)),
        ]

    def start(self) -> None:
        if not self.enabled:
            return
        from twisted.internet import reactor as twisted_reactor

        reactor: Any = twisted_reactor
        for job in self.jobs():
            loop = task.LoopingCall(self._run, job)
            self._loops.append(loop)
            reactor.callLater(FIRST_RUN_DELAY_SECONDS, loop.start, job.interval_seconds)
        logger.info("Running background jobs: %s", ", ".join(job.name for job in self.jobs()))

    def _run(self, job: Job) -> "defer.Deferred[None]":
        async def run() -> None:
            try:
                removed = await job.run()
            except Exception:
                job_runs.labels(job.name, "error").inc()
                logger.exception("Background job %s failed; it runs again in %ds", job.name, job.interval_seconds)
                return
            job_runs.labels(job.name, "ok").inc()
            if removed:
                job_rows.labels(job.name).inc(removed)

        return defer.ensureDeferred(run())
