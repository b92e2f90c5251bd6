"""What every response of a fuzzed request must satisfy."""

import functools
import json
import os
from typing import Any

import jsonschema
import requests

from tests.fuzz.spec_operations import SPEC_DIR, Operation, inline_refs, load_yaml

# Deliberate departures from the response schemas, kept for Synapse and client-library
# compatibility (each is documented and tested elsewhere; see docs/fuzzing.md):
# - fields that are null instead of absent: the device keys (matrix-nio's DevicesResponse
#   requires them, see homeserver/handlers/devices.py) and the profile of /joined_members (like
#   Synapse, see tests/rooms/test_messages.py::test_joined_members);
DELIBERATE_NULLS: dict[str, set[str]] = {
    "/_matrix/client/v3/devices": {"display_name", "last_seen_ip", "last_seen_ts"},
    "/_matrix/client/v3/devices/{deviceId}": {"display_name", "last_seen_ip", "last_seen_ts"},
    "/_matrix/client/v3/rooms/{roomId}/joined_members": {"display_name", "avatar_url"},
}
# - `{}` from /voip/turnServer when no TURN server is configured (like Synapse; see
#   docs/user_data.md and tests/sync_a/test_profile.py::test_turn_server_without_configuration).
DELIBERATE_EMPTY = {"/_matrix/client/v3/voip/turnServer"}


def _drop_nulls(value: Any, keys: set[str]) -> Any:
    """`value` without the members named in `keys` whose value is null, at any depth."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v, keys) for k, v in value.items() if not (k in keys and v is None)}
    if isinstance(value, list):
        return [_drop_nulls(v, keys) for v in value]
    return value


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(schema_json))


def _is_matrix_error(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("errcode"), str) and isinstance(body.get("error"), str)


@functools.cache
def _auth_response_schema() -> str:
    path = os.path.join(SPEC_DIR, "definitions", "auth_response.yaml")
    return json.dumps(inline_refs(load_yaml(path), path), sort_keys=True)


def _is_interactive_auth(operation: Operation, status: int, body: Any) -> bool:
    """A 401 of user-interactive authentication: the spec gives it a body of its own (`flows`,
    `params`, `session`, and `errcode` only after a failed stage). Some operations that use it
    (POST /keys/device_signing/upload) declare no 401, so the shared definition is used."""
    schema = operation.responses.get(status)
    schema_json = json.dumps(schema, sort_keys=True) if schema else _auth_response_schema()
    return (
        status == 401 and isinstance(body, dict) and "flows" in body
        and not list(_validator(schema_json).iter_errors(body))
    )


def response_problems(operation: Operation, response: requests.Response) -> list[str]:
    """Why `response` breaks the fuzzing assertions (empty when it does not):

    - no 5xx, ever;
    - a non-2xx body is a Matrix error: a JSON object with a string `errcode` and `error`
      (or, for a 401 of user-interactive auth, the body the spec gives it);
    - a 2xx body validates against the operation's schema for that status, when it has one.
    """
    status = response.status_code
    if status >= 500:
        return [f"server error {status}: {response.text[:500]}"]
    try:
        body = response.json()
    except ValueError:
        if 200 <= status < 300 and operation.responses.get(status) is None:
            return []
        return [f"{status} with a body that is not JSON: {response.text[:200]!r}"]
    if not 200 <= status < 300:
        if _is_matrix_error(body) or _is_interactive_auth(operation, status, body):
            return []
        return [f"{status} with a body that is not a Matrix error: {response.text[:500]}"]
    schema = operation.responses.get(status)
    if schema is None or (body == {} and operation.path in DELIBERATE_EMPTY):
        return []
    body = _drop_nulls(body, DELIBERATE_NULLS.get(operation.path, set()))
    errors = sorted(_validator(json.dumps(schema, sort_keys=True)).iter_errors(body), key=lambda e: list(e.path))
    return [
        f"{status} body breaks the spec schema at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
        for e in errors[:5]
    ]
