"""The command line: config mistakes end the process with exit code 1 and one line on stderr that
names the file and key; unknown keys only warn; workers refuse SQLite and a missing Redis;
--generate-config writes a private, working config; a port used twice is a clear error."""

import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from homeserver.config import ConfigError, load_config
from tests.harness import PG_ARGS, REDIS_HOST, REDIS_PORT, ServerProcess, base_config, free_port

MAIN = "homeserver.app.homeserver"
WORKER = "homeserver.app.generic_worker"


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code 1 and exactly one line on stderr, containing every fragment."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def valid_config(directory: Path) -> dict[str, Any]:
    """A complete, startable main-process config on SQLite."""
    return base_config(str(directory), {"name": "sqlite3", "args": {"database": str(directory / "hs.db")}}, free_port())


def write_config(path: Path, config: Any) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


# --- config mistakes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,fragments",
    [
        (lambda c: c.update(listeners=[{"port": "abc", "type": "http"}]), ["listeners[0].port", "'abc'", "integer"]),
        (lambda c: c["listeners"][0].update(port=70000), ["listeners[0].port", "70000"]),
        (lambda c: c["listeners"][0].update(type="htp"), ["listeners[0].type", "'htp'"]),
        (lambda c: c["listeners"][0]["resources"][0].update(names=["clientt"]), ["listeners[0].resources[0].names[0]", "'clientt'"]),
        (lambda c: c.update(listeners={"port": 8008}), ["listeners", "array"]),
        (lambda c: c.update(database={"name": "mysql", "args": {}}), ["database.name", "'mysql'", "psycopg2", "sqlite3"]),
        (lambda c: c.update(database={"name": "sqlite3", "args": {}}), ["database.args", "database"]),
        (lambda c: c.pop("server_name"), ["server_name", "missing"]),
        (lambda c: c.update(server_name=""), ["server_name"]),
        (lambda c: c.update(max_request_body_size="lots"), ["max_request_body_size", "'lots'"]),
        (lambda c: c.update(rc_login={"failed_attempts": {"per_second": -1}}), ["rc_login.failed_attempts.per_second", "-1"]),
        (lambda c: c.update(signing_key_path="/nonexistent/signing.key"), ["signing_key_path", "/nonexistent/signing.key"]),
        (lambda c: c.update(redis={"enabled": "yes"}), ["redis.enabled", "'yes'"]),
    ],
    ids=[
        "port-not-int", "port-out-of-range", "listener-type", "resource-name", "listeners-not-list",
        "unknown-database", "sqlite-without-path", "missing-server-name", "empty-server-name",
        "bad-size", "negative-rate", "missing-signing-key", "redis-enabled-not-bool",
    ],
)
def test_config_mistake_is_one_line_naming_file_and_key(tmp_path: Path, change: Any, fragments: list[str]) -> None:
    config = valid_config(tmp_path)
    change(config)
    path = write_config(tmp_path / "bad.yaml", config)
    line = assert_one_line_error(run_cli(MAIN, "-c", str(path)), str(path), *fragments)
    assert line.startswith("Error: ")
    assert not (tmp_path / "hs.db").exists(), "nothing is touched before the config is valid"


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server_name: example.org\nlisteners: [\n  - port: 8008\n")
    assert_one_line_error(run_cli(MAIN, "-c", str(path)), str(path), "YAML", "line ")


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- server_name\n- example.org\n")
    assert_one_line_error(run_cli(MAIN, "-c", str(path)), str(path), "mapping")


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "does-not-exist.yaml"
    assert_one_line_error(run_cli(MAIN, "-c", str(path)), str(path), "No such file")


def test_no_config_given() -> None:
    assert_one_line_error(run_cli(MAIN), "-c", "--generate-config")


def test_error_names_the_file_that_set_the_key(tmp_path: Path) -> None:
    """With several files, the error points at the one holding the mistake."""
    config = valid_config(tmp_path)
    shared = write_config(tmp_path / "shared.yaml", config)
    override = write_config(tmp_path / "override.yaml", {"listeners": [{"port": "abc", "type": "http"}]})
    line = assert_one_line_error(run_cli(MAIN, "-c", str(shared), "-c", str(override)), str(override), "listeners[0].port")
    assert str(shared) not in line


def test_unknown_keys_warn_and_the_server_still_starts(tmp_path: Path) -> None:
    config = valid_config(tmp_path)
    config["no_such_setting"] = {"x": 1}
    config["url_preview_enabled"] = True  # a Synapse setting not supported yet
    server = ServerProcess(str(tmp_path), config).start()
    try:
        assert requests.get(server.url + "/_matrix/client/versions", timeout=10).status_code == 200
        log = server.log()
    finally:
        server.stop()
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert any("no_such_setting" in line and "unknown" in line and "main-0.yaml" in line for line in warnings), log
    assert any("url_preview_enabled" in line and "not supported" in line for line in warnings), log
    assert server.process is not None and server.process.returncode == 0


# --- workers -------------------------------------------------------------------------------


def worker_file(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "worker1.yaml",
        {
            "worker_app": "synapse.app.generic_worker",
            "worker_name": "worker1",
            "worker_listeners": [
                {"port": free_port(), "type": "http", "bind_addresses": ["127.0.0.1"], "resources": [{"names": ["client"]}]}
            ],
        },
    )


def test_worker_on_sqlite_is_refused(tmp_path: Path) -> None:
    config = valid_config(tmp_path)
    config["redis"] = {"enabled": True, "host": REDIS_HOST, "port": REDIS_PORT}
    shared = write_config(tmp_path / "homeserver.yaml", config)
    result = run_cli(WORKER, "-c", str(shared), "-c", str(worker_file(tmp_path)))
    assert_one_line_error(result, "PostgreSQL", str(shared), "database.name")


def test_worker_without_redis_is_refused(tmp_path: Path) -> None:
    config = valid_config(tmp_path)
    # Config checks happen before any connection, so the database need not exist.
    config["database"] = {"name": "psycopg2", "args": {**PG_ARGS, "dbname": "hs_not_created"}}
    config["redis"] = {"enabled": False}
    shared = write_config(tmp_path / "homeserver.yaml", config)
    result = run_cli(WORKER, "-c", str(shared), "-c", str(worker_file(tmp_path)))
    assert_one_line_error(result, "Redis", "redis.enabled")
    del config["redis"]
    write_config(shared, config)
    result = run_cli(WORKER, "-c", str(shared), "-c", str(worker_file(tmp_path)))
    assert_one_line_error(result, "Redis")


def test_worker_config_given_to_the_main_process_is_refused(tmp_path: Path) -> None:
    config = valid_config(tmp_path)
    config["database"] = {"name": "psycopg2", "args": {**PG_ARGS, "dbname": "hs_not_created"}}
    config["redis"] = {"enabled": True, "host": REDIS_HOST, "port": REDIS_PORT}
    shared = write_config(tmp_path / "homeserver.yaml", config)
    worker = worker_file(tmp_path)
    assert_one_line_error(run_cli(MAIN, "-c", str(shared), "-c", str(worker)), "worker_app", WORKER)


def test_main_config_given_to_the_worker_is_refused(tmp_path: Path) -> None:
    shared = write_config(tmp_path / "homeserver.yaml", valid_config(tmp_path))
    assert_one_line_error(run_cli(WORKER, "-c", str(shared)), "worker_app")


def test_unknown_worker_app_is_refused(tmp_path: Path) -> None:
    shared = write_config(tmp_path / "homeserver.yaml", valid_config(tmp_path))
    worker = write_config(tmp_path / "w.yaml", {"worker_app": "synapse.app.nonsense", "worker_name": "w"})
    assert_one_line_error(run_cli(WORKER, "-c", str(shared), "-c", str(worker)), str(worker), "worker_app", "nonsense")


# --- --generate-config ---------------------------------------------------------------------


def test_generate_config_writes_a_private_working_config(tmp_path: Path) -> None:
    config_path = tmp_path / "conf" / "homeserver.yaml"
    result = run_cli(MAIN, "--generate-config", "--server-name", "example.org", "-c", str(config_path))
    assert result.returncode == 0, result.stderr
    assert str(config_path) in result.stdout
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = yaml.safe_load(config_path.read_text())
    assert config["server_name"] == "example.org"
    for key in ("registration_shared_secret", "macaroon_secret_key", "form_secret"):
        assert isinstance(config[key], str) and len(config[key]) >= 32, key
    secrets = [config["registration_shared_secret"], config["macaroon_secret_key"], config["form_secret"]]
    assert len(set(secrets)) == 3
    key_path = Path(config["signing_key_path"])
    assert key_path.is_absolute() and key_path.exists()
    assert re.fullmatch(r"ed25519 a_\w+ [A-Za-z0-9+/]{43}\n?", key_path.read_text())
    assert stat.S_IMODE(key_path.stat().st_mode) & 0o077 == 0
    assert config["enable_registration"] is False

    # A second run refuses to overwrite anything.
    before = config_path.read_bytes(), key_path.read_bytes()
    again = run_cli(MAIN, "--generate-config", "--server-name", "other.org", "-c", str(config_path))
    assert_one_line_error(again, str(config_path), "exists")
    assert (config_path.read_bytes(), key_path.read_bytes()) == before

    # It starts (once given a free port) without warnings about its own keys, and serves clients.
    config["listeners"][0]["port"] = free_port()
    write_config(config_path, config)
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    server = ServerProcess(str(tmp_path), config)
    server.config_paths = [str(config_path)]
    server.start()
    try:
        resp = requests.get(server.url + "/_matrix/client/versions", timeout=10)
        assert resp.status_code == 200 and "v1.11" in resp.json()["versions"]
        # Open registration is off by default.
        register = requests.post(
            server.url + "/_matrix/client/v3/register",
            json={"username": "u", "password": "p", "auth": {"type": "m.login.dummy"}},
            timeout=10,
        )
        assert register.status_code == 403
        log = server.log()
    finally:
        server.stop()
    assert not [line for line in log.splitlines() if "WARNING" in line and "config key" in line], log


def test_generate_config_needs_a_server_name(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    assert_one_line_error(run_cli(MAIN, "--generate-config", "-c", str(path)), "--server-name")
    assert not path.exists()


# --- listeners -----------------------------------------------------------------------------


def test_two_listeners_on_the_same_port(tmp_path: Path) -> None:
    config = valid_config(tmp_path)
    port = config["listeners"][0]["port"]
    config["listeners"].append({"port": port, "type": "metrics", "bind_addresses": ["127.0.0.1"]})
    path = write_config(tmp_path / "homeserver.yaml", config)
    result = run_cli(MAIN, "-c", str(path))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert f"127.0.0.1:{port}" in errors[0] and "in use" in errors[0]
    assert not os.path.exists(config["pid_file"])


def test_listener_port_in_use_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = valid_config(tmp_path)
        config["listeners"][0]["port"] = busy.getsockname()[1]
        path = write_config(tmp_path / "homeserver.yaml", config)
        result = run_cli(MAIN, "-c", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert any(line.startswith("Error: ") and "in use" in line for line in result.stderr.splitlines()), result.stderr


@pytest.mark.parametrize(("redis", "key"), [({"enabled": True, "use_tls": True}, "redis.use_tls"),
                                           ({"enabled": True, "path": "/run/redis.sock"}, "redis.path")])
def test_redis_settings_that_cannot_be_honoured_are_refused(tmp_path: Any, redis: dict[str, Any], key: str) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"server_name": "test.local", "redis": redis}))
    with pytest.raises(ConfigError) as raised:
        load_config([str(path)])
    assert str(raised.value).startswith(f"{path}: {key}: ")
