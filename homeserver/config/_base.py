"""The pieces every config section uses: the error type, the raw merged config and its origins."""

from dataclasses import dataclass, field
from typing import Any


class ConfigError(Exception):
    """A config mistake, rendered as one line: `FILE: KEY.PATH: what is wrong`."""

    def __init__(self, message: str, path: str = "", file: str | None = None):
        self.message = message
        self.path = path
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.path) if p]
        return ": ".join(parts + [self.message])


def format_key_path(parts: list[Any]) -> str:
    """`["listeners", 0, "port"]` becomes `listeners[0].port`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class RawConfig:
    """The merged top-level mapping, remembering which file set each top-level key."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def error(self, message: str, *path: Any) -> ConfigError:
        """A ConfigError for the key at `path`, attributed to the file that set it."""
        top = str(path[0]) if path else ""
        file = self.origins.get(top) or (self.files[-1] if self.files else None)
        return ConfigError(message, format_key_path(list(path)), file)


class Section:
    """A config section: the keys it owns (as jsonschema properties) and how to read them."""

    # jsonschema `properties` for the top-level keys this section owns.
    SCHEMA: dict[str, Any] = {}

    def read(self, raw: RawConfig) -> None:
        raise NotImplementedError
