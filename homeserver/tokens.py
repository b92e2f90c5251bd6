"""The sync token: one string holding the position of every stream a client has seen.

`s<events>_<presence>_<typing>_<receipts>_<account_data>_<push_rules>_<to_device>_<device_lists>`

Keys are only ever appended; a token with fewer keys reads the missing ones as 0, so tokens
issued by an older version stay valid. Every process accepts a token any process issued.
"""

from dataclasses import dataclass, fields, replace

from homeserver.http.errors import MatrixError


@dataclass(frozen=True)
class StreamToken:
    events: int = 0
    presence: int = 0
    typing: int = 0
    receipts: int = 0
    account_data: int = 0
    push_rules: int = 0
    to_device: int = 0
    device_lists: int = 0

    def encode(self) -> str:
        return "s" + "_".join(str(getattr(self, f.name)) for f in fields(self))

    @classmethod
    def parse(cls, token: str) -> "StreamToken":
        if not token.startswith("s"):
            raise MatrixError(400, f"Invalid sync token {token!r}", "M_INVALID_PARAM")
        parts = token[1:].split("_")
        names = [f.name for f in fields(cls)]
        try:
            values = [int(p) for p in parts[: len(names)]]
        except ValueError as e:
            raise MatrixError(400, f"Invalid sync token {token!r}", "M_INVALID_PARAM") from e
        if any(v < 0 for v in values):
            raise MatrixError(400, f"Invalid sync token {token!r}", "M_INVALID_PARAM")
        return cls(**dict(zip(names, values, strict=False)))

    def copy_and_replace(self, key: str, value: int) -> "StreamToken":
        return replace(self, **{key: value})

    def max_with(self, other: "StreamToken") -> "StreamToken":
        """The pointwise maximum: a token never goes backwards."""
        return StreamToken(**{f.name: max(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    def is_after(self, other: "StreamToken") -> bool:
        """True when any stream of this token is ahead of `other`'s."""
        return any(getattr(self, f.name) > getattr(other, f.name) for f in fields(self))
