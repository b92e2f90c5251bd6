"""Fuzzing from the spec: every Client-Server operation of the Matrix spec's OpenAPI files that
the server implements (see `homeserver.routes.ROUTES`) gets requests generated from its
parameters and request body schema, with a real user's token, with none and with a bogus one.
Every response must satisfy `tests.fuzz.checks.response_problems`: no 5xx, Matrix error bodies,
and success bodies that match the operation's response schema.

A bounded number of examples per operation (HS_FUZZ_EXAMPLES, default 30) keeps this module
short enough for CI; `scripts/fuzz.sh` runs it with many more. See docs/fuzzing.md."""

import json
import os
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import HealthCheck, Phase, assume, event, given, note, settings
from hypothesis import strategies as st

from tests.fuzz.checks import response_problems
from tests.fuzz.spec_operations import Operation, load_operations, route_for
from tests.fuzz.strategies import World, body_value, path_value, query_values
from tests.fuzz.world import build_world
from tests.harness import ServerProcess, running_server

EXAMPLES = int(os.environ.get("HS_FUZZ_EXAMPLES", "30"))
# A long run (scripts/fuzz.sh) explores new inputs each time; CI repeats the same ones.
RANDOM = os.environ.get("HS_FUZZ_RANDOM", "") == "1"

OPERATIONS = load_operations()
FUZZED = [op for op in OPERATIONS if route_for(op) is not None]
SKIPPED = [op for op in OPERATIONS if route_for(op) is None]
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "fuzzing.md")

# Operations that end the session, lock the user out of their room or take away their power in
# it: each authenticated example of these runs as a user registered for it, in a room of its own.
ISOLATED = {
    ("POST", "/_matrix/client/v3/logout"),
    ("POST", "/_matrix/client/v3/logout/all"),
    ("POST", "/_matrix/client/v3/account/deactivate"),
    ("POST", "/_matrix/client/v3/account/password"),
    ("POST", "/_matrix/client/v3/delete_devices"),
    ("DELETE", "/_matrix/client/v3/devices/{deviceId}"),
    ("POST", "/_matrix/client/v3/rooms/{roomId}/leave"),
    ("POST", "/_matrix/client/v3/rooms/{roomId}/forget"),
    ("POST", "/_matrix/client/v3/rooms/{roomId}/kick"),
    ("POST", "/_matrix/client/v3/rooms/{roomId}/ban"),
    ("POST", "/_matrix/client/v3/rooms/{roomId}/upgrade"),
    ("PUT", "/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}"),
}
MAX_URL_LENGTH = 15 * 1024
# Request bodies with a `user_id` naming a member, where the other user is the interesting one.
TARGETS_A_USER = {"invite", "kick", "ban", "unban"}

# The config of the fuzzed server: the harness's (rate limits lifted) plus the limits it keeps.
OVERRIDES: dict[str, Any] = {
    "rc_presence": {"per_user": {"per_second": 10000, "burst_count": 10000}},
    "rc_reports": {"per_second": 10000, "burst_count": 10000},
}


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ServerProcess]:
    with running_server("postgres", **OVERRIDES) as server:
        yield server


@pytest.fixture(scope="module")
def world(fuzz_server: ServerProcess) -> World:
    return build_world(fuzz_server.url, fuzz_server.server_name)


def adjust_body(operation: Operation) -> Any:
    """A function putting real ids into a generated body of `operation` now and then (a
    random user id or password would only ever be refused), or None."""
    last = operation.path.rsplit("/", 1)[-1]
    uses_auth = operation.body_schema is not None and "auth" in operation.body_schema.get("properties", {})

    def adjust(body: Any, world: World) -> st.SearchStrategy[Any]:
        if not isinstance(body, dict):
            return st.just(body)
        choices = [st.just(body)]
        if last in TARGETS_A_USER:
            choices.append(st.sampled_from([world.other_user_id, world.user_id]).map(
                lambda user: {**body, "user_id": user}))
        if uses_auth:
            password_auth = {"type": "m.login.password", "password": world.password,
                             "identifier": {"type": "m.id.user", "user": world.user_id}}
            choices.append(st.just({**body, "auth": password_auth}))
        if operation.path.endswith("/keys/query"):
            choices.append(st.just({**body, "device_keys": {world.user_id: [], world.other_user_id: []}}))
        return st.one_of(choices)

    return adjust


def build_path(operation: Operation, values: dict[str, str]) -> str:
    path = operation.path
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(value, safe="", errors="surrogatepass"))
    return path


@pytest.mark.parametrize("operation", FUZZED, ids=[op.id for op in FUZZED])
def test_operation(operation: Operation, fuzz_server: ServerProcess, world: World) -> None:
    session = requests.Session()
    isolated = (operation.method, operation.path) in ISOLATED
    adjust = adjust_body(operation)

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        token_kind = data.draw(st.sampled_from(["user", "user", "user", "none", "bogus"]), label="token")
        actor = world
        if token_kind == "user" and isolated:
            actor = build_world(fuzz_server.url, fuzz_server.server_name, full=False)
            actor.other_user_id = world.other_user_id
            actor.alias = world.alias
        path_values = {
            p.name: data.draw(path_value(p, actor), label=p.name) for p in operation.path_parameters()
        }
        query = data.draw(query_values(operation.query_parameters(), actor), label="query")
        body = data.draw(body_value(operation, actor, adjust), label="body")
        headers = {}
        if token_kind == "user":
            headers["Authorization"] = f"Bearer {actor.access_token}"
        elif token_kind == "bogus":
            headers["Authorization"] = f"Bearer fuzz_{secrets.token_hex(8)}"
        url = fuzz_server.url + build_path(operation, path_values)
        if query:
            url += "?" + urlencode(query, doseq=True, errors="surrogatepass")
        # Twisted refuses a request line and headers over 16 KiB (`HTTPChannel.totalHeadersSize`)
        # before the server sees the request, with a bare 400 or a closed connection; Synapse
        # shares the limit. Requests stay below it so the answers are the server's own.
        assume(len(url) < MAX_URL_LENGTH)
        payload = None
        if body is not None or operation.method in ("PUT", "POST"):
            payload = json.dumps(body if body is not None else {}).encode()
            headers["Content-Type"] = "application/json"
        response = session.request(operation.method, url, data=payload, headers=headers, timeout=30)
        event(f"{operation.method} -> {response.status_code}")
        note(f"{operation.method} {url}\nbody: {payload!r}\n-> {response.status_code} {response.text[:1000]}")
        problems = response_problems(operation, response)
        assert not problems, "\n".join(problems)

    fuzz()


def test_skipped_operations_are_documented() -> None:
    """docs/fuzzing.md names every spec operation the server has no route for."""
    with open(DOCS) as f:
        docs = f.read()
    assert FUZZED and SKIPPED
    missing = [op.id for op in SKIPPED if f"`{op.method} {op.path}`" not in docs]
    assert not missing, f"not listed in docs/fuzzing.md: {missing}"
