"""The HTTP framework end to end, against real server processes: routing and Matrix errors,
CORS, strict JSON bodies, the body size limit, rate limits, the access log (and that it never
holds access tokens), /health and Prometheus metrics, and 500s without tracebacks."""

import http.client
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest
import requests

from tests.harness import ENGINES, Client, ServerProcess, free_port, running_server
from tests.spec import assert_matches_spec

VERSIONS = "/_matrix/client/versions"
LOGIN = "/_matrix/client/v3/login"
REGISTER = "/_matrix/client/v3/register"

# Prefix of every log line: "time - logger - line - LEVEL - request id - message".
ACCESS_LINE = re.compile(
    r" - homeserver\.access - \d+ - INFO - (?P<request_id>\S+) - (?P<ip>\S+) - \{(?P<user>[^}]*)\} "
    r"(?P<method>[A-Z]+) (?P<path>\S+) (?P<code>\d{3}) "
)


def wait_for_log(server: ServerProcess, predicate: Callable[[str], bool], timeout: float = 5.0) -> str:
    """The server's log once `predicate` holds for it (log lines are written after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        log = server.log()
        if predicate(log) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def access_lines(log: str) -> list[re.Match[str]]:
    return [m for m in (ACCESS_LINE.search(line) for line in log.splitlines()) if m]


def assert_error(resp: requests.Response, status: int, *errcodes: str) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["errcode"] in errcodes, body
    assert isinstance(body["error"], str)
    return body  # type: ignore[no-any-return]


def assert_cors(resp: requests.Response) -> None:
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    methods = {m.strip() for m in resp.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE", "OPTIONS"} <= methods
    headers = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-requested-with"} <= headers


def raw_get(server: ServerProcess, target: str) -> tuple[int, Any]:
    """GET `target` exactly as given (no URL normalisation); returns status and JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", target)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def post_raw(server: ServerProcess, path: str, data: Any, **headers: str) -> requests.Response:
    return requests.post(server.url + path, data=data, headers={"Content-Type": "application/json", **headers}, timeout=10)


# --- routing, methods and CORS -------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/_matrix/client/v3/no/such/endpoint"),
        ("POST", "/_matrix/client/v3/no/such/endpoint"),
        ("GET", "/"),
        ("GET", "/_matrix/client/versions/extra"),
        ("GET", "/_matrix/client/v99/login"),
    ],
)
def test_unknown_path_is_404_unrecognized(server: ServerProcess, method: str, path: str) -> None:
    resp = requests.request(method, server.url + path, timeout=10)
    assert_error(resp, 404, "M_UNRECOGNIZED")
    assert_cors(resp)


@pytest.mark.parametrize(
    "method,path",
    [
        ("DELETE", VERSIONS),
        ("POST", VERSIONS),
        ("PUT", LOGIN),
        ("GET", REGISTER),
        ("POST", "/_matrix/client/v3/account/whoami"),
    ],
)
def test_known_path_wrong_method_is_405_unrecognized(server: ServerProcess, method: str, path: str) -> None:
    resp = requests.request(method, server.url + path, timeout=10)
    assert_error(resp, 405, "M_UNRECOGNIZED")
    assert_cors(resp)


