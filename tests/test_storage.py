"""Storage on both engines against real databases: schema preparation, transactions (commit,
rollback, callbacks, retries on real serialization failures), the stores, and the stream id
generators with one and with two writers.

The storage code runs on a real Twisted reactor, started once in a background thread; each test
drives it from the test thread through `Runner`. Every test gets its own fresh database.
"""

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import psycopg2.errorcodes
import pytest
from prometheus_client import REGISTRY

from homeserver.storage.database import MAX_ATTEMPTS, Database, Txn
from homeserver.storage.engines import create_engine
from homeserver.storage.id_generators import NotAWriterError, StreamIdGenerator
from homeserver.storage.prepare import SchemaError, prepare_database
from homeserver.storage.schema import SCHEMA_VERSION
from homeserver.storage.stores.devices import Device, DeviceStore
from homeserver.storage.stores.registration import (
    RegistrationStore,
    TokenInfo,
    UserExistsError,
    UserInfo,
)
from homeserver.storage.stores.ui_auth import UIAuthStore
from homeserver.util.clock import now_ms
from tests.harness import ENGINES, database_config
from tests.reactor_thread import Runner

TIMEOUT = 30.0
EXPECTED_TABLES = {
    "schema_version",
    "users",
    "devices",
    "access_tokens",
    "ui_auth_sessions",
    "ui_auth_sessions_credentials",
    "registration_nonces",
    "stream_positions",
    "device_lists_stream",
}


class Boom(Exception):
    """Raised by transaction functions that must roll back."""


class Env:
    """One fresh database; any number of pools on it, all closed at the end of the test."""

    def __init__(self, run: Runner, config: dict[str, Any]):
        self.run = run
        self.config = config
        self.args = {k: v for k, v in config["args"].items() if k not in ("cp_min", "cp_max")}
        self.engine_name = "postgres" if config["name"] == "psycopg2" else "sqlite"
        self._pools: list[Database] = []
        self._connections: list[Any] = []
        self._events: list[threading.Event] = []

    def event(self) -> threading.Event:
        """An event that is set when the test ends, so no transaction waits on it forever."""
        event = threading.Event()
        self._events.append(event)
        return event

    def new_db(self, cp_max: int = 5) -> Database:
        engine = create_engine(self.config["name"], dict(self.args))
        # adbapi pools register reactor triggers: build them on the reactor thread.
        db: Database = self.run(lambda: Database(engine, 1, cp_max))
        self._pools.append(db)
        return db

    def connect(self, autocommit: bool = True) -> Any:
        """A plain DB-API connection beside the pools, e.g. to look from another session."""
        if self.engine_name == "sqlite":
            conn: Any = sqlite3.connect(self.args["database"], check_same_thread=False)
            if autocommit:
                conn.isolation_level = None
        else:
            conn = psycopg2.connect(**self.args)
            conn.autocommit = autocommit
        self._connections.append(conn)
        return conn

    def close(self) -> None:
        for event in self._events:
            event.set()
        for conn in self._connections:
            conn.close()
        for db in self._pools:
            self.run(db.close)


@pytest.fixture(params=ENGINES)
def env(request: pytest.FixtureRequest, run: Runner, tmp_path: Any) -> Iterator[Env]:
    with database_config(request.param, str(tmp_path)) as config:
        e = Env(run, config)
        try:
            yield e
        finally:
            e.close()


@pytest.fixture
def pg_env(run: Runner, tmp_path: Any) -> Iterator[Env]:
    with database_config("postgres", str(tmp_path)) as config:
        e = Env(run, config)
        try:
            yield e
        finally:
            e.close()


def device_lists_ids(instance_name: str, writers: list[str]) -> StreamIdGenerator:
    return StreamIdGenerator(
        "device_lists", instance_name, writers, "device_lists_stream", "device_lists_sequence"
    )


def insert_stream_row(txn: Txn, gen: StreamIdGenerator, user_id: str, device_id: str) -> int:
    """Allocate a device_lists position inside `txn` and write the row that uses it."""
    stream_id = gen.get_next_txn(txn)
    txn.execute(
        "INSERT INTO device_lists_stream (stream_id, instance_name, user_id, device_id)"
        " VALUES (?, ?, ?, ?)",
        (stream_id, gen.instance_name, user_id, device_id),
    )
    return stream_id


