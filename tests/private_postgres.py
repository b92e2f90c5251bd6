"""A PostgreSQL cluster of one test alone, for faults: the machine's shared server must never be
stopped or restarted, so a test that restarts PostgreSQL runs its own. `initdb` into a temporary
directory, `pg_ctl start` on a free loopback port, `restart()` with `pg_ctl restart -m fast`,
removed afterwards. The server binaries refuse to run as root: when we are root they run as the
`postgres` OS user, as scripts/deploy.sh does."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2

from tests.harness import free_port

DATABASE = "homeserver"


def pg_bin(name: str) -> str:
    """A server binary of the newest PostgreSQL installed under /usr/lib/postgresql."""
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if not candidates:
        raise RuntimeError(f"no /usr/lib/postgresql/*/bin/{name}: is PostgreSQL installed?")
    return max(candidates, key=lambda p: [int(x) for x in p.split("/")[4].split(".") if x.isdigit()])


def as_postgres(args: list[str]) -> list[str]:
    """`args` run as the postgres OS user when we are root, unchanged otherwise."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PrivatePostgres:
    """A private cluster: `start()`, `restart()`, `stop()`, `remove()`; `db_config()` is the
    `database` config section of its one database."""

    def __init__(self, parent: str | None = None):
        self.root = tempfile.mkdtemp(prefix="hs-pg-", dir=parent)
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.log_path = os.path.join(self.root, "server.log")
        os.chmod(self.root, 0o755)  # the postgres user writes its log and socket inside
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(as_postgres(list(args)), capture_output=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr.decode(errors='replace')}\n{self.log_tail()}")

    def log_tail(self, lines: int = 10) -> str:
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def init(self) -> "PrivatePostgres":
        self._run(pg_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        return self

    def _options(self) -> str:
        # Small and quick: no fsync (the data is thrown away), few connections, socket inside.
        return (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")

    def start(self) -> "PrivatePostgres":
        self._run(pg_bin("pg_ctl"), "-D", self.data, "-l", self.log_path, "-w", "-t", "30",
                  "-o", self._options(), "start")
        return self

    def restart(self, down_for: float = 0.0) -> None:
        """`pg_ctl restart -m fast`: every connection is dropped, then the server comes back;
        with `down_for`, a fast stop, that many seconds with no server at all, and a start."""
        if down_for > 0:
            self.stop()
            time.sleep(down_for)
            self.start()
            return
        self._run(pg_bin("pg_ctl"), "-D", self.data, "-l", self.log_path, "-w", "-t", "30",
                  "-m", "fast", "-o", self._options(), "restart")

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run(pg_bin("pg_ctl"), "-D", self.data, "-w", "-m", "fast", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def connect_args(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres"}

    def create_database(self, name: str = DATABASE) -> None:
        conn = psycopg2.connect(dbname="postgres", **self.connect_args())
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                            " TEMPLATE template0")
        finally:
            conn.close()

    def db_config(self, name: str = DATABASE) -> dict[str, Any]:
        return {"name": "psycopg2", "args": {**self.connect_args(), "dbname": name, "cp_min": 1, "cp_max": 5}}

    def is_up(self) -> bool:
        try:
            psycopg2.connect(dbname="postgres", connect_timeout=1, **self.connect_args()).close()
            return True
        except psycopg2.Error:
            return False


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private cluster with an empty `homeserver` database; stopped and removed
    afterwards."""
    pg = PrivatePostgres()
    try:
        pg.init().start()
        deadline = time.monotonic() + 10
        while not pg.is_up() and time.monotonic() < deadline:
            time.sleep(0.1)
        pg.create_database()
        yield pg
    finally:
        try:
            pg.stop()
        finally:
            pg.remove()
