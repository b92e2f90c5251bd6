"""Fixtures of the room tests: users shared by the tests of a module (each test makes its own
rooms, so tests stay independent while the module registers few accounts)."""

import itertools
import secrets
from collections.abc import Callable

import pytest

from tests.harness import Client, ServerProcess

UserFactory = Callable[[str], Client]


@pytest.fixture(scope="module")
def new_user(server: ServerProcess) -> UserFactory:
    """Registers a fresh user (a new localpart every call) and returns its logged-in Client."""
    counter = itertools.count(1)
    suffix = secrets.token_hex(3)

    def make(prefix: str = "user") -> Client:
        c = Client(server.url)
        c.register(f"{prefix}{next(counter)}_{suffix}")
        return c

    return make


@pytest.fixture(scope="module")
def alice(new_user: UserFactory) -> Client:
    return new_user("alice")


@pytest.fixture(scope="module")
def bob(new_user: UserFactory) -> Client:
    return new_user("bob")


@pytest.fixture(scope="module")
def carol(new_user: UserFactory) -> Client:
    return new_user("carol")
