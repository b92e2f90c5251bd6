"""The caches stream and housekeeping at the storage layer, on both engines: a token cached
by one process stays valid there until the other process's invalidation row is applied, and
the background jobs' prune queries remove only what is old or orphaned."""

from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.prepare import prepare_database
from homeserver.storage.stores.caches import CacheInvalidationStore
from homeserver.storage.stores.event_push_actions import EventPushActionsStore
from homeserver.storage.stores.registration import RegistrationStore
from homeserver.storage.stores.to_device import ToDeviceStore
from homeserver.util.clock import now_ms
from tests.test_storage import Env, env  # noqa: F401,F811 - fixtures (`run` is in conftest.py)

HOUR_MS = 3600 * 1000


def _caches(db, instance: str) -> CacheInvalidationStore:  # type: ignore[no-untyped-def]
    ids = StreamIdGenerator("caches", instance, [instance], "cache_invalidations", "cache_invalidations_sequence")
    return CacheInvalidationStore(db, ids)


def test_token_cache_is_invalidated_by_the_other_process_rows(env: Env) -> None:  # noqa: F811
    db = env.new_db()
    caches_a, caches_b = _caches(db, "proc_a"), _caches(db, "proc_b")
    reg_a, reg_b = RegistrationStore(db, caches_a), RegistrationStore(db, caches_b)

    async def scenario() -> None:
        await prepare_database(db, is_main=True)
        for caches in (caches_a, caches_b):
            await caches.stream_ids.load(db)
            await caches.load()
        await reg_a.create_user("@u:test", None)
        await reg_a.add_access_token("tok-1", "@u:test", "D1")
        await reg_a.add_access_token("tok-2", "@u:test", "D2")
        assert await reg_a.get_token_info("tok-1") is not None  # cached in process A
        assert await reg_a.get_token_info("tok-2") is not None
        await reg_b.delete_access_token("tok-1")
        await reg_b.delete_access_tokens_for_user("@u:test")
        assert await reg_b.get_token_info("tok-1") is None  # B applied its own at once
        # A still trusts its cache: nothing told it yet.
        assert await reg_a.get_token_info("tok-1") is not None
        rows = await caches_a.get_invalidations("proc_b", caches_a.start_position, 10**12, 100)
        assert [(r.cache_name, r.keys) for r in rows] == [
            ("access_tokens", ["tok-1"]), ("access_tokens_of_user", ["@u:test"]),
        ]
        for row in rows:
            caches_a.apply(row.cache_name, row.keys)
        assert await reg_a.get_token_info("tok-1") is None
        assert await reg_a.get_token_info("tok-2") is None
        # Old invalidations are pruned; recent ones stay.
        await db.execute("age", "UPDATE cache_invalidations SET invalidation_ts = ? WHERE cache_name = ?",
                         now_ms() - 2 * HOUR_MS, "access_tokens")
        assert await caches_a.prune(HOUR_MS) == 1
        assert await db.execute("left", "SELECT cache_name FROM cache_invalidations") == [("access_tokens_of_user",)]

    env.run(scenario)


def test_prune_to_device_and_push_actions(env: Env) -> None:  # noqa: F811
    db = env.new_db()
    ids = StreamIdGenerator("to_device", "master", ["master"], "to_device_sends", "to_device_sequence")
    to_device = ToDeviceStore(db, ids)
    push_actions = EventPushActionsStore(db)

    async def scenario() -> None:
        await prepare_database(db, is_main=True)
        await ids.load(db)
        await db.execute("device", "INSERT INTO users (user_id, creation_ts) VALUES ('@u:test', 0)")
        await db.execute("device", "INSERT INTO devices (user_id, device_id) VALUES ('@u:test', 'LIVE')")
        for device in ("LIVE", "GONE"):
            await db.execute(
                "inbox", "INSERT INTO device_inbox (stream_id, instance_name, user_id, device_id, sender, message_type, content)"
                " VALUES (1, 'master', '@u:test', ?, '@s:test', 't', '{}')", device,
            )
        for txn_id, ts in (("old", now_ms() - 2 * 24 * HOUR_MS), ("new", now_ms())):
            await db.execute(
                "send", "INSERT INTO to_device_sends (stream_id, instance_name, sender, scope, txn_id, inserted_ts)"
                " VALUES (1, 'master', '@s:test', 'D', ?, ?)", txn_id, ts,
            )
        assert await to_device.prune(24 * HOUR_MS) == 2
        assert await db.execute("inbox", "SELECT device_id FROM device_inbox") == [("LIVE",)]
        assert await db.execute("sends", "SELECT txn_id FROM to_device_sends") == [("new",)]
        for event_id, ts in (("$old", now_ms() - 31 * 24 * HOUR_MS), ("$new", now_ms())):
            await db.execute(
                "push", "INSERT INTO event_push_actions (user_id, room_id, event_id, stream_ordering, actions, notify,"
                " highlight, thread_id, received_ts) VALUES ('@u:test', '!r:test', ?, 1, '[]', 1, 0, 'main', ?)",
                event_id, ts,
            )
        assert await push_actions.prune(30 * 24 * HOUR_MS) == 1
        assert await db.execute("push", "SELECT event_id FROM event_push_actions") == [("$new",)]

    env.run(scenario)