@pytest.mark.parametrize("path", [VERSIONS, LOGIN, "/_matrix/client/v3/account/whoami", "/no/such/path"])
def test_options_preflight_on_any_path(server: ServerProcess, path: str) -> None:
    resp = requests.options(
        server.url + path,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert_cors(resp)


def test_cors_headers_on_normal_and_error_responses(server: ServerProcess, client: Client) -> None:
    ok = client.get(VERSIONS)
    assert ok.status_code == 200
    assert_cors(ok)
    unauthorised = client.get("account/whoami")
    assert_error(unauthorised, 401, "M_MISSING_TOKEN")
    assert_cors(unauthorised)


def test_json_responses_are_not_cached(server: ServerProcess, client: Client) -> None:
    resp = client.get(VERSIONS)
    assert resp.headers["Content-Type"] == "application/json"
    assert "no-cache" in resp.headers["Cache-Control"]
    assert int(resp.headers["Content-Length"]) == len(resp.content)


def test_head_is_answered_like_get_without_a_body(server: ServerProcess) -> None:
    resp = requests.head(server.url + VERSIONS, timeout=10)
    assert resp.status_code == 200
    assert resp.content == b""
    assert_cors(resp)


def test_path_parameters_are_percent_decoded(server: ServerProcess, make_user: Callable[[], Client]) -> None:
    alice = make_user()
    assert alice.user_id
    phone = Client(server.url)
    phone.login(alice.user_id, alice.password, device_id="my phone/1")  # type: ignore[attr-defined]
    resp = alice.get("devices/my%20phone%2F1")
    assert resp.status_code == 200, resp.text
    assert resp.json()["device_id"] == "my phone/1"
    assert_error(alice.get("devices/no%20such%20device"), 404, "M_NOT_FOUND")


def test_nul_characters_in_input_are_400_not_500(server: ServerProcess, make_user: Callable[[], Client]) -> None:
    """PostgreSQL cannot store NUL characters; input holding them is refused the same way on
    both engines instead of crashing a database query."""
    alice = make_user()
    # Behind the generated nginx config, nginx itself refuses a NUL in the path (as a Matrix error).
    path_errcodes = ("M_INVALID_PARAM", "M_UNKNOWN") if getattr(server, "proxy", None) else ("M_INVALID_PARAM",)
    assert_error(alice.get("devices/a%00b"), 400, *path_errcodes)
    assert_error(requests.get(server.url + "/_matrix/client/v3/register/available?username=a%00b", timeout=10), 400, "M_INVALID_PARAM")
    assert_error(requests.get(server.url + "/_matrix/client/v3/account/whoami?access_token=a%00b", timeout=10), 400, "M_INVALID_PARAM")
    register = {"username": "nul" + alice.user_id[1:].split(":")[0], "password": "pw", "auth": {"type": "m.login.dummy"},
                "initial_device_display_name": "a\u0000b"}
    assert_error(requests.post(server.url + REGISTER, json=register, timeout=10), 400, "M_INVALID_PARAM")
    login = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id},
             "password": alice.password, "device_id": "a\u0000b"}  # type: ignore[attr-defined]
    assert_error(requests.post(server.url + LOGIN, json=login, timeout=10), 400, "M_INVALID_PARAM")


# --- JSON request bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"type": "m.login.password",',
        b"{'type': 'm.login.password'}",
        b'{"type": "m.login.password"} trailing',
    ],
    ids=["empty", "text", "truncated", "single-quotes", "trailing-garbage"],
)
def test_body_not_json_is_400_not_json(server: ServerProcess, body: bytes) -> None:
    assert_error(post_raw(server, LOGIN, body), 400, "M_NOT_JSON")


def test_invalid_utf8_is_not_json(server: ServerProcess) -> None:
    body = b'{"type": "m.login.password", "password": "\xff\xfe"}'
    assert_error(post_raw(server, LOGIN, body), 400, "M_NOT_JSON")


