"""The TURN and user directory config keys, read in-process (no server): durations, static
credentials, the shared secret file, and mistakes reported with the key that caused them."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from homeserver.config._base import ConfigError
from homeserver.config.homeserver import HomeServerConfig, load_config
from homeserver.config.key import write_new_signing_key
from homeserver.config.voip import parse_duration_ms
from homeserver.handlers.voip import VoipHandler, turn_password


def load(tmp_path: Path, **keys: Any) -> HomeServerConfig:
    key_path = tmp_path / "signing.key"
    if not key_path.exists():
        write_new_signing_key(str(key_path))
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"server_name": "test.local", "signing_key_path": str(key_path), **keys}))
    return load_config([str(path)])


class _Server:
    def __init__(self, config: HomeServerConfig):
        self.config = config


def turn(config: HomeServerConfig, user_id: str = "@a:test.local") -> dict[str, Any]:
    return VoipHandler(_Server(config)).turn_server(user_id)  # type: ignore[arg-type]


@pytest.mark.parametrize("value, expected", [
    (5000, 5000), ("5000", 5000), ("90s", 90_000), ("2m", 120_000), ("1h", 3_600_000), ("1d", 86_400_000),
    ("1w", 604_800_000), ("250ms", 250),
])
def test_durations(value: Any, expected: int) -> None:
    assert parse_duration_ms(value) == expected


def test_defaults_and_no_uris(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.voip.turn_user_lifetime_ms == 3_600_000
    assert config.voip.turn_allow_guests is True
    assert config.user_directory.enabled is True and config.user_directory.search_all_users is False
    assert config.server.require_auth_for_profile_requests is False
    assert turn(config) == {}
    # A secret without URIs is still nothing to hand out.
    assert turn(load(tmp_path, turn_shared_secret="s")) == {}
    assert not any("turn_" in w or "user_directory" in w for w in config.warnings)


def test_static_credentials(tmp_path: Path) -> None:
    config = load(tmp_path, turn_uris=["turn:t.example:3478"], turn_username="u", turn_password="p", turn_user_lifetime=60000)
    assert turn(config) == {"username": "u", "password": "p", "ttl": 60, "uris": ["turn:t.example:3478"]}


def test_shared_secret_from_file_wins_over_static(tmp_path: Path) -> None:
    (tmp_path / "turn.secret").write_text("from-file\n")
    config = load(tmp_path, turn_uris=["turn:t.example"], turn_shared_secret_path=str(tmp_path / "turn.secret"),
                  turn_username="u", turn_password="p")
    body = turn(config, "@bob:test.local")
    assert body["username"].endswith(":@bob:test.local")
    assert body["password"] == turn_password("from-file", body["username"])


@pytest.mark.parametrize("keys, fragment", [
    ({"turn_user_lifetime": "soon"}, "turn_user_lifetime"),
    ({"turn_uris": "turn:one"}, "turn_uris"),
    ({"turn_shared_secret": "a", "turn_shared_secret_path": "/nonexistent"}, "turn_shared_secret_path"),
    ({"turn_shared_secret_path": "/nonexistent/turn.secret"}, "turn_shared_secret_path"),
    ({"user_directory": {"search_all_users": "yes"}}, "user_directory.search_all_users"),
    ({"require_auth_for_profile_requests": "no"}, "require_auth_for_profile_requests"),
])
def test_mistakes_name_the_key(tmp_path: Path, keys: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, **keys)
    assert fragment in str(raised.value)