async def table_names(db: Database) -> set[str]:
    if db.engine.name == "postgres":
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {row[0] for row in await db.execute("list_tables", sql)}


async def schema_versions(db: Database) -> list[int]:
    return [int(r[0]) for r in await db.execute("read_version", "SELECT version FROM schema_version")]


def wait(event: threading.Event) -> None:
    assert event.wait(TIMEOUT), "timed out waiting for another transaction"


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for another transaction"
        time.sleep(0.005)


# -- schema preparation ---------------------------------------------------------------------------


def test_prepare_creates_schema_and_is_idempotent(env: Env) -> None:
    db = env.new_db()

    async def scenario() -> None:
        assert await table_names(db) == set()
        await prepare_database(db, is_main=True)
        assert EXPECTED_TABLES <= await table_names(db)
        assert await schema_versions(db) == [SCHEMA_VERSION]
        if env.engine_name == "postgres":
            rows = await db.execute(
                "seq", "SELECT 1 FROM information_schema.sequences WHERE sequence_name = ?",
                "device_lists_sequence",
            )
            assert rows == [(1,)]

        # A second run applies nothing (re-creating the tables would fail) and keeps the data.
        await db.execute(
            "add_user", "INSERT INTO users (user_id, creation_ts) VALUES (?, ?)", "@keep:test", 1
        )
        await prepare_database(db, is_main=True)
        assert await schema_versions(db) == [SCHEMA_VERSION]
        assert await db.execute("users", "SELECT user_id FROM users") == [("@keep:test",)]
        # And a worker accepts the migrated database.
        await prepare_database(db, is_main=False)

    env.run(scenario)


def test_worker_refuses_unmigrated_or_older_database(env: Env) -> None:
    db = env.new_db()

    async def scenario() -> None:
        with pytest.raises(SchemaError) as empty:
            await prepare_database(db, is_main=False)
        message = str(empty.value)
        assert f"needs database schema version {SCHEMA_VERSION}" in message
        assert "at version 0" in message
        assert "main process" in message
        # The worker created nothing.
        assert await table_names(db) == set()

        await prepare_database(db, is_main=True)
        await db.execute("downgrade", "UPDATE schema_version SET version = ?", SCHEMA_VERSION - 1)
        with pytest.raises(SchemaError) as older:
            await prepare_database(db, is_main=False)
        message = str(older.value)
        assert f"version {SCHEMA_VERSION}" in message
        assert f"at version {SCHEMA_VERSION - 1}" in message
        assert "start (or upgrade) the main process" in message

    env.run(scenario)


def test_newer_schema_refused_by_main_and_worker(env: Env) -> None:
    db = env.new_db()
    newer = SCHEMA_VERSION + 1

    async def scenario() -> None:
        await prepare_database(db, is_main=True)
        await db.execute("upgrade", "UPDATE schema_version SET version = ?", newer)
        for is_main in (True, False):
            with pytest.raises(SchemaError) as raised:
                await prepare_database(db, is_main=is_main)
            message = str(raised.value)
            assert f"schema version {newer}" in message, (is_main, message)
            assert f"newer than the {SCHEMA_VERSION}" in message, (is_main, message)
        # The refusing main process did not touch the recorded version.
        assert await schema_versions(db) == [newer]

    env.run(scenario)


# -- transactions ---------------------------------------------------------------------------------


