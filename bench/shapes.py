"""Our homeserver in the benchmark's two deployment shapes (see bench/README.md), brought up with
the test harness and returned as a `RunningShape`:

- `single`: one main process on a fresh PostgreSQL database, rate limits lifted;
- `workers`: `tests.harness.workers_deployment(proxied=True)`: main, one event persister, one
  stream writer and two generic workers (Synapse's benchmark shape; the scaling runs vary the
  number of persisters and generic workers) on PostgreSQL + Redis, behind a real nginx running the
  routing `homeserver routes` generates.

Each process's start-up time is the time from spawning it to its first 200 on `/health` (for
nginx: to its first answer), measured around the harness's own start, which polls /health.
"""

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.common import RunningShape  # noqa: E402
from tests import harness  # noqa: E402

SHAPES = ("single", "workers")


def role_name(process: str) -> str:
    """The name Synapse's side of the benchmark gives the process in the same role, so the
    table compares like with like: persister1 -> event_persister1, writer1 -> stream_writer1,
    worker1 -> generic_worker1; main and nginx keep theirs."""
    for ours, theirs in (("persister", "event_persister"), ("writer", "stream_writer"), ("worker", "generic_worker")):
        if process.startswith(ours):
            return theirs + process[len(ours):]
    return process


@contextmanager
def _timed_starts(durations: dict[str, float]) -> Iterator[None]:
    """While active, every `ServerProcess.start` and `NginxProxy.start` records its duration
    (spawn to healthy) under the process's name ("nginx" for the proxy)."""
    original_server: Callable[..., Any] = harness.ServerProcess.start
    original_proxy: Callable[..., Any] = harness.NginxProxy.start

    def server_start(self: harness.ServerProcess, *args: Any, **kwargs: Any) -> Any:
        began = time.monotonic()
        result = original_server(self, *args, **kwargs)
        durations[self.name] = time.monotonic() - began
        return result

    def proxy_start(self: harness.NginxProxy, *args: Any, **kwargs: Any) -> Any:
        began = time.monotonic()
        result = original_proxy(self, *args, **kwargs)
        durations["nginx"] = time.monotonic() - began
        return result

    harness.ServerProcess.start = server_start  # type: ignore[method-assign]
    harness.NginxProxy.start = proxy_start  # type: ignore[method-assign]
    try:
        yield
    finally:
        harness.ServerProcess.start = original_server  # type: ignore[method-assign]
        harness.NginxProxy.start = original_proxy  # type: ignore[method-assign]


def start_ours(shape: str, workdir: str | None = None, persisters: int = 1, generic_workers: int = 2) -> RunningShape:
    """Bring up `shape` of our homeserver (`persisters` and `generic_workers` size the workers
    shape). `workdir` is accepted for symmetry with Synapse's side; the harness keeps each
    deployment in its own temporary directory, removed on stop."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: choose from {', '.join(SHAPES)}")
    durations: dict[str, float] = {}
    stack = ExitStack()
    try:
        with _timed_starts(durations):
            if shape == "single":
                server = stack.enter_context(harness.running_server("postgres"))
                url, server_name = server.url, server.server_name
                assert server.process is not None
                pids = {"main": server.process.pid}
            else:
                deployment = stack.enter_context(harness.workers_deployment(
                    proxied=True, persisters=persisters, generic_workers=generic_workers))
                url, server_name = deployment.url, deployment.server_name
                pids = {}
                for name, process in deployment.processes.items():
                    assert process.process is not None
                    pids[role_name(name)] = process.process.pid
                assert deployment.proxy is not None and deployment.proxy.process is not None
                pids["nginx"] = deployment.proxy.process.pid
    except BaseException:
        stack.close()
        raise

    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            stack.close()

    return RunningShape(server="homeserver", shape=shape, url=url, server_name=server_name, pids=pids,
                        startup_seconds={role_name(name): seconds for name, seconds in durations.items()},
                        stop=stop)


if __name__ == "__main__":
    import requests

    for name in sys.argv[1:] or list(SHAPES):
        running = start_ours(name)
        try:
            print(running.shape, running.url, running.server_name, running.pids,
                  {k: round(v, 3) for k, v in running.startup_seconds.items()})
            print(requests.get(running.url + "/_matrix/client/versions", timeout=10).status_code)
        finally:
            running.stop()
