"""Apply schema migrations (main process) or check the schema version (every other process)."""

import logging
import os
import re
from dataclasses import dataclass

from homeserver.storage.database import Database, Txn
from homeserver.storage.schema import SCHEMA_VERSION

logger = logging.getLogger(__name__)

DELTAS_DIR = os.path.join(os.path.dirname(__file__), "schema", "deltas")
_DELTA_RE = re.compile(r"^(\d{4})_[a-z0-9_]+(?:\.(postgres|sqlite))?\.sql$")


class SchemaError(Exception):
    """The database's schema does not match what this code needs."""


@dataclass(frozen=True)
class Delta:
    version: int
    filename: str


def deltas_for(engine_name: str) -> list[Delta]:
    found = []
    for filename in sorted(os.listdir(DELTAS_DIR)):
        match = _DELTA_RE.match(filename)
        if match and match.group(2) in (None, engine_name):
            found.append(Delta(int(match.group(1)), filename))
    return found


def split_statements(sql: str) -> list[str]:
    """Split a delta file at semicolons that end a line; `--` comments are dropped."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    statements = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [s.strip() for s in statements if s.strip()]


def _ensure_version_table(txn: Txn) -> None:
    txn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " lock CHAR(1) NOT NULL DEFAULT 'X' UNIQUE, version INTEGER NOT NULL)"
    )


def _read_version(txn: Txn) -> int:
    txn.execute("SELECT version FROM schema_version")
    row = txn.fetchone()
    return int(row[0]) if row else 0


def _migrate_txn(txn: Txn, engine_name: str) -> int:
    if engine_name == "postgres":
        # Two main processes started at once must not both migrate.
        txn.execute("SELECT pg_advisory_xact_lock(74657)")
    _ensure_version_table(txn)
    current = _read_version(txn)
    if current > SCHEMA_VERSION:
        raise SchemaError(
            f"the database has schema version {current}, newer than the {SCHEMA_VERSION} this "
            "code understands; run a newer homeserver"
        )
    for delta in deltas_for(engine_name):
        if delta.version <= current:
            continue
        logger.info("Applying schema delta %s", delta.filename)
        with open(os.path.join(DELTAS_DIR, delta.filename)) as f:
            for statement in split_statements(f.read()):
                txn.execute(statement)
    if current == 0:
        txn.execute("INSERT INTO schema_version (lock, version) VALUES ('X', ?)", (SCHEMA_VERSION,))
    else:
        txn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    return current


def _check_txn(txn: Txn) -> int:
    txn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version'"
        if txn.engine.name == "postgres"
        else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    )
    if txn.fetchone() is None:
        return 0
    return _read_version(txn)


async def prepare_database(db: Database, is_main: bool) -> None:
    """Migrate (main) or verify (workers) the schema; raises SchemaError with the fix."""
    if is_main:
        before = await db.run_interaction("prepare_database", _migrate_txn, db.engine.name)
        if before != SCHEMA_VERSION:
            logger.info("Database schema upgraded from version %d to %d", before, SCHEMA_VERSION)
        return
    current = await db.run_interaction("check_schema", _check_txn)
    if current < SCHEMA_VERSION:
        raise SchemaError(
            f"this code needs database schema version {SCHEMA_VERSION} but the database is at "
            f"version {current}; start (or upgrade) the main process first, it migrates the schema"
        )
    if current > SCHEMA_VERSION:
        raise SchemaError(
            f"the database has schema version {current}, newer than the {SCHEMA_VERSION} this "
            "code understands; upgrade this process to the main process's version"
        )
