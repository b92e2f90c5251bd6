"""Exceptions raised by the event layer.

`AuthError` means an event breaks the authorization rules of its room version (clients
see it as 403 M_FORBIDDEN); `EventValidationError` means a PDU is malformed or too big,
and carries the Matrix error code the client should receive.
"""


class AuthError(Exception):
    """An event is not allowed by the authorization rules; `msg` says why."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class EventValidationError(Exception):
    """A PDU fails structural validation; `errcode` is the Matrix error code to return."""

    def __init__(self, errcode: str, msg: str) -> None:
        super().__init__(f"{errcode}: {msg}")
        self.errcode = errcode
        self.msg = msg
