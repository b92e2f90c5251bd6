"""Servlet base class and request parsing helpers that answer bad input with Matrix errors."""

from typing import TYPE_CHECKING, Any

from twisted.web.server import Request

from homeserver.http.errors import MatrixError, bad_json, invalid_param, missing_param
from homeserver.util.jsonutil import JsonDecodeError, decode_strict

if TYPE_CHECKING:
    from homeserver.server import HomeServer

_MISSING = object()


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
    try:
        return decode_strict(content)
    except JsonDecodeError as e:
        raise MatrixError(400, f"Content not JSON: {e}", "M_NOT_JSON") from e


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
