"""The benchmark runner end to end at its smallest size, against our server only: it must
bring up both shapes, run every scenario and report every figure. No timing is asserted."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIO_FIGURES = [
    "register_users_per_s",
    "send_events_per_s", "send_latency_p50_ms", "send_latency_p95_ms", "send_latency_p99_ms",
    "fanout_latency_p50_ms", "fanout_latency_p95_ms", "fanout_latency_p99_ms",
    "initial_sync_s",
    "messages_page_p50_ms",
]
PROCESSES = {
    "single": ["main"],
    # Named after the Synapse process in the same role, so the table compares like with like.
    "workers": ["main", "event_persister1", "stream_writer1", "generic_worker1", "generic_worker2", "nginx"],
}


def test_bench_runner_smoke(tmp_path: object) -> None:
    out = os.path.join(str(tmp_path), "bench.json")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--servers", "homeserver",
         "--shapes", "single,workers", "--size", "smoke", "--json", out],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out) as f:
        report = json.load(f)
    runs = {(run["server"], run["shape"]): run for run in report["runs"]}
    assert set(runs) == {("homeserver", "single"), ("homeserver", "workers")}
    for shape, processes in PROCESSES.items():
        run = runs[("homeserver", shape)]
        assert run["errors"] == {}, run["errors"]
        assert set(run["pids"]) == set(processes)
        expected = [*SCENARIO_FIGURES, "peak_rss_mb.total",
                    *(f"peak_rss_mb.{name}" for name in processes), *(f"startup_s.{name}" for name in processes)]
        for figure in expected:
            value = run["figures"].get(figure)
            assert isinstance(value, (int, float)) and value > 0, (shape, figure, value)
        # The CPU our processes used while the scenarios ran (they did work, so some).
        assert run["figures"].get("cpu_s.main", 0) > 0, run["figures"]
    # The table names every figure.
    for figure in SCENARIO_FIGURES:
        assert figure in proc.stdout


def test_bench_scaling_smoke(tmp_path: object) -> None:
    """The scaling runner sizes our workers shape as asked and reports send and fan-out for
    each layout."""
    out = os.path.join(str(tmp_path), "scaling.json")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "scaling.py"), "--layouts", "2x1",
         "--size", "smoke", "--json", out],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out) as f:
        run = json.load(f)["runs"]["2x1"]
    assert set(run["pids"]) == {"main", "event_persister1", "event_persister2", "stream_writer1",
                                "generic_worker1", "nginx"}
    for figure in ("send_events_per_s", "fanout_latency_p50_ms"):
        assert run["figures"].get(figure, 0) > 0, (figure, run["figures"])
    assert "cpu s: event persisters" in proc.stdout