def test_run_interaction_commits_and_rolls_back_with_callbacks(env: Env) -> None:
    db = env.new_db()
    env.run(lambda: prepare_database(db, is_main=True))
    observer = env.connect()
    events: list[tuple[str, Any]] = []

    def visible_elsewhere(user_id: str) -> bool:
        cur = observer.cursor()
        cur.execute(
            "SELECT 1 FROM users WHERE user_id = " + ("?" if env.engine_name == "sqlite" else "%s"),
            (user_id,),
        )
        found = cur.fetchone() is not None
        cur.close()
        return found

    def insert(txn: Txn, user_id: str, fail: bool) -> str:
        txn.execute("INSERT INTO users (user_id, creation_ts) VALUES (?, ?)", (user_id, 1))
        txn.call_after_commit(
            lambda: events.append(("after_commit", (visible_elsewhere(user_id), threading.current_thread())))
        )
        txn.call_on_failure(
            lambda: events.append(("on_failure", (visible_elsewhere(user_id), threading.current_thread())))
        )
        # Nothing runs while the transaction is still open.
        events.append(("body_done", list(events)))
        if fail:
            raise Boom("roll back")
        return "result"

    assert env.run(lambda: db.run_interaction("ok", insert, "@ok:test", False)) == "result"
    assert events == [
        ("body_done", []),
        ("after_commit", (True, env.run.thread)),  # committed: another session sees the row
    ]

    events.clear()
    with pytest.raises(Boom):
        env.run(lambda: db.run_interaction("fail", insert, "@fail:test", True))
    assert events == [("body_done", []), ("on_failure", (False, env.run.thread))]
    rows = env.run(lambda: db.execute("users", "SELECT user_id FROM users ORDER BY user_id"))
    assert rows == [("@ok:test",)]


