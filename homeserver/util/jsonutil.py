"""JSON encoding and strict decoding of request bodies.

Requests are decoded strictly: duplicate keys, NaN/Infinity and integers outside the canonical
JSON range are rejected, because events signed from such input could not be verified by others.
"""

import json
from typing import Any

CANONICAL_INT_MIN = -(2**53) + 1
CANONICAL_INT_MAX = 2**53 - 1

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class JsonDecodeError(ValueError):
    """The body is not acceptable JSON; the message says why."""


def _reject_constant(name: str) -> Any:
    raise JsonDecodeError(f"Invalid JSON value: {name}")


def _parse_int(text: str) -> int:
    value = int(text)
    if not CANONICAL_INT_MIN <= value <= CANONICAL_INT_MAX:
        raise JsonDecodeError(f"Integer out of range: {text}")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonDecodeError(f"Duplicate key in JSON object: {key!r}")
        result[key] = value
    return result


_decoder = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_reject_constant,
    parse_int=_parse_int,
)


def decode_strict(data: bytes) -> Any:
    """Decode a request body; raises JsonDecodeError on anything that is not clean JSON."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonDecodeError("Body is not valid UTF-8") from e
    try:
        return _decoder.decode(text)
    except JsonDecodeError:
        raise
    except (ValueError, RecursionError) as e:
        raise JsonDecodeError(f"Body is not valid JSON: {e}") from e


def encode(value: Any) -> bytes:
    """Compact JSON for responses. A lone UTF-16 surrogate (which no request body can bring
    in, but stored data from elsewhere might) is written as its `\\uXXXX` escape."""
    text = _encoder.encode(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")  # gives \\udXXX, a valid JSON escape
