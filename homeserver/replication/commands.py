"""The replication commands: one line each, `NAME <json>`.

- `POSITION {stream, instance, position}`: a writer has persisted everything of the stream up
  to `position`; readers catch up from the database to it.
- `REPLICATE {}`: ask every writer to announce its positions (sent on (re)connect).
- `PING {instance}`: liveness.
"""

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Command:
    name: str
    body: dict[str, Any]

    def encode(self) -> str:
        return f"{self.name} {json.dumps(self.body, separators=(',', ':'))}"


class CommandError(ValueError):
    """A line that is not a well-formed command."""


def parse_command(line: str) -> Command:
    name, _, payload = line.partition(" ")
    if not name.isupper():
        raise CommandError(f"not a command: {line[:80]!r}")
    try:
        body = json.loads(payload) if payload else {}
    except ValueError as e:
        raise CommandError(f"bad payload for {name}: {e}") from e
    if not isinstance(body, dict):
        raise CommandError(f"payload of {name} is not an object")
    return Command(name, body)


def position(stream: str, instance: str, value: int) -> Command:
    return Command("POSITION", {"stream": stream, "instance": instance, "position": value})


def replicate(instance: str) -> Command:
    return Command("REPLICATE", {"instance": instance})
