"""The metadata store: SQLAlchemy 2 async, SQLite + aiosqlite by default, any async URL later.

SQLite facts from ENGINES.md shape this module: every write transaction starts with `BEGIN IMMEDIATE`
(plain deferred BEGIN lost 416 of 500 concurrent updates), WAL with a busy timeout, `secure_delete=ON`
so deleted text is zeroed in the file, and `wal_checkpoint(TRUNCATE)` on erase so no old page image
stays in the `-wal` file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from memsweep.errors import StoreUnavailable
from memsweep.storage.stores.schema import ADDED_COLUMNS, metadata
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_WAIT_MS = 2_000


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class MetadataStore:
    """Owns the async engine; hands out read and write transactions."""

    def __init__(self, engine: AsyncEngine, path: Path | None, sync_engine: Engine | None = None) -> None:
        self.engine = engine
        self.path = path  # the SQLite file, when there is one (erasure and doctor read it)
        self._writer = engine.execution_options(memsweep_write=True)
        self._sync = sync_engine
        self._sync_writer = sync_engine.execution_options(memsweep_write=True) if sync_engine else None

    @classmethod
    async def open(cls, url: str) -> MetadataStore:
        is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if is_sqlite:
            # Pooled connections: opening one (a thread plus PRAGMAs) cost 20–50 ms per transaction. An idle
            # pooled connection holds no read snapshot, so it does not block the erase's TRUNCATE checkpoint.
            kwargs = {"pool_size": 4, "max_overflow": 8, "connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000}}
        engine = create_async_engine(url, **kwargs)
        sync_engine = None
        if is_sqlite:
            _install_sqlite_hooks(engine.sync_engine)
            # The same file through the stdlib driver, for `call`: a statement through the asyncio layer
            # cost 0.57–0.67 ms here, on a plain connection 0.08–0.11 ms (bench/sql_overhead.py).
            sync_engine = create_engine(
                engine.url.set(drivername="sqlite"),
                pool_size=4,
                max_overflow=8,
                connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _install_sqlite_hooks(sync_engine)
        store = cls(engine, Path(engine.url.database) if is_sqlite and engine.url.database else None, sync_engine)
        try:
            async with store.write() as conn:
                await conn.run_sync(metadata.create_all)
                await conn.run_sync(_add_missing_columns)
        except Exception as exc:
            await engine.dispose()
            raise StoreUnavailable(
                f"Cannot open the metadata database ({engine.url.render_as_string(hide_password=True)}): "
                f"{exc}. Nothing was changed; check the data directory's permissions and free space."
            ) from exc
        return store

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: one consistent snapshot for everything read inside it."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (`BEGIN IMMEDIATE` on SQLite): commits on exit, rolls back on error."""
        async with self._writer.connect() as conn, conn.begin():
            yield conn

    async def call(self, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
        """Run `fn(conn, *args)` in one transaction (`BEGIN IMMEDIATE` when `write`) and return its result.

        For the delete path's many small statements: on SQLite the whole function runs in a worker thread
        on a plain driver connection (one thread hop instead of one per statement); on another database
        it runs through the async engine's `run_sync`. Errors roll the transaction back and propagate.
        """
        if self._sync is None:
            async with self.write() if write else self.read() as conn:
                return await conn.run_sync(fn, *args)
        engine = self._sync_writer if write else self._sync
        assert engine is not None

        def work() -> T:
            with engine.connect() as conn, conn.begin():
                return fn(conn, *args)

        return await anyio.to_thread.run_sync(work)

    async def checkpoint(self, wait_ms: int = CHECKPOINT_WAIT_MS) -> bool:
        """Move WAL pages into the main file and truncate the WAL (erasure of old page images).

        True only when it completed: a reader in another process (an open read transaction on an old
        snapshot) makes SQLite give up with `busy`, and then the old page images are still in the WAL and
        the deleted text still in the main file. Waits at most `wait_ms` for readers, not the 30 s busy
        timeout of ordinary writes: the caller reports the erase as pending and the sweep retries."""
        if self.path is None:
            return True

        def work() -> bool:
            assert self._sync is not None
            with self._sync.connect() as conn:
                raw = conn.connection.driver_connection
                assert raw is not None
                raw.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
                try:
                    busy, _log, _done = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                return int(busy) == 0

        return await anyio.to_thread.run_sync(work)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._sync is not None:
            self._sync.dispose()


def _add_missing_columns(conn: Connection) -> None:
    """Bring a store made by an older version up to the schema (new columns, backfilled) in the same
    transaction that created any new tables."""
    from sqlalchemy import inspect

    inspector = inspect(conn)
    present: dict[str, set[str]] = {}
    for table, column, ddl, backfill in ADDED_COLUMNS:
        if table not in present:
            present[table] = {c["name"] for c in inspector.get_columns(table)}
        if column in present[table]:
            continue
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
        if backfill:
            conn.execute(text(backfill))
        present[table].add(column)


def _install_sqlite_hooks(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so `begin` below decides BEGIN vs BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("memsweep_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def get_state(conn: Connection, key: str) -> str | None:
    """A flag in the `state` table (sync: call through `MetadataStore.call` or `AsyncConnection.run_sync`)."""
    row = conn.execute(text("SELECT value FROM state WHERE key = :k"), {"k": key}).first()
    return row[0] if row else None


def set_state(conn: Connection, key: str, value: str | None) -> None:
    conn.execute(text("DELETE FROM state WHERE key = :k"), {"k": key})
    if value is not None:
        conn.execute(text("INSERT INTO state (key, value) VALUES (:k, :v)"), {"k": key, "v": value})