@pytest.mark.parametrize("body", [b"[]", b'["type", "m.login.password"]', b'"m.login.password"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_400_bad_json(server: ServerProcess, body: bytes) -> None:
    assert_error(post_raw(server, LOGIN, body), 400, "M_BAD_JSON")


def test_duplicate_keys_are_rejected(server: ServerProcess) -> None:
    body = b'{"type": "m.login.password", "type": "m.login.token"}'
    assert_error(post_raw(server, LOGIN, body), 400, "M_NOT_JSON")
    nested = b'{"type": "m.login.password", "identifier": {"user": "a", "user": "b"}}'
    assert_error(post_raw(server, LOGIN, nested), 400, "M_NOT_JSON")


@pytest.mark.parametrize("number", [str(2**53), str(-(2**53)), "1" + "0" * 30])
def test_integers_outside_the_canonical_range_are_rejected(server: ServerProcess, number: str) -> None:
    body = f'{{"type": "m.login.password", "x": {number}}}'.encode()
    assert_error(post_raw(server, LOGIN, body), 400, "M_NOT_JSON", "M_BAD_JSON")


def test_integers_inside_the_canonical_range_are_accepted(server: ServerProcess) -> None:
    # Parsed fine; the login itself then fails for an unrelated reason (no such user).
    body = f'{{"type": "m.login.password", "x": {2**53 - 1}, "y": {-(2**53) + 1}, "user": "nobody", "password": "x"}}'
    resp = post_raw(server, LOGIN, body.encode())
    assert_error(resp, 403, "M_FORBIDDEN")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(server: ServerProcess, constant: str) -> None:
    body = f'{{"type": "m.login.password", "x": {constant}}}'.encode()
    assert_error(post_raw(server, LOGIN, body), 400, "M_NOT_JSON", "M_BAD_JSON")


def test_deeply_nested_json_is_a_400_not_a_crash(server: ServerProcess) -> None:
    depth = 100_000
    body = b'{"type": ' + b"[" * depth + b"]" * depth + b"}"
    assert_error(post_raw(server, LOGIN, body), 400, "M_NOT_JSON", "M_BAD_JSON")
    assert requests.get(server.url + VERSIONS, timeout=10).status_code == 200


def test_wrongly_typed_field_is_400_bad_json(server: ServerProcess) -> None:
    assert_error(post_raw(server, LOGIN, b'{"type": 1}'), 400, "M_BAD_JSON")
    assert_error(post_raw(server, LOGIN, b"{}"), 400, "M_MISSING_PARAM")


# --- request body size limit ---------------------------------------------------------------


@pytest.fixture(scope="module", params=ENGINES)
def small_body_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with running_server(request.param, max_request_body_size="1K") as process:
        yield process


def _padded_login(size: int) -> bytes:
    """A login body of exactly `size` bytes for a user that does not exist."""
    prefix = b'{"type": "m.login.password", "user": "nobody", "password": "x", "padding": "'
    suffix = b'"}'
    return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix


def test_body_over_the_limit_with_content_length_is_413(small_body_server: ServerProcess) -> None:
    body = _padded_login(2048)
    assert len(body) == 2048
    resp = post_raw(small_body_server, LOGIN, body)
    assert_error(resp, 413, "M_TOO_LARGE")
    assert_cors(resp)


def test_body_over_the_limit_chunked_is_413(small_body_server: ServerProcess) -> None:
    body = _padded_login(2048)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 256):
            yield body[start:start + 256]

    resp = requests.post(small_body_server.url + LOGIN, data=chunks(), timeout=10)
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(resp, 413, "M_TOO_LARGE")


def test_body_over_the_limit_on_an_unknown_path_is_413(small_body_server: ServerProcess) -> None:
    resp = post_raw(small_body_server, "/_matrix/client/v3/nothing/here", _padded_login(2048))
    assert resp.status_code == 413


def test_body_under_the_limit_is_accepted(small_body_server: ServerProcess) -> None:
    # Exactly 1 KiB: parsed, then refused as a bad login.
    body = _padded_login(1024)
    assert_error(post_raw(small_body_server, LOGIN, body), 403, "M_FORBIDDEN")
    chunked = requests.post(small_body_server.url + LOGIN, data=iter([body[:500], body[500:]]), timeout=10)
    assert_error(chunked, 403, "M_FORBIDDEN")


def test_server_keeps_serving_after_a_too_large_body(small_body_server: ServerProcess) -> None:
    session = requests.Session()
    assert session.post(small_body_server.url + LOGIN, data=_padded_login(2048), timeout=10).status_code == 413
    assert session.get(small_body_server.url + VERSIONS, timeout=10).status_code == 200


# --- rate limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_failed_logins_for_one_user_are_rate_limited(engine: str) -> None:
    limits = {
        "failed_attempts": {"per_second": 0.01, "burst_count": 2},
        "address": {"per_second": 1000, "burst_count": 1000},
        "account": {"per_second": 1000, "burst_count": 1000},
    }
    with running_server(engine, rc_login=limits) as server:
        Client(server.url).register("victim", "right password")
        attempt = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "victim"}, "password": "wrong"}
        for _ in range(2):
            assert_error(requests.post(server.url + LOGIN, json=attempt, timeout=10), 403, "M_FORBIDDEN")
        limited = requests.post(server.url + LOGIN, json=attempt, timeout=10)
        body = assert_error(limited, 429, "M_LIMIT_EXCEEDED")
        assert_matches_spec(body, "login.yaml", "/login", "post", 429)
        assert isinstance(body["retry_after_ms"], int) and not isinstance(body["retry_after_ms"], bool)
        # One attempt regained at 0.01/s: about 100 s.
        assert 90_000 < body["retry_after_ms"] <= 100_000
        assert_cors(limited)
        # The right password is refused too while the user is limited ...
        right = dict(attempt, password="right password")
        assert_error(requests.post(server.url + LOGIN, json=right, timeout=10), 429, "M_LIMIT_EXCEEDED")
        # ... but other users are not affected.
        Client(server.url).register("bystander", "pw")
        Client(server.url).login("bystander", "pw")
        other = dict(attempt, identifier={"type": "m.id.user", "user": "bystander"})
        assert_error(requests.post(server.url + LOGIN, json=other, timeout=10), 403, "M_FORBIDDEN")


