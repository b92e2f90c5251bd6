"""Run the side-by-side benchmark (see bench/README.md): for each server and deployment shape,
bring the shape up, sample the memory of its processes while the load generator's scenarios
run against it, tear it down; then print one table and optionally write the figures as JSON.

    .venv/bin/python bench/run.py [--servers homeserver,synapse] [--shapes single,workers]
                                  [--size smoke|default] [--json out.json]

Exits non-zero if any scenario (or bringing up a shape) failed; the failure is in the table
and the JSON, the other figures are still reported."""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench import loadgen  # noqa: E402
from bench.common import RunningShape, vmrss_kb  # noqa: E402

SERVERS = ("homeserver", "synapse")
SHAPES = ("single", "workers")
SAMPLE_INTERVAL = 0.2

# Each scenario figure, its unit and which direction is better.
FIGURES: dict[str, tuple[str, str]] = {
    "register_users_per_s": ("users/s", "higher"),
    "send_events_per_s": ("events/s", "higher"),
    "send_latency_p50_ms": ("ms", "lower"),
    "send_latency_p95_ms": ("ms", "lower"),
    "send_latency_p99_ms": ("ms", "lower"),
    "fanout_latency_p50_ms": ("ms", "lower"),
    "fanout_latency_p95_ms": ("ms", "lower"),
    "fanout_latency_p99_ms": ("ms", "lower"),
    "initial_sync_s": ("s", "lower"),
    "messages_page_p50_ms": ("ms", "lower"),
}
RSS_TOTAL = "peak_rss_mb.total"


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- memory ----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(child) for child in f.read().split()]
    except OSError:
        pass
    return found


