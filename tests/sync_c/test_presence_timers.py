"""The presence timers on both engines, with short `presence` durations: an idle user becomes
unavailable, a user whose sync ended goes offline (never while a sync is running), and
room-mates hear about each change. Also the `presence` config checks, `enabled: false` and
the `rc_presence` limit."""

import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from homeserver.config import ConfigError, load_config
from tests.harness import ENGINES, Client, ServerProcess, base_config, running_server
from tests.sync_c.helpers import (
    Background,
    assert_error,
    enc,
    get_presence,
    presence_events,
    set_presence,
    shared_room,
    sync,
    wait_until,
)

TIMERS = {"last_active_granularity": "500ms", "idle_timeout": "1500ms", "sync_online_timeout": "2500ms"}
NO_PRESENCE_LIMIT = {"rc_presence": {"per_user": {"per_second": 10000, "burst_count": 10000}}}


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with running_server(request.param, presence=TIMERS, **NO_PRESENCE_LIMIT) as process:
        yield process


def test_idle_then_offline(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared_room(alice, bob)
    token = sync(bob, set_presence="offline")["next_batch"]
    set_presence(alice, "online")
    assert get_presence(bob, alice.user_id)["currently_active"] is True
    idle = wait_until(lambda: (b := get_presence(bob, alice.user_id))["presence"] == "unavailable" and b)
    assert idle["currently_active"] is False and idle["last_active_ago"] >= 1500
    wait_until(lambda: get_presence(bob, alice.user_id)["presence"] == "offline")
    # Bob's sync hears about the latest state.
    assert presence_events(sync(bob, since=token, set_presence="offline"))[alice.user_id]["presence"] == "offline"


def test_offline_only_after_the_last_sync_ends(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared_room(alice, bob)
    token = sync(alice, set_presence="offline")["next_batch"]
    # Syncing as unavailable: nothing about bob changes while the long-poll runs.
    bob_token = sync(bob, set_presence="unavailable")["next_batch"]
    started = time.monotonic()
    poll = Background(lambda: sync(bob, since=bob_token, timeout=4000, set_presence="unavailable"))
    assert get_presence(alice, bob.user_id)["presence"] == "unavailable"
    # Past sync_online_timeout (and a timer check) while the request runs: not offline.
    time.sleep(max(0.0, started + 3.2 - time.monotonic()))
    assert get_presence(alice, bob.user_id)["presence"] == "unavailable"
    poll.join()
    ended = time.monotonic()
    assert ended - started >= 3.5, "the long-poll returned early"
    wait_until(lambda: get_presence(alice, bob.user_id)["presence"] == "offline", timeout=6)
    assert time.monotonic() - ended >= 2.0
    assert presence_events(sync(alice, since=token, set_presence="offline"))[bob.user_id]["presence"] == "offline"


def test_presence_config_is_checked() -> None:
    with tempfile.TemporaryDirectory() as directory:
        config = base_config(directory, {"name": "sqlite3", "args": {"database": ":memory:"}}, 8008)

        def load(**overrides: Any) -> Any:
            path = os.path.join(directory, "homeserver.yaml")
            with open(path, "w") as f:
                yaml.safe_dump({**config, **overrides}, f)
            return load_config([path])

        loaded = load(presence={"enabled": "untracked", "idle_timeout": "10m"})
        assert loaded.presence.enabled and not loaded.presence.track
        assert loaded.presence.idle_timeout_ms == 600_000 and loaded.presence.sync_online_timeout_ms == 30_000
        assert not load(use_presence=False).presence.enabled
        assert not any("presence" in w for w in loaded.warnings)
        for bad in ({"enabled": "sometimes"}, {"idle_timeout": "30s", "last_active_granularity": "1m"},
                    {"sync_online_timeout": 0}, {"idle_timeout": "soon"}):
            with pytest.raises(ConfigError, match="presence"):
                load(presence=bad)


@pytest.fixture(scope="module", params=ENGINES)
def disabled_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with running_server(request.param, presence={"enabled": False}) as process:
        yield process


def test_disabled_presence_answers_but_is_not_synced(disabled_server: ServerProcess) -> None:
    alice, bob = Client(disabled_server.url), Client(disabled_server.url)
    alice_id, bob_id = alice.register("alice_off")["user_id"], bob.register("bob_off")["user_id"]
    shared_room(alice, bob)
    sync(alice)  # syncs have their own rc_presence bucket
    set_presence(alice, "online", "Hidden")
    # rc_presence (Synapse's default: one update per 10 s) applies to updates.
    limited = assert_error(alice.put(f"presence/{enc(alice_id)}/status", {"presence": "online"}), 429, "M_LIMIT_EXCEEDED")
    assert limited["retry_after_ms"] > 0
    assert get_presence(bob, alice_id) == {"presence": "offline"}
    assert get_presence(alice, alice_id) == {"presence": "offline"}
    body = sync(bob)
    assert body["presence"]["events"] == []
    assert alice.get(f"presence/{enc(bob_id)}/status").status_code == 200
