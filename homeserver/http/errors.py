"""Matrix errors: every failure a client sees is one of these, rendered as `{errcode, error}`."""

from typing import Any


class MatrixError(Exception):
    """An error with an HTTP status and a Matrix `errcode`."""

    def __init__(self, code: int, msg: str, errcode: str = "M_UNKNOWN", **extra: Any):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.errcode = errcode
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.msg, **self.extra}


def not_found(msg: str = "Not found") -> MatrixError:
    return MatrixError(404, msg, "M_NOT_FOUND")


def forbidden(msg: str) -> MatrixError:
    return MatrixError(403, msg, "M_FORBIDDEN")


def bad_json(msg: str) -> MatrixError:
    return MatrixError(400, msg, "M_BAD_JSON")


def missing_param(name: str) -> MatrixError:
    return MatrixError(400, f"Missing parameter: {name}", "M_MISSING_PARAM")


def invalid_param(msg: str) -> MatrixError:
    return MatrixError(400, msg, "M_INVALID_PARAM")


class InteractiveAuthIncomplete(Exception):
    """User-interactive auth needs another stage; the body is the 401 response."""

    def __init__(self, body: dict[str, Any]):
        super().__init__("user-interactive auth incomplete")
        self.body = body


class LimitExceeded(MatrixError):
    def __init__(self, retry_after_ms: int):
        super().__init__(429, "Too many requests", "M_LIMIT_EXCEEDED", retry_after_ms=retry_after_ms)
        self.retry_after_ms = retry_after_ms
