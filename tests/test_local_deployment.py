"""The README's first command: `scripts/deploy.sh up` brings up a private PostgreSQL and
Redis, the main process, two generic workers, an event persister, a stream writer and nginx,
and a client can use the printed URL; `status` lists the processes; `down` stops them all."""

import os
import secrets
import stat
import subprocess
import tempfile
import time

import yaml

from tests.harness import Client, free_port
from tests.matrix_helpers import enc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _deploy(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "scripts/deploy.sh", action], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def _pids(directory: str) -> dict[str, int]:
    pids = {}
    for name in ("main", "worker1", "worker2", "persister1", "writer1", "redis", "nginx/nginx"):
        path = os.path.join(directory, f"{name}.pid")
        if os.path.exists(path):
            pids[name] = int(open(path).read().split()[0])
    return pids


def _assert_secrets_stay_out_of_logs(directory: str, port: int, alice: Client, password: str) -> None:
    """The config holding the secrets is readable by its owner only, and no access token,
    password or shared secret reaches any process's log, even when a client puts its token in
    the query string or logs in with its password (through workers, so replication calls
    carrying the replication secret happen too)."""
    config_path = os.path.join(directory, "homeserver.yaml")
    assert stat.S_IMODE(os.stat(config_path).st_mode) == 0o600
    with open(config_path) as f:
        config = yaml.safe_load(f)
    login = Client(f"http://127.0.0.1:{port}").post("login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id}, "password": password,
    })
    assert login.status_code == 200, login.text
    second_token = login.json()["access_token"]
    in_query = Client(f"http://127.0.0.1:{port}").get("account/whoami", params={"access_token": second_token})
    assert in_query.status_code == 200, in_query.text
    assert Client(f"http://127.0.0.1:{port}").post("login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id}, "password": "wrong-" + password,
    }).status_code == 403
    time.sleep(0.5)  # let the access log lines reach the files
    logs = ""
    for where in ("logs", "nginx"):
        for root, _, files in os.walk(os.path.join(directory, where)):
            for name in files:
                if name.endswith(".log"):
                    with open(os.path.join(root, name), errors="replace") as f:
                        logs += f.read()
    assert "whoami" in logs, "the access log was not found"
    secrets_in_play = {
        "access token": alice.access_token, "second access token": second_token, "password": password,
        "replication secret": config["worker_replication_secret"],
        "registration secret": config.get("registration_shared_secret"),
        "macaroon secret": config.get("macaroon_secret_key"),
    }
    for what, value in secrets_in_play.items():
        if value:
            assert value not in logs, f"the {what} appears in the logs"


def test_deploy_up_serves_clients_through_nginx_and_down_stops_everything() -> None:
    with tempfile.TemporaryDirectory(prefix="hs-deploy-") as directory:
        os.chmod(directory, 0o755)
        port = free_port()
        env = {**os.environ, "DEPLOY_DIR": os.path.relpath(directory, ROOT), "DEPLOY_PORT": str(port)}
        try:
            up = _deploy("up", env)
            assert up.returncode == 0, up.stdout + up.stderr
            assert f"point clients at http://localhost:{port}" in up.stdout
            pids = _pids(directory)
            assert set(pids) == {"main", "worker1", "worker2", "persister1", "writer1", "redis", "nginx/nginx"}
            alice = Client(f"http://127.0.0.1:{port}")
            password = "pw-" + secrets.token_hex(8)
            alice.register(f"alice{secrets.token_hex(3)}", password)
            room = alice.post("createRoom", {}).json()["room_id"]
            assert alice.put(f"rooms/{enc(room)}/send/m.room.message/1", {"msgtype": "m.text", "body": "hi"}).status_code == 200
            timeline = alice.get("sync", params={"timeout": 0}).json()["rooms"]["join"][room]["timeline"]["events"]
            assert timeline[-1]["content"]["body"] == "hi"
            _assert_secrets_stay_out_of_logs(directory, port, alice, password)
            again = _deploy("up", env)  # idempotent: nothing restarted
            assert again.returncode == 0, again.stdout + again.stderr
            assert _pids(directory)["main"] == pids["main"]
            status = _deploy("status", env)
            assert status.stdout.count("running,") == 5, status.stdout
        finally:
            down = _deploy("down", env)
        assert down.returncode == 0, down.stdout + down.stderr
        time.sleep(0.2)
        for name, pid in pids.items():
            assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", name