@pytest.mark.parametrize("engine", ENGINES)
def test_registrations_from_one_address_are_rate_limited(engine: str) -> None:
    with running_server(engine, rc_registration={"per_second": 0.01, "burst_count": 2}) as server:
        Client(server.url).register("first")
        Client(server.url).register("second")
        body = {"username": "third", "password": "pw", "auth": {"type": "m.login.dummy"}}
        limited = requests.post(server.url + REGISTER, json=body, timeout=10)
        error = assert_error(limited, 429, "M_LIMIT_EXCEEDED")
        assert_matches_spec(error, "registration.yaml", "/register", "post", 429)
        assert isinstance(error["retry_after_ms"], int) and error["retry_after_ms"] > 0
        # The listener does not trust X-Forwarded-For, so a forged one does not help.
        forged = requests.post(server.url + REGISTER, json=body, headers={"X-Forwarded-For": "10.9.8.7"}, timeout=10)
        assert_error(forged, 429, "M_LIMIT_EXCEEDED")
        # Nothing was created.
        login = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "third"}, "password": "pw"}
        assert_error(requests.post(server.url + LOGIN, json=login, timeout=10), 403, "M_FORBIDDEN")


# --- access log ----------------------------------------------------------------------------


def test_access_log_has_requests_but_never_access_tokens(server: ServerProcess, make_user: Callable[[], Client]) -> None:
    alice = make_user()
    token = alice.access_token
    assert token
    in_query = requests.get(server.url + "/_matrix/client/v3/account/whoami", params={"access_token": token}, timeout=10)
    assert in_query.status_code == 200 and in_query.json()["user_id"] == alice.user_id
    in_header = alice.get("devices")
    assert in_header.status_code == 200
    # The server decodes percent-encoded parameter names and also splits on `;`, so these
    # authenticate too and must be redacted as well. (Sent raw: requests would normalise them.)
    for query in (f"access%5Ftoken={token}", f"%61ccess%5ftoken={token}", f"x=1;access_token={token}"):
        status, body = raw_get(server, "/_matrix/client/v3/account/whoami?" + query)
        assert status == 200 and body["user_id"] == alice.user_id, (query, body)
    bogus = "SECRETbogus" + token[::-1]
    unknown = requests.get(server.url + "/_matrix/client/v3/account/whoami", params={"access_token": bogus}, timeout=10)
    assert_error(unknown, 401, "M_UNKNOWN_TOKEN")

    def seen(log: str) -> bool:
        lines = access_lines(log)
        return sum(1 for m in lines if m["path"].startswith("/_matrix/client/v3/account/whoami?")) >= 5 and any(
            m["path"] == "/_matrix/client/v3/devices" for m in lines
        )

    log = wait_for_log(server, seen)
    assert token not in log
    assert bogus not in log
    assert alice.password not in log  # type: ignore[attr-defined]
    lines = access_lines(log)
    query_lines = [m for m in lines if m["path"].startswith("/_matrix/client/v3/account/whoami?") and m["user"] == alice.user_id]
    assert len(query_lines) >= 4
    for m in query_lines:
        assert m["method"] == "GET" and m["code"] == "200"
        assert "<redacted>" in m["path"]
        assert re.fullmatch(r"GET-\d+", m["request_id"])
    header_line = next(m for m in lines if m["path"] == "/_matrix/client/v3/devices" and m["user"] == alice.user_id)
    assert header_line["method"] == "GET" and header_line["code"] == "200" and header_line["ip"] == "127.0.0.1"
    assert re.fullmatch(r"GET-\d+", header_line["request_id"])
    unknown_line = next(m for m in lines if m["code"] == "401" and "<redacted>" in m["path"])
    assert unknown_line["user"] == ""
    # Every request has its own id (in the log of the process that served it).
    for one_log in server.logs():
        ids = [m["request_id"] for m in access_lines(one_log)]
        assert len(ids) == len(set(ids))


def test_access_log_records_errors_and_post_requests(server: ServerProcess) -> None:
    marker = "/_matrix/client/v3/logged/" + str(free_port())
    assert requests.post(server.url + marker, json={}, timeout=10).status_code == 404
    log = wait_for_log(server, lambda text: marker in text)
    line = next(m for m in access_lines(log) if m["path"] == marker)
    assert line["method"] == "POST" and line["code"] == "404"
    assert re.fullmatch(r"POST-\d+", line["request_id"])