def _counter_table(env: Env, db: Database) -> None:
    async def create() -> None:
        await db.execute("counter", "CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        await db.execute("counter", "INSERT INTO counter (id, value) VALUES (1, 0)")

    env.run(create)


def _retries(desc: str) -> float:
    return REGISTRY.get_sample_value("homeserver_db_txn_retries_total", {"desc": desc}) or 0.0


def test_serialization_failure_is_retried(pg_env: Env) -> None:
    """Two REPEATABLE READ transactions increment one counter: the one that read before the
    other's commit fails to serialize for real, is retried, and both increments survive."""
    db = pg_env.new_db(cp_max=4)
    _counter_table(pg_env, db)
    first_read = pg_env.event()
    other_committed = pg_env.event()
    attempts: list[int] = []
    errors: list[str | None] = []
    callbacks: list[str] = []
    retries_before = _retries("slow_increment")

    def slow_increment(txn: Txn) -> int:
        attempts.append(len(attempts) + 1)
        txn.execute("SELECT value FROM counter WHERE id = 1")
        value = int(txn.fetchone()[0])
        txn.call_on_failure(lambda: callbacks.append("failure"))
        txn.call_after_commit(lambda: callbacks.append("commit"))
        first_read.set()
        wait(other_committed)
        try:
            txn.execute("UPDATE counter SET value = ? WHERE id = 1", (value + 1,))
        except psycopg2.Error as e:
            errors.append(e.pgcode)
            raise
        return value + 1

    def fast_increment(txn: Txn) -> None:
        txn.execute("UPDATE counter SET value = value + 1 WHERE id = 1")

    slow = pg_env.run.start(lambda: db.run_interaction("slow_increment", slow_increment))
    wait(first_read)
    pg_env.run(lambda: db.run_interaction("fast_increment", fast_increment))
    other_committed.set()
    assert slow.result(TIMEOUT) == 2

    assert attempts == [1, 2]
    assert errors == [psycopg2.errorcodes.SERIALIZATION_FAILURE]
    assert callbacks == ["failure", "commit"]
    assert _retries("slow_increment") - retries_before == 1
    assert pg_env.run(lambda: db.execute("read", "SELECT value FROM counter WHERE id = 1")) == [(2,)]


def test_retries_give_up_after_max_attempts(pg_env: Env) -> None:
    db = pg_env.new_db()
    _counter_table(pg_env, db)
    interferer = pg_env.connect(autocommit=True)
    attempts: list[int] = []
    failures: list[int] = []

    def always_conflicts(txn: Txn) -> None:
        attempts.append(len(attempts) + 1)
        txn.call_on_failure(lambda: failures.append(len(attempts)))
        txn.execute("SELECT value FROM counter WHERE id = 1")
        value = int(txn.fetchone()[0])
        with interferer.cursor() as cur:  # commits an update after our snapshot, every time
            cur.execute("UPDATE counter SET value = value + 100 WHERE id = 1")
        txn.execute("UPDATE counter SET value = ? WHERE id = 1", (value + 1,))

    with pytest.raises(psycopg2.Error) as raised:
        pg_env.run(lambda: db.run_interaction("always_conflicts", always_conflicts))
    assert raised.value.pgcode == psycopg2.errorcodes.SERIALIZATION_FAILURE
    assert attempts == list(range(1, MAX_ATTEMPTS + 1))
    assert failures == attempts
    assert pg_env.run(lambda: db.execute("read", "SELECT value FROM counter")) == [(100 * MAX_ATTEMPTS,)]


# -- stores ---------------------------------------------------------------------------------------


def test_registration_store(env: Env) -> None:
    db = env.new_db()
    reg = RegistrationStore(db)

    async def scenario() -> None:
        await prepare_database(db, is_main=True)
        await reg.create_user("@Alice:test", "hash", admin=True)
        for duplicate in ("@Alice:test", "@alice:test", "@ALICE:TEST"):
            with pytest.raises(UserExistsError):
                await reg.create_user(duplicate, None)
        assert await db.execute("count", "SELECT COUNT(*) FROM users") == [(1,)]
        assert await reg.find_user_case_insensitive("@alice:TEST") == ["@Alice:test"]
        assert await reg.is_user_taken("@aLiCe:test")
        assert not await reg.is_user_taken("@bob:test")
        assert await reg.get_user("@Alice:test") == UserInfo("@Alice:test", "hash", True, False, False, None)
        assert await reg.get_user("@alice:test") is None

        await reg.add_access_token("tok1", "@Alice:test", "DEV1", valid_until_ms=123)
        await reg.add_access_token("tok2", "@Alice:test", "DEV2")
        await reg.add_access_token("tok3", "@Alice:test", None)
        assert await reg.get_token_info("tok1") == TokenInfo("@Alice:test", "DEV1", 123, False, True, False)
        assert await reg.get_token_info("tok3") == TokenInfo("@Alice:test", None, None, False, True, False)
        assert await reg.get_token_info("missing") is None
        await reg.delete_access_token("tok1")
        assert await reg.get_token_info("tok1") is None
        assert await reg.get_token_info("tok2") is not None
        await reg.delete_access_tokens_for_user("@Alice:test", except_token="tok2")
        assert await reg.get_token_info("tok3") is None
        assert await reg.get_token_info("tok2") is not None
        await reg.set_deactivated("@Alice:test")
        info = await reg.get_token_info("tok2")
        assert info is not None and info.deactivated
        user = await reg.get_user("@Alice:test")
        assert user is not None and user.deactivated and user.password_hash is None

        # Nonces: usable once, and only while fresh.
        await reg.store_nonce("n1")
        assert await reg.consume_nonce("n1", 60_000) is True
        assert await reg.consume_nonce("n1", 60_000) is False
        assert await reg.consume_nonce("never-stored", 60_000) is False
        await reg.store_nonce("old")
        await reg.store_nonce("fresh")
        await db.execute(
            "age", "UPDATE registration_nonces SET created_ts = ? WHERE nonce = ?", now_ms() - 120_000, "old"
        )
        assert await reg.consume_nonce("old", 60_000) is False
        assert await db.execute("nonces", "SELECT nonce FROM registration_nonces") == [("fresh",)]
        assert await reg.consume_nonce("fresh", 60_000) is True

    env.run(scenario)


def test_nonce_consumed_once_under_concurrency(pg_env: Env) -> None:
    db = pg_env.new_db(cp_max=5)
    reg = RegistrationStore(db)
    pg_env.run(lambda: prepare_database(db, is_main=True))
    pg_env.run(lambda: reg.store_nonce("contested"))
    futures = [pg_env.run.start(lambda: reg.consume_nonce("contested", 60_000)) for _ in range(5)]
    assert sorted(f.result(TIMEOUT) for f in futures) == [False] * 4 + [True]


def test_device_store(env: Env) -> None:
    db = env.new_db()
    gen = device_lists_ids("master", ["master"])
    devices = DeviceStore(db, gen)
    reg = RegistrationStore(db)
    u = "@dev:test"

    async def scenario() -> None:
        await prepare_database(db, is_main=True)
        await gen.load(db)
        await reg.create_user(u, None)
        tokens: list[int] = []

        async def changed(step: Any) -> None:
            before = len(await db.execute("rows", "SELECT stream_id FROM device_lists_stream"))
            await step
            after = await db.execute("rows", "SELECT stream_id FROM device_lists_stream")
            tokens.append(gen.get_current_token())
            assert len(after) > before

        await changed(devices.store_device(u, "D1", "Phone"))
        assert await devices.store_device(u, "D1", "Other") is False  # exists: no change row
        await changed(devices.store_device(u, "D2", "Laptop"))
        await changed(devices.update_display_name(u, "D1", "Old phone"))
        assert await devices.update_display_name(u, "NOPE", "x") is False
        assert await devices.get_device(u, "D1") == Device(u, "D1", "Old phone", None, None)
        await devices.update_last_seen(u, "D2", 1000, "10.0.0.1", "agent")
        assert await devices.get_devices(u) == [
            Device(u, "D1", "Old phone", None, None),
            Device(u, "D2", "Laptop", 1000, "10.0.0.1"),
        ]
        assert await devices.get_devices("@nobody:test") == []

        await reg.add_access_token("t-d1", u, "D1")
        await reg.add_access_token("t-d2", u, "D2")
        await reg.add_access_token("t-none", u, None)
        await changed(devices.delete_devices(u, ["D1"]))
        assert await devices.get_device(u, "D1") is None
        assert await reg.get_token_info("t-d1") is None
        assert await reg.get_token_info("t-d2") is not None
        assert await reg.get_token_info("t-none") is not None
        await devices.store_device(u, "D3", None)
        await changed(devices.delete_devices(u, ["D2", "D3"]))
        assert await devices.get_devices(u) == []
        assert await reg.get_token_info("t-d2") is None
        await devices.delete_devices(u, [])

        changes = await devices.get_changes_since(0, gen.get_current_token())
        assert [(user, device) for _, user, device in changes] == [
            (u, "D1"), (u, "D2"), (u, "D1"), (u, "D1"), (u, "D3"), (u, "D2"), (u, "D3"),
        ]
        ids = [stream_id for stream_id, _, _ in changes]
        assert ids == sorted(set(ids)), ids  # strictly increasing
        assert gen.get_current_token() == ids[-1]
        assert all(a < b for a, b in zip(tokens, tokens[1:], strict=False)), tokens
        # The range is (from, to].
        assert await devices.get_changes_since(ids[1], ids[3]) == changes[2:4]
        assert await devices.get_changes_since(ids[-1], ids[-1] + 10) == []
        rows = await db.execute("writers", "SELECT DISTINCT instance_name FROM device_lists_stream")
        assert rows == [("master",)]

    env.run(scenario)


def test_ui_auth_store(env: Env) -> None:
    db = env.new_db()
    store = UIAuthStore(db)

    async def scenario() -> None:
        await prepare_database(db, is_main=True)
        await store.create_session("s1", {"username": "a", "n": 1}, "/register", "POST", "register")
        await store.create_session("s2", {}, "/delete_devices", "POST", "delete")
        session = await store.get_session("s1")
        assert session is not None
        assert session["clientdict"] == {"username": "a", "n": 1}
        assert (session["uri"], session["method"]) == ("/register", "POST")
        assert abs(session["creation_ts"] - now_ms()) < 60_000
        assert await store.get_session("missing") is None

        assert await store.get_completed_stages("s1") == {}
        await store.mark_stage_complete("s1", "m.login.dummy", True)
        await store.mark_stage_complete("s1", "m.login.password", "@a:test")
        await store.mark_stage_complete("s1", "m.login.dummy", {"again": 1})  # replaces
        await store.mark_stage_complete("s2", "m.login.password", "@b:test")
        assert await store.get_completed_stages("s1") == {
            "m.login.dummy": {"again": 1},
            "m.login.password": "@a:test",
        }

        await store.delete_session("s1")
        assert await store.get_session("s1") is None
        assert await store.get_completed_stages("s1") == {}
        assert await store.get_completed_stages("s2") == {"m.login.password": "@b:test"}

        await db.execute("age", "UPDATE ui_auth_sessions SET creation_ts = ?", now_ms() - 120_000)
        await store.create_session("s3", {}, "/x", "POST", "new")
        await store.delete_old_sessions(60_000)
        assert await store.get_session("s2") is None
        assert await store.get_completed_stages("s2") == {}
        assert await store.get_session("s3") is not None

    env.run(scenario)


# -- stream id generators -------------------------------------------------------------------------


def test_single_writer_positions(env: Env) -> None:
    db = env.new_db()
    gen = device_lists_ids("master", ["master"])
    seen_inside: list[tuple[int, int]] = []
    failed: list[int] = []

    def allocate(txn: Txn) -> int:
        stream_id = insert_stream_row(txn, gen, "@u:test", "D")
        seen_inside.append((stream_id, gen.get_current_token()))
        return stream_id

    def allocate_and_fail(txn: Txn) -> None:
        failed.append(insert_stream_row(txn, gen, "@u:test", "FAILED"))
        raise Boom()

    async def scenario() -> None:
        await prepare_database(db, is_main=True)
        await gen.load(db)
        assert gen.get_current_token() == 0
        previous = 0
        for _ in range(4):
            stream_id = await db.run_interaction("allocate", allocate)
            assert stream_id > previous
            # Inside its transaction the new id is not yet the current token; after commit it is.
            assert seen_inside[-1] == (stream_id, previous)
            assert gen.get_current_token() == stream_id == gen.get_local_position()
            previous = stream_id

        with pytest.raises(Boom):
            await db.run_interaction("allocate_and_fail", allocate_and_fail)
        assert failed[0] > previous
        assert gen.get_current_token() >= previous
        rows = await db.execute("failed", "SELECT 1 FROM device_lists_stream WHERE device_id = 'FAILED'")
        assert rows == []
        # The rolled-back id does not hold the stream back.
        after = await db.run_interaction("allocate", allocate)
        assert after > failed[0]
        assert gen.get_current_token() == after

        # A restart continues after everything persisted.
        restarted = device_lists_ids("master", ["master"])
        await restarted.load(db)
        assert restarted.get_current_token() == after

        def allocate_restarted(txn: Txn) -> int:
            return insert_stream_row(txn, restarted, "@u:test", "D")

        assert await db.run_interaction("allocate", allocate_restarted) > after

    env.run(scenario)


def test_single_writer_in_flight_transactions_hold_the_token(pg_env: Env) -> None:
    db = pg_env.new_db(cp_max=4)
    pg_env.run(lambda: prepare_database(db, is_main=True))
    gen = device_lists_ids("master", ["master"])
    pg_env.run(lambda: gen.load(db))

    def slow(txn: Txn, allocated: list[int], release: threading.Event, fail: bool) -> int:
        allocated.append(insert_stream_row(txn, gen, "@u:test", "SLOW"))
        wait(release)
        if fail:
            raise Boom()
        return allocated[0]

    def fast(txn: Txn) -> int:
        return insert_stream_row(txn, gen, "@u:test", "FAST")

    base = pg_env.run(lambda: db.run_interaction("fast", fast))
    for fail in (False, True):
        allocated: list[int] = []
        release = pg_env.event()
        pending = pg_env.run.start(lambda: db.run_interaction("slow", slow, allocated, release, fail))  # noqa: B023
        wait_until(lambda: bool(allocated))  # noqa: B023
        later = pg_env.run(lambda: db.run_interaction("fast", fast))
        assert later > allocated[0] > base
        # The later id committed, but the earlier one is in flight: the token waits for it.
        assert gen.get_current_token() == allocated[0] - 1 == base
        assert gen.get_local_position() == base
        release.set()
        if fail:
            with pytest.raises(Boom):
                pending.result(TIMEOUT)
        else:
            assert pending.result(TIMEOUT) == allocated[0]
        assert gen.get_current_token() == later
        base = later


def test_non_writer_cannot_allocate(env: Env) -> None:
    db = env.new_db()
    reader = device_lists_ids("reader", ["master"])
    devices = DeviceStore(db, reader)

    async def scenario() -> None:
        await prepare_database(db, is_main=True)
        await reader.load(db)
        assert not reader.is_writer
        with pytest.raises(NotAWriterError):
            await db.run_interaction("alloc", insert_stream_row, reader, "@u:test", "D")
        with pytest.raises(NotAWriterError):
            await devices.store_device("@u:test", "D1", None)
        # The device insert of the failed transaction was rolled back.
        assert await devices.get_devices("@u:test") == []
        assert await db.execute("rows", "SELECT COUNT(*) FROM device_lists_stream") == [(0,)]

    env.run(scenario)


def test_two_writers_share_the_stream(pg_env: Env) -> None:
    run = pg_env.run
    db1, db2 = pg_env.new_db(cp_max=3), pg_env.new_db(cp_max=3)
    run(lambda: prepare_database(db1, is_main=True))
    run(lambda: prepare_database(db2, is_main=False))
    writers = ["w1", "w2"]
    w1, w2 = device_lists_ids("w1", writers), device_lists_ids("w2", writers)
    run(lambda: w1.load(db1))
    run(lambda: w2.load(db2))
    devices1 = DeviceStore(db1, w1)
    assert (w1.get_current_token(), w2.get_current_token()) == (0, 0)

    # w1 writes through the store, w2 directly.
    assert run(lambda: devices1.store_device("@a:test", "A1", None))
    p1 = w1.get_local_position()
    p2 = run(lambda: db2.run_interaction("w2", insert_stream_row, w2, "@b:test", "B1"))
    assert p2 > p1 > 0
    assert w2.get_local_position() == p2
    # Each only knows its own progress: the other writer's last known position (0) holds the token.
    assert w1.get_current_token() == 0
    assert w2.get_current_token() == 0
    assert w1.get_position("w2") == 0 and w2.get_position("w1") == 0

    w1.advance("w2", p2)
    # w1 has nothing in flight, so it moves up to everything it has seen.
    assert w1.get_positions() == {"w1": p2, "w2": p2}
    assert w1.get_current_token() == p2
    w2.advance("w1", p1)
    assert w2.get_current_token() == p1
    w2.advance("w1", w1.get_local_position())
    assert w2.get_current_token() == p2
    w1.advance("w2", p1)  # stale news never moves a position back
    assert w1.get_position("w2") == p2

    # w2 holds an id in flight while w1 commits a later one: no token may pass w2's id.
    allocated: list[int] = []
    release = pg_env.event()

    def slow(txn: Txn) -> int:
        allocated.append(insert_stream_row(txn, w2, "@b:test", "SLOW"))
        wait(release)
        return allocated[0]

    pending = run.start(lambda: db2.run_interaction("slow", slow))
    wait_until(lambda: bool(allocated))
    assert run(lambda: devices1.store_device("@a:test", "A2", None))
    p3 = w1.get_local_position()
    assert p3 > allocated[0]
    w1.advance("w2", w2.get_local_position())
    assert w2.get_local_position() == allocated[0] - 1
    assert w1.get_current_token() == allocated[0] - 1
    visible = run(lambda: devices1.get_changes_since(p2, w1.get_current_token()))
    assert visible == []
    release.set()
    assert pending.result(TIMEOUT) == allocated[0]
    assert w2.get_local_position() == allocated[0]
    w1.advance("w2", w2.get_local_position())
    assert w1.get_current_token() == allocated[0]
    w2.advance("w1", p3)
    w1.advance("w2", w2.get_local_position())
    assert w1.get_current_token() == w2.get_current_token() == p3
    changes = run(lambda: devices1.get_changes_since(p2, p3))
    assert [(s, d) for s, _, d in changes] == [(allocated[0], "SLOW"), (p3, "A2")]
    rows = run(lambda: db1.execute("w", "SELECT instance_name FROM device_lists_stream ORDER BY stream_id"))
    assert [r[0] for r in rows] == ["w1", "w2", "w2", "w1"]

    # A process that is not a writer of the stream cannot allocate on it.
    reader = device_lists_ids("reader", writers)
    run(lambda: reader.load(db1))
    with pytest.raises(NotAWriterError):
        run(lambda: db1.run_interaction("reader", insert_stream_row, reader, "@c:test", "C1"))


def test_two_writers_recover_positions_after_restart(pg_env: Env) -> None:
    run = pg_env.run
    db1, db2 = pg_env.new_db(cp_max=2), pg_env.new_db(cp_max=2)
    run(lambda: prepare_database(db1, is_main=True))
    writers = ["w1", "w2"]
    w1, w2 = device_lists_ids("w1", writers), device_lists_ids("w2", writers)
    run(lambda: w1.load(db1))
    run(lambda: w2.load(db2))
    for i in range(3):
        run(lambda: db1.run_interaction("w1", insert_stream_row, w1, "@a:test", f"A{i}"))  # noqa: B023
        run(lambda: db2.run_interaction("w2", insert_stream_row, w2, "@b:test", f"B{i}"))  # noqa: B023
    w1_pos, w2_pos = w1.get_local_position(), w2.get_local_position()
    assert w2_pos > w1_pos
    run(lambda: w1.persist_position(db1))
    run(lambda: w2.persist_position(db2))
    stored = run(lambda: db1.execute(
        "stored", "SELECT stream_name, instance_name, stream_id FROM stream_positions ORDER BY instance_name"
    ))
    assert stored == [("device_lists", "w1", w1_pos), ("device_lists", "w2", w2_pos)]
    # Persisting never moves a stored position back.
    run(lambda: db1.execute("bump", "UPDATE stream_positions SET stream_id = ? WHERE instance_name = 'w1'", w1_pos + 50))
    run(lambda: w1.persist_position(db1))
    assert run(lambda: db1.execute("w1", "SELECT stream_id FROM stream_positions WHERE instance_name = 'w1'")) == [
        (w1_pos + 50,)
    ]
    run(lambda: db1.execute("restore", "UPDATE stream_positions SET stream_id = ? WHERE instance_name = 'w1'", w1_pos))

    # w2 writes once more without persisting, then both "restart" on fresh pools.
    last = run(lambda: db2.run_interaction("w2", insert_stream_row, w2, "@b:test", "B-late"))
    db3, db4 = pg_env.new_db(cp_max=2), pg_env.new_db(cp_max=2)
    r1, r2 = device_lists_ids("w1", writers), device_lists_ids("w2", writers)
    reader = device_lists_ids("reader", writers)
    run(lambda: r1.load(db3))
    run(lambda: r2.load(db4))
    run(lambda: reader.load(db3))
    # Other writers' positions come from stream_positions; its own from what was allocated.
    assert r1.get_position("w2") == w2_pos
    assert r2.get_position("w1") == w1_pos
    assert r1.get_local_position() == last
    assert r2.get_local_position() == last
    assert reader.get_positions() == {"w1": w1_pos, "w2": w2_pos}
    assert r1.get_current_token() == w2_pos
    assert r2.get_current_token() == w1_pos
    assert reader.get_current_token() == w1_pos
    # New allocations continue after everything allocated before the restart.
    nxt = run(lambda: db3.run_interaction("w1", insert_stream_row, r1, "@a:test", "A-new"))
    assert nxt > last
    r1.advance("w2", r2.get_local_position())
    assert r1.get_current_token() == last


def test_id_fetched_but_not_yet_registered_holds_the_position(pg_env: Env) -> None:
    """The window between `nextval` returning and the id being recorded as in flight: neither a
    later commit of the same writer nor news from another writer may move this writer's
    position past the fetched id."""
    run = pg_env.run
    db = pg_env.new_db(cp_max=4)
    run(lambda: prepare_database(db, is_main=True))
    gen = device_lists_ids("w1", ["w1", "w2"])
    run(lambda: gen.load(db))
    fetched = pg_env.event()
    release = pg_env.event()
    slow_id: list[int] = []

    class PauseAfterNextval:
        """The real transaction, with a pause right after the sequence hands out an id."""

        def __init__(self, txn: Txn):
            self._txn = txn
            self._last_sql = ""

        def execute(self, sql: str, args: Any = ()) -> None:
            self._last_sql = sql
            self._txn.execute(sql, args)

        def fetchone(self) -> Any:
            row = self._txn.fetchone()
            if "nextval" in self._last_sql:
                slow_id.append(int(row[0]))
                fetched.set()
                wait(release)
            return row

        def __getattr__(self, name: str) -> Any:
            return getattr(self._txn, name)

    def slow(txn: Txn) -> int:
        return insert_stream_row(PauseAfterNextval(txn), gen, "@a:test", "SLOW")  # type: ignore[arg-type]

    pending = run.start(lambda: db.run_interaction("slow", slow))
    wait(fetched)
    fast = run(lambda: db.run_interaction("fast", insert_stream_row, gen, "@a:test", "FAST"))
    assert fast > slow_id[0]
    assert gen.get_local_position() < slow_id[0]
    gen.advance("w2", fast + 5)
    assert gen.get_local_position() < slow_id[0]
    assert gen.get_current_token() < slow_id[0]
    release.set()
    assert pending.result(TIMEOUT) == slow_id[0]
    assert gen.get_local_position() == fast + 5
    assert gen.get_current_token() == fast + 5
