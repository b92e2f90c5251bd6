"""The replication commands: one line each, `NAME <json>`.

- `POSITION {stream, instance, position}`: a writer has persisted everything of the stream up
  to `position`; readers catch up from the database to it.
- `REPLICATE {}`: ask every writer to announce its positions (sent on (re)connect).
- `PING {instance, nonce, started}`: liveness, once a second; also tells apart two processes
  wrongly started with one name.
- `USER_SYNC {instance, user_id, active, presence}`: a user started (`active`, with the
  `set_presence` of the sync) or stopped syncing on a process that does not write presence.
- `CLEAR_USER_SYNC {instance}`: forget every sync the instance reported (sent on (re)connect,
  followed by a `USER_SYNC` for each sync still running).
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


def user_sync(instance: str, user_id: str, active: bool, presence: str | None = None) -> Command:
    body: dict[str, Any] = {"instance": instance, "user_id": user_id, "active": active}
    if presence is not None:
        body["presence"] = presence
    return Command("USER_SYNC", body)


def clear_user_sync(instance: str) -> Command:
    return Command("CLEAR_USER_SYNC", {"instance": instance})