# --- health and metrics --------------------------------------------------------------------


def test_health_on_the_client_listener(server: ServerProcess) -> None:
    resp = requests.get(server.url + "/health", timeout=10)
    assert resp.status_code == 200
    assert resp.text == "OK"
    assert resp.headers["Content-Type"].startswith("text/plain")


def _assert_prometheus(resp: requests.Response) -> None:
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = resp.text
    assert "# TYPE homeserver_db_txn_seconds histogram" in text
    assert re.search(r"^homeserver_db_txn_seconds_count\{desc=\"[^\"]+\"\} \d", text, re.M), text[:2000]
    assert "# TYPE homeserver_http_requests_total counter" in text


def test_metrics_on_the_client_listener(server: ServerProcess, client: Client) -> None:
    if getattr(server, "proxy", None) is not None:
        # Each process has its own metrics; the generated proxy config never exposes them.
        assert requests.get(server.url + "/_synapse/metrics", timeout=10).status_code == 404
        return
    assert client.get(VERSIONS).status_code == 200
    resp = requests.get(server.url + "/_synapse/metrics", timeout=10)
    _assert_prometheus(resp)
    assert re.search(r'^homeserver_http_requests_total\{.*servlet="versions".*\} [1-9]', resp.text, re.M)


@pytest.mark.parametrize("engine", ENGINES)
def test_metrics_listener(engine: str, tmp_path: Any) -> None:
    metrics_port = free_port()
    client_port = free_port()
    listeners = [
        {"port": client_port, "type": "http", "bind_addresses": ["127.0.0.1"], "resources": [{"names": ["client"]}]},
        {"type": "metrics", "port": metrics_port, "bind_addresses": ["127.0.0.1"]},
    ]
    with running_server(engine, listeners=listeners) as server:
        metrics_url = f"http://127.0.0.1:{metrics_port}"
        _assert_prometheus(requests.get(metrics_url + "/_synapse/metrics", timeout=10))
        assert requests.get(metrics_url + "/health", timeout=10).text == "OK"
        # The metrics listener serves no client API, and the client listener (without the
        # metrics resource) serves no metrics.
        assert_error(requests.get(metrics_url + VERSIONS, timeout=10), 404, "M_UNRECOGNIZED")
        assert requests.get(server.url + VERSIONS, timeout=10).status_code == 200
        assert_error(requests.get(server.url + "/_synapse/metrics", timeout=10), 404, "M_UNRECOGNIZED")


# --- unexpected errors ---------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_unexpected_error_is_500_without_traceback(engine: str) -> None:
    """A database the server cannot use (here: a table renamed behind its back) gives 500 M_UNKNOWN;
    the traceback goes to the log, not to the client."""
    with running_server(engine) as server:
        check = requests.get(server.url + "/_matrix/client/v3/register/available", params={"username": "someone"}, timeout=10)
        assert check.status_code == 200
        db = server.config["database"]
        if engine == "sqlite":
            conn = sqlite3.connect(db["args"]["database"])
            conn.execute("ALTER TABLE users RENAME TO users_gone")
            conn.commit()
            conn.close()
        else:
            args = {k: v for k, v in db["args"].items() if k not in ("cp_min", "cp_max")}
            pg = psycopg2.connect(**args)
            pg.autocommit = True
            with pg.cursor() as cur:
                cur.execute("ALTER TABLE users RENAME TO users_gone")
            pg.close()
        resp = requests.get(server.url + "/_matrix/client/v3/register/available", params={"username": "someone"}, timeout=10)
        body = assert_error(resp, 500, "M_UNKNOWN")
        assert_cors(resp)
        assert "Traceback" not in resp.text
        assert "users_gone" not in resp.text and "users" not in body["error"]
        assert 'File "' not in resp.text
        request_id = re.search(r"GET-\d+", body["error"])
        assert request_id, body
        log = wait_for_log(server, lambda text: "Traceback" in text and " 500 " in text)
        assert "Traceback" in log
        assert any(m["code"] == "500" and m["request_id"] == request_id[0] for m in access_lines(log))
        # Other requests still work.
        assert requests.get(server.url + VERSIONS, timeout=10).status_code == 200

