"""Shared fixtures: a real server per test module and engine, and HTTP clients."""

from collections.abc import Iterator

import pytest

from tests.harness import ENGINES, Client, ServerProcess, running_server


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A main process with a fresh database, once per test module and engine."""
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
