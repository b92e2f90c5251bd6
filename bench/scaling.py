"""How our workers shape scales on this machine (see bench/README.md): the send and fan-out
scenarios against main + P event persisters + one stream writer + W generic workers behind
nginx, for each (P, W) asked for, with the CPU seconds each part used, so the table shows where
the time goes (our processes, PostgreSQL, Redis, nginx, the load generator).

    .venv/bin/python bench/scaling.py [--layouts 1x1,1x2,1x3,2x2] [--size default] [--json out.json]

A layout is PxW. Prints one table, a column per layout."""

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench import loadgen  # noqa: E402
from bench.run import run_one  # noqa: E402

SCENARIOS = ["send_throughput", "fan_out"]
FIGURES = ["send_events_per_s", "send_latency_p50_ms", "send_latency_p99_ms",
           "fanout_latency_p50_ms", "fanout_latency_p99_ms"]


def parse_layouts(value: str) -> list[tuple[int, int]]:
    layouts = []
    for part in value.split(","):
        persisters, _, workers = part.strip().partition("x")
        if not (persisters.isdigit() and workers.isdigit()) or min(int(persisters), int(workers)) < 1:
            raise argparse.ArgumentTypeError(f"{part!r}: a layout is PxW, e.g. 1x2 (persisters x generic workers)")
        layouts.append((int(persisters), int(workers)))
    return layouts


def cpu_groups(figures: dict[str, float]) -> dict[str, float]:
    """CPU seconds summed by role: generic workers, persisters, the rest of ours, and the rest."""
    groups: dict[str, float] = {}
    for name, seconds in figures.items():
        if not name.startswith("cpu_s."):
            continue
        part = name[len("cpu_s."):]
        role = ("generic workers" if part.startswith("generic_worker") else
                "event persisters" if part.startswith("event_persister") else part)
        groups[role] = groups.get(role, 0.0) + seconds
    return groups


def table(runs: list[tuple[str, dict[str, Any]]]) -> str:
    groups = {label: cpu_groups(run["figures"]) for label, run in runs}
    roles = sorted({role for g in groups.values() for role in g})
    rows = [["figure", *[label for label, _ in runs]]]
    for figure in FIGURES:
        rows.append([figure, *[f"{run['figures'].get(figure, float('nan')):.1f}" for _, run in runs]])
    for role in roles:
        rows.append([f"cpu s: {role}", *[f"{groups[label].get(role, 0.0):.1f}" for label, _ in runs]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    errors = [f"ERROR {label} {where}: {message}" for label, run in runs for where, message in run["errors"].items()]
    return "\n".join(lines + errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layouts", type=parse_layouts, default=parse_layouts("1x1,1x2,1x3,2x2"),
                        help="comma-separated PxW: event persisters x generic workers (default 1x1,1x2,1x3,2x2)")
    parser.add_argument("--size", default="default", choices=sorted(loadgen.SIZES))
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    runs = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as workdir:
        for persisters, workers in args.layouts:
            label = f"{persisters}x{workers}"
            run = run_one("homeserver", "workers", args.size, workdir, SCENARIOS,
                          persisters=persisters, generic_workers=workers)
            runs.append((label, run))
    print(f"size={args.size}  layouts: persisters x generic workers")
    print(table(runs))
    print(f"\ntotal run time {time.monotonic() - began:.0f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "runs": {label: run for label, run in runs}}, f, indent=2)
    return 1 if any(run["errors"] for _, run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
