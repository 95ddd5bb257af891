"""PostgreSQL specifics of the metadata store: how writers queue, and what an erase does there.

Writers: SQLite's `BEGIN IMMEDIATE` takes the database's one write lock before the first read, so a
read-then-write transaction never works on stale rows. The same on PostgreSQL is one transaction-level
advisory lock taken as the first statement of every write transaction: writers of every process on the
database wait for it in the server (no application-side sleep, no retry loop), it is released by COMMIT or
ROLLBACK, and plain reads never wait for it.

Erasure (measured on PostgreSQL 15 here; tests/test_erasure.py scans all of PGDATA under
`--metadata=postgres`): a DELETE leaves the row in its heap page and its index entries. A plain VACUUM
prunes them but does not overwrite the freed space: the last row added to a page (the one at the lowest
offset) kept its text in the page after VACUUM + CHECKPOINT in 6 of 6 test runs. VACUUM FULL writes the
table and its indexes into new files and truncates the old ones, so the tables that hold user text
(`TEXT_TABLES`) are rewritten; it copies rows an older snapshot still sees, so a plain VACUUM first tells
whether any deleted row is still visible (then the erase stays pending, as with SQLite's busy checkpoint).
The WAL still holds the inserted rows (and full-page images) until its segment is retired:
`pg_switch_wal()` then a CHECKPOINT moves the redo point past it, and PostgreSQL removes the segment (or,
with `wal_recycle=on`, renames it for reuse without overwriting it). What the server's settings or the
role's privileges keep out of reach is said once, at open (`erase_limits`), and in every erase report.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from sqlalchemy import Connection, Engine, event, text

log = logging.getLogger("memsweep.metadata")

# One lock id for the store's writers ("memsweep" in ASCII): one database holds one store.
WRITE_LOCK = 0x6D656D7377656570 & 0x7FFF_FFFF_FFFF_FFFF
LOCK_TIMEOUT = "5s"  # an erase's VACUUM waits at most this long for a table lock, then stays pending
# Tables whose rows carry user text (names, chunk texts, descriptions, relation words, plans, tool
# arguments) and are deleted or updated by deletes. The others hold ids, counts and times only.
READER_WAIT_SECONDS = 2.0
_NOT_REMOVABLE = re.compile(r"(\d+) are dead but not yet removable")
TEXT_TABLES = ("datasets", "data", "chunks", "entities", "data_entities", "relations", "journal", "confirm_tokens")


def install_hooks(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("memsweep_write", False):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")


def declare_partial_indexes() -> None:
    """Give PostgreSQL the partial indexes' WHERE that schema.py declares for SQLite (idempotent). Done when
    a PostgreSQL store opens, not in schema.py: the `postgresql_where` option loads SQLAlchemy's PostgreSQL
    dialect, ~25 ms of every SQLite process's start (a fresh server's first call, each CLI command)."""
    from memsweep.storage.stores.schema import metadata

    for table in metadata.tables.values():
        for index in table.indexes:
            where = index.dialect_kwargs.get("sqlite_where")
            if where is not None:
                index.dialect_options["postgresql"]["where"] = where


def text_columns() -> list[tuple[str, str]]:
    """(table, column) of every column of TEXT_TABLES that can hold user text."""
    from memsweep.storage.stores.schema import metadata
    from sqlalchemy import String

    return [
        (table, column.name)
        for table in TEXT_TABLES
        for column in metadata.tables[table].columns
        if isinstance(column.type, String) and (column.type.length is None or column.type.length > 64)
    ]


# Part of the metadata store's schema fingerprint (metadata.py): change it when prepare_schema changes what
# it does, so every store is prepared again at its next open.
SCHEMA_REVISION = "statistics-0 on text columns"


def prepare_schema(conn: Connection) -> None:
    """No planner statistics on text columns: ANALYZE (autovacuum runs it on its own) copies sampled values
    into `pg_statistic`, a catalog an erase cannot rewrite, so a deleted chunk's text could stay there and
    in the WAL. Our queries look text columns up by index, where the defaults plan as well."""
    for table, column in text_columns():
        target = conn.execute(
            text("SELECT attstattarget FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attname = :c"),
            {"t": table, "c": column},
        ).scalar_one()
        if target != 0:
            conn.exec_driver_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET STATISTICS 0')


def erase(engine: Engine, wait_seconds: float = READER_WAIT_SECONDS) -> bool:
    """VACUUM, then VACUUM FULL of the text tables, then CHECKPOINT, switch WAL segment, CHECKPOINT (the
    last three where the role may). The role owns the tables (memsweep created them), which VACUUM FULL
    needs: for another role PostgreSQL skips the table with a warning, not an error.

    False (the erase stays pending and the sweep retries) when a table lock was not granted in time or when
    deleted rows could not be removed because another transaction still sees them (an old snapshot): VACUUM
    VERBOSE says so in its own report ("N are dead but not yet removable"). The statistics view's
    `n_dead_tup` is no substitute: the deleting connection reports its counts up to a second later, so it
    called an erase pending that was not (seen in the PostgreSQL run of tests/test_erasure.py). A snapshot
    that short-lived (autovacuum's ANALYZE) is waited out for up to `wait_seconds`, as SQLite's
    checkpoint waits 2 s for readers."""
    tables = list(TEXT_TABLES)
    with engine.connect() as raw:
        conn = raw.execution_options(isolation_level="AUTOCOMMIT")
        driver = conn.connection.driver_connection
        assert driver is not None
        notices: list[str] = []

        def on_notice(diag: Any) -> None:
            notices.append(diag.message_primary or "")

        driver.add_notice_handler(on_notice)
        conn.exec_driver_sql(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        try:
            deadline = time.monotonic() + wait_seconds
            while True:
                notices.clear()
                for table in tables:
                    conn.exec_driver_sql(f'VACUUM (VERBOSE) "{table}"')
                kept = sum(int(n) for msg in notices for n in _NOT_REMOVABLE.findall(msg))
                if kept == 0:
                    break
                if time.monotonic() >= deadline:
                    log.warning("erase pending: %s deleted rows are still visible to another transaction", kept)
                    return False
                time.sleep(0.1)  # a reader's snapshot, not a writer: nothing to queue on
            for table in tables:
                conn.exec_driver_sql(f'VACUUM FULL "{table}"')
        except Exception as exc:
            log.warning("erase pending: VACUUM did not complete (%s); the sweep will retry", exc)
            return False
        finally:
            conn.exec_driver_sql("RESET lock_timeout")
            driver.remove_notice_handler(on_notice)
        _try(conn, "CHECKPOINT")
        if _try(conn, "SELECT pg_switch_wal()"):
            _try(conn, "CHECKPOINT")
    return True


def _try(conn: Connection, sql: str) -> bool:
    """A privileged step; without the privilege it is skipped (and `erase_limits` has said so)."""
    try:
        conn.exec_driver_sql(sql)
        return True
    except Exception as exc:
        log.debug("%s skipped: %s", sql, exc)
        return False


def erase_limits(engine: Engine) -> str | None:
    """What an erase cannot reach on this server, in one or two sentences; None when nothing."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),"
                " pg_has_role(current_user, 'pg_checkpoint', 'MEMBER'),"
                " has_function_privilege('pg_switch_wal()', 'EXECUTE'),"
                " current_setting('wal_recycle'), current_setting('archive_mode'),"
                " current_setting('wal_keep_size'),"
                " (SELECT count(*) FROM pg_replication_slots)"
            )
        ).one()
        conn.rollback()
    superuser, checkpoint_role, switch, recycle, archive, keep, slots = row
    kept: list[str] = []
    if not (superuser or checkpoint_role):
        # VACUUM FULL writes the new table files itself; without CHECKPOINT only the WAL waits.
        kept.append("the WAL keeps deleted rows until PostgreSQL's next scheduled checkpoint (grant pg_checkpoint)")
    if not (superuser or switch):
        kept.append("the WAL keeps deleted rows until its segment fills (grant EXECUTE on pg_switch_wal())")
    if recycle == "on":
        kept.append("retired WAL segments are reused without being overwritten at once (set wal_recycle = off)")
    if archive != "off":
        kept.append("the WAL archive keeps copies (archive_mode is on)")
    if keep not in ("0", "0MB", "0kB") or int(slots) > 0:
        kept.append("wal_keep_size or replication slots keep old WAL segments")
    if not kept:
        return None
    return "On this PostgreSQL server " + "; ".join(kept) + "."