def _tree(pid: int) -> list[int]:
    """A process and its descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        if current not in found:
            found.append(current)
            pending += _children(current)
    return found


def tree_rss_kb(pid: int) -> int:
    """VmRSS of a process plus its descendants (nginx's workers are children of its master)."""
    return sum(vmrss_kb(p) or 0 for p in _tree(pid))


# --- CPU -------------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _pids_named(command: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == command:
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


class CpuMeter:
    """CPU seconds used between `start()` and `stop()` by each process of the shape (with its
    children), by every PostgreSQL and Redis process on the machine (they serve only the
    benchmark while it runs), and by the load generator itself."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self._before: dict[str, int] = {}

    def _read(self) -> dict[str, int]:
        ticks = {name: sum(_cpu_ticks(p) for p in _tree(pid)) for name, pid in self.pids.items()}
        ticks["postgresql"] = sum(_cpu_ticks(p) for p in _pids_named("postgres"))
        ticks["redis"] = sum(_cpu_ticks(p) for p in _pids_named("redis-server"))
        ticks["loadgen"] = _cpu_ticks(os.getpid())
        return ticks

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        return {name: (after[name] - self._before.get(name, 0)) / _TICKS for name in after}


class RssSampler(threading.Thread):
    """Samples every process's VmRSS every `SAMPLE_INTERVAL` seconds; keeps the peak of each,
    and the peak of their sum."""

    def __init__(self, pids: dict[str, int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak_kb = {name: 0 for name in pids}
        self.peak_total_kb = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        total = 0
        for name, pid in self.pids.items():
            rss = tree_rss_kb(pid)
            self.peak_kb[name] = max(self.peak_kb[name], rss)
            total += rss
        self.peak_total_kb = max(self.peak_total_kb, total)
        self.samples += 1

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(SAMPLE_INTERVAL)

    def finish(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()


# --- one server x shape ------------------------------------------------------------------------


def start_shape(server: str, shape: str, workdir: str, persisters: int = 1, generic_workers: int = 2) -> RunningShape:
    if server == "homeserver":
        from bench.shapes import start_ours

        return start_ours(shape, workdir, persisters=persisters, generic_workers=generic_workers)
    from bench import synapse  # only when asked for: the other side of the comparison

    synapse.ensure_synapse_venv()
    return synapse.start_synapse(shape, workdir)  # type: ignore[no-any-return]


def run_one(server: str, shape: str, size: str, workdir: str, scenarios: list[str] | None = None,
            **shape_sizes: int) -> dict[str, Any]:
    """Bring up `shape` of `server`, run every scenario (or those named) against it, stop it;
    its figures and errors. `shape_sizes` (persisters, generic_workers) size our workers shape."""
    result: dict[str, Any] = {"server": server, "shape": shape, "figures": {}, "errors": {}}
    began = time.monotonic()
    _log(f"{server} / {shape}: starting")
    try:
        running = start_shape(server, shape, os.path.join(workdir, f"{server}-{shape}"), **shape_sizes)
    except Exception as e:
        result["errors"]["start"] = f"{type(e).__name__}: {e}"
        _log(f"{server} / {shape}: did not start: {e}")
        return result
    result.update(url=running.url, server_name=running.server_name, pids=dict(running.pids))
    figures: dict[str, float] = result["figures"]
    sampler = RssSampler(running.pids)
    sampler.start()
    cpu = CpuMeter(running.pids)
    cpu.start()
    loadgen.RETRIES["429"] = 0
    try:
        for name, scenario in loadgen.SCENARIOS.items():
            if scenarios is not None and name not in scenarios:
                continue
            sizes = loadgen.SIZES[size][name]
            scenario_began = time.monotonic()
            try:
                figures.update(scenario(running.url, running.server_name, **sizes))
            except Exception as e:
                result["errors"][name] = f"{type(e).__name__}: {e}"
                _log(f"{server} / {shape}: {name} failed:\n{traceback.format_exc()}")
            _log(f"{server} / {shape}: {name} {sizes} took {time.monotonic() - scenario_began:.1f}s")
    finally:
        cpu_seconds = cpu.stop()
        sampler.finish()
        running.stop()
    for name, seconds in cpu_seconds.items():
        figures[f"cpu_s.{name}"] = seconds
    for name, kb in sampler.peak_kb.items():
        figures[f"peak_rss_mb.{name}"] = kb / 1024
    figures[RSS_TOTAL] = sampler.peak_total_kb / 1024
    for name, seconds in running.startup_seconds.items():
        figures[f"startup_s.{name}"] = seconds
    missing = set(running.pids) - set(running.startup_seconds)
    if missing:
        result["errors"]["startup"] = f"no start-up time for {', '.join(sorted(missing))}"
    result["rss_samples"] = sampler.samples
    result["retries_429"] = loadgen.RETRIES["429"]
    result["seconds"] = time.monotonic() - began
    _log(f"{server} / {shape}: done in {result['seconds']:.1f}s")
    return result


# --- the table ---------------------------------------------------------------------------------


def describe(figure: str) -> tuple[str, str]:
    """(unit, which direction is better) of a figure."""
    if figure in FIGURES:
        return FIGURES[figure]
    if figure.startswith("peak_rss_mb."):
        return "MB", "lower"
    if figure.startswith("startup_s."):
        return "s", "lower"
    if figure.startswith("cpu_s."):
        return "s", "lower"
    return "", ""


def _format(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 1 else f"{value:.2f}"


def table(runs: list[dict[str, Any]], shapes: list[str]) -> str:
    by_key = {(run["server"], run["shape"]): run for run in runs}
    names = list(FIGURES)
    extra: list[str] = []
    for run in runs:
        extra += [name for name in run["figures"] if name not in FIGURES and name not in extra]
    rss = sorted(n for n in extra if n.startswith("peak_rss_mb.") and n != RSS_TOTAL)
    startup = sorted(n for n in extra if n.startswith("startup_s."))
    cpu = sorted(n for n in extra if n.startswith("cpu_s."))
    names += [RSS_TOTAL, *rss, *startup, *cpu]

    header = ["figure", "unit", "better"]
    for shape in shapes:
        header += [f"{shape}: ours", f"{shape}: synapse", f"{shape}: ours/syn"]
    rows = [header]
    for name in names:
        unit, better = describe(name)
        row = [name, unit, better]
        for shape in shapes:
            values = []
            for server in SERVERS:
                found = by_key.get((server, shape))
                values.append(found["figures"].get(name) if found else None)
            ours, theirs = values
            ratio = ours / theirs if ours is not None and theirs else None
            row += [_format(ours), _format(theirs), f"{ratio:.2f}" if ratio is not None else "-"]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    errors = [f"ERROR {run['server']} / {run['shape']} {where}: {message}"
              for run in runs for where, message in run["errors"].items()]
    notes = [f"note: {run['server']} / {run['shape']} waited out {run['retries_429']} HTTP 429 answers"
             for run in runs if run.get("retries_429")]
    footer = ["", "ratio = ours / synapse: above 1 is better for ours where higher is better, below 1 where"
                  " lower is better. RSS is per process incl. children (nginx: master + workers). cpu_s: CPU"
                  " seconds used during the scenarios (postgresql/redis: every such process on the machine)."]
    return "\n".join(lines + footer + notes + errors)


# The targets the issue sets, as (figure, which ratio passes): ours / Synapse at most or at least.
RATIO_TARGETS: list[tuple[str, str, float]] = [
    ("send_events_per_s", ">=", 3.0),
    ("fanout_latency_p50_ms", "<=", 0.5),
    ("fanout_latency_p99_ms", "<=", 0.5),
    ("initial_sync_s", "<=", 0.5),
]
RSS_TARGET = 0.5
STARTUP_TARGET_S = 1.0


def _target_line(label: str, value: float | None, op: str, limit: float, unit: str = "") -> tuple[str, bool]:
    if value is None:
        return f"  MISSING  {label}", False
    ok = value >= limit if op == ">=" else value <= limit
    return f"  {'PASS' if ok else 'MISS':7}  {label}: {value:.2f}{unit} (target {op} {limit:g}{unit})", ok


def targets(runs: list[dict[str, Any]], shapes: list[str]) -> tuple[str, bool]:
    """The issue's targets checked against this run: each ratio, the RSS of each of our
    processes against Synapse's process in the same role (nginx excepted), and every one of
    our processes serving within a second. Returns the report and whether all held."""
    by_key = {(run["server"], run["shape"]): run["figures"] for run in runs}
    lines, all_ok = ["targets (ours / Synapse, from this run):"], True
    for shape in shapes:
        ours, theirs = by_key.get(("homeserver", shape)), by_key.get(("synapse", shape))
        if ours is None or theirs is None:
            continue
        checks = []
        for figure, op, limit in RATIO_TARGETS:
            ratio = ours[figure] / theirs[figure] if figure in ours and theirs.get(figure) else None
            checks.append(_target_line(f"{shape} {figure} ratio", ratio, op, limit))
        for figure in sorted(f for f in ours if f.startswith("peak_rss_mb.") and f not in (RSS_TOTAL, "peak_rss_mb.nginx")):
            ratio = ours[figure] / theirs[figure] if theirs.get(figure) else None
            checks.append(_target_line(f"{shape} {figure} ratio", ratio, "<=", RSS_TARGET))
        for figure in sorted(f for f in ours if f.startswith("startup_s.") and f != "startup_s.nginx"):
            checks.append(_target_line(f"{shape} {figure}", ours[figure], "<=", STARTUP_TARGET_S, " s"))
        for line, ok in checks:
            lines.append(line)
            all_ok = all_ok and ok
    return "\n".join(lines), all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated: homeserver, synapse")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated: single, workers")
    parser.add_argument("--size", default="default", choices=sorted(loadgen.SIZES))
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--workdir", help="where servers keep their files (default: a temporary directory)")
    parser.add_argument("--persisters", type=int, default=1, help="event persisters in our workers shape (default 1)")
    parser.add_argument("--generic-workers", type=int, default=2,
                        help="generic workers in our workers shape (default 2)")
    parser.add_argument("--scenarios", help="comma-separated subset of: " + ", ".join(loadgen.SCENARIOS))
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for value, allowed, what in ((servers, SERVERS, "servers"), (shapes, SHAPES, "shapes")):
        if not value or set(value) - set(allowed):
            parser.error(f"--{what}: choose from {', '.join(allowed)}")
    scenarios = [name.strip() for name in args.scenarios.split(",")] if args.scenarios else None
    if scenarios is not None and set(scenarios) - set(loadgen.SCENARIOS):
        parser.error(f"--scenarios: choose from {', '.join(loadgen.SCENARIOS)}")
    if min(args.persisters, args.generic_workers) < 1:
        parser.error("--persisters and --generic-workers must be at least 1")

    began = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        workdir = args.workdir or scratch
        for shape in shapes:
            for server in servers:
                runs.append(run_one(server, shape, args.size, workdir, scenarios,
                                    persisters=args.persisters, generic_workers=args.generic_workers))
    elapsed = time.monotonic() - began

    print(f"size={args.size}  sizes={json.dumps(loadgen.SIZES[args.size])}")
    print(table(runs, shapes))
    report, _ = targets(runs, shapes)
    print("\n" + report)
    print(f"\ntotal run time {elapsed:.0f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "sizes": loadgen.SIZES[args.size], "servers": servers, "shapes": shapes,
                       "seconds": elapsed, "units": {name: describe(name)[0] for run in runs for name in run["figures"]},
                       "better": {name: describe(name)[1] for run in runs for name in run["figures"]},
                       "persisters": args.persisters, "generic_workers": args.generic_workers,
                       "runs": runs}, f, indent=2)
    return 1 if any(run["errors"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
