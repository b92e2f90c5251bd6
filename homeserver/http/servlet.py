"""Servlet base class and request parsing helpers that answer bad input with Matrix errors."""

from typing import TYPE_CHECKING, Any

from twisted.web.server import Request

from homeserver.http.errors import MatrixError, bad_json, invalid_param, missing_param
from homeserver.util.jsonutil import JsonDecodeError, decode_strict

if TYPE_CHECKING:
    from homeserver.server import HomeServer

_MISSING = object()

# How deeply arrays and objects may nest in a request body. Handling an event copies and
# encodes its content recursively, which fails (as a 500) a few hundred levels down.
MAX_JSON_DEPTH = 100
# Calls between processes carry client content a few levels deeper (an event's content inside
# its PDU inside the call's body), so they are allowed some more.
INTERNAL_JSON_DEPTH = MAX_JSON_DEPTH + 16
_INTERNAL_PREFIX = b"/_synapse/replication/"


class RestServlet:
    """A servlet implements `on_GET`, `on_POST`, ... as `async def on_X(request, **path_args)`,
    returning `(status, json_body)`."""

    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    def methods(self) -> list[str]:
        return [m for m in ("GET", "POST", "PUT", "DELETE", "HEAD") if hasattr(self, f"on_{m}")]


class RawResponse:
    """A non-JSON response body (metrics text, health check)."""

    def __init__(self, body: bytes, content_type: str):
        self.body = body
        self.content_type = content_type


def parse_json_value(request: Request) -> Any:
    content = request.content.read() if request.content else b""
    if not content:
        raise MatrixError(400, "Content not JSON.", "M_NOT_JSON")
    max_depth = INTERNAL_JSON_DEPTH if (request.path or b"").startswith(_INTERNAL_PREFIX) else MAX_JSON_DEPTH
    try:
        value = decode_strict(content)
    except JsonDecodeError as e:
        if isinstance(e.__cause__, RecursionError):
            raise _too_deep(max_depth) from e
        raise MatrixError(400, f"Content not JSON: {e}", "M_NOT_JSON") from e
    check_json_value(value, max_depth)
    return value


def _too_deep(max_depth: int) -> MatrixError:
    return MatrixError(400, f"Content not JSON: nested more than {max_depth} levels deep", "M_NOT_JSON")


def _check_string(text: str) -> None:
    """A lone UTF-16 surrogate (`"\\ud800"`) decodes to a string that cannot be stored or
    sent on as UTF-8."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise MatrixError(400, "Content not JSON: a string holds a lone surrogate", "M_NOT_JSON") from e


def check_json_value(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a decoded body nested deeper than `max_depth` or holding strings that are not
    valid Unicode. Iterative, so that no body can exhaust the stack here."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise _too_deep(max_depth)
            if isinstance(item, dict):
                for key in item:
                    _check_string(key)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def parse_json_object(request: Request, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is `{}` when `allow_empty`."""
    if allow_empty and request.content is not None:
        pos = request.content.tell()
        empty = not request.content.read(1)
        request.content.seek(pos)
        if empty:
            return {}
    value = parse_json_value(request)
    if not isinstance(value, dict):
        raise bad_json("Content must be a JSON object.")
    return value


def query_arg(request: Request, name: str) -> str | None:
    values = (request.args or {}).get(name.encode("ascii"))
    if not values:
        return None
    if b"\x00" in values[0]:
        raise invalid_param(f"Query parameter {name!r} must not contain NUL characters")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid_param(f"Query parameter {name!r} is not valid UTF-8") from e


def parse_string(request: Request, name: str, default: Any = _MISSING, allowed: list[str] | None = None) -> Any:
    value = query_arg(request, name)
    if value is None:
        if default is _MISSING:
            raise missing_param(name)
        return default
    if allowed is not None and value not in allowed:
        raise invalid_param(f"Query parameter {name!r} must be one of {', '.join(allowed)}")
    return value


def parse_integer(request: Request, name: str, default: Any = _MISSING, minimum: int | None = None) -> Any:
    value = query_arg(request, name)
    if value is None:
        if default is _MISSING:
            raise missing_param(name)
        return default
    try:
        number = int(value)
    except ValueError as e:
        raise invalid_param(f"Query parameter {name!r} must be an integer") from e
    if minimum is not None and number < minimum:
        raise invalid_param(f"Query parameter {name!r} must be at least {minimum}")
    return number


def parse_boolean(request: Request, name: str, default: bool = False) -> bool:
    value = query_arg(request, name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise invalid_param(f"Query parameter {name!r} must be true or false")
    return value == "true"


def body_field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], required: bool = True, default: Any = None) -> Any:
    """A typed field of a JSON body: missing -> M_MISSING_PARAM, wrong type -> M_BAD_JSON."""
    if name not in body or body[name] is None and not required:
        if required:
            raise missing_param(name)
        return default
    value = body[name]
    if isinstance(value, bool) and kind in (int, float) or not isinstance(value, kind):
        raise bad_json(f"Field {name!r} has the wrong type")
    if isinstance(value, str) and "\x00" in value:
        raise invalid_param(f"Field {name!r} must not contain NUL characters")
    return value
