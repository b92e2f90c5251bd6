"""What the benchmark's parts share: a running deployment shape (ours or Synapse's), as the
load generator and the runner see it."""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RunningShape:
    """A deployment brought up for a benchmark run.

    `server` is "homeserver" or "synapse"; `shape` is "single" (one process) or "workers"
    (main + 2 generic workers + an event persister + a stream writer behind nginx). `url` is
    the client base URL (nginx for the workers shape). `pids` maps each server process's name
    to its pid (for RSS sampling); `startup_seconds` maps each process to the time from its
    start to its first answered request. `server_name` is the domain of user ids.
    `stop()` stops every process the shape started (by pid) and frees its database."""

    server: str
    shape: str
    url: str
    server_name: str
    pids: dict[str, int] = field(default_factory=dict)
    startup_seconds: dict[str, float] = field(default_factory=dict)
    stop: Callable[[], None] = lambda: None


def vmrss_kb(pid: int) -> int | None:
    """A process's resident memory (VmRSS) in KiB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None
