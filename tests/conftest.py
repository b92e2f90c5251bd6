"""Shared fixtures: a real server per test module and deployment shape, and HTTP clients.

Shapes (`tests.harness.SHAPES`): `sqlite` and `postgres` are a single process with a fresh
database per test module; `workers` is one multi-process deployment (`workers_deployment`)
shared by every module of the session, started the first time a module asks for it. Tests
therefore make their own users and rooms and never assume an empty database."""

from collections.abc import Iterator

import pytest

from tests.harness import (
    SHAPES,
    Client,
    Deployment,
    ServerProcess,
    running_server,
    workers_deployment,
)
from tests.reactor_thread import run  # noqa: F401 - the one reactor thread of the session

# Lifts the presence rate limit too: the shared deployment serves the presence tests as well.
WORKERS_OVERRIDES = {"rc_presence": {"per_user": {"per_second": 10000, "burst_count": 10000}}}


@pytest.fixture(scope="session")
def shared_workers_deployment() -> Iterator[Deployment]:
    """The `workers` shape, once per test session."""
    with workers_deployment(**WORKERS_OVERRIDES) as deployment:
        yield deployment


@pytest.fixture(scope="module", params=SHAPES)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess | Deployment]:
    """A main process with a fresh database, once per test module and engine; or the shared
    multi-process deployment."""
    if request.param == "workers":
        yield request.getfixturevalue("shared_workers_deployment")
        return
    with running_server(request.param) as process:
        yield process


@pytest.fixture
def client(server: ServerProcess) -> Client:
    return Client(server.url)


_counter = iter(range(1, 10**9))


@pytest.fixture
def make_user(server: ServerProcess):  # type: ignore[no-untyped-def]
    """Registers a new user and returns a logged-in Client."""

    def make(prefix: str = "user", password: str = "correct horse") -> Client:
        c = Client(server.url)
        c.register(f"{prefix}{next(_counter)}", password)
        c.password = password  # type: ignore[attr-defined]
        return c

    return make


@pytest.fixture(scope="module")
def server_name(server: ServerProcess) -> str:
    """The server's name (user ids, room ids and aliases end in it); it differs per shape."""
    return server.server_name
