"""The metadata store: SQLAlchemy 2, SQLite by default (aiosqlite under its asyncio layer), PostgreSQL + psycopg 3
for teams. The hot paths run each transaction as one function on a plain driver connection (`call`).

SQLite facts from ENGINES.md shape this module: every write transaction starts with `BEGIN IMMEDIATE`
(plain deferred BEGIN lost 416 of 500 concurrent updates), WAL with a busy timeout, `secure_delete=ON`
so deleted text is zeroed in the file, and `wal_checkpoint(TRUNCATE)` on erase so no old page image
stays in the `-wal` file.

On PostgreSQL (`postgresql+psycopg://…`, storage/stores/postgres.py) the same two promises are kept with
PostgreSQL's own means: every write transaction first takes one transaction-level advisory lock (writers
queue in the server, never in an application-side sleep), reads run at REPEATABLE READ (one snapshot, as on
SQLite), and the erase rewrites the tables that hold user text (VACUUM FULL) and then checkpoints so the
WAL that held the deleted rows is retired.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from memsweep.errors import StoreUnavailable
from memsweep.storage.stores import postgres
from memsweep.storage.stores.schema import ADDED_COLUMNS, metadata
from sqlalchemy import URL, Connection, Engine, create_engine, event, func, make_url, select, text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_WAIT_MS = 2_000


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class MetadataStore:
    """Hands out transactions: `call` runs a function in one transaction on a plain driver connection, in a
    worker thread; every path of memsweep uses it. `read`/`write` give an `AsyncConnection` of SQLAlchemy's
    asyncio layer (tests, and `call` itself on a database without a sync driver). The asyncio engine is
    made at its first use, so the processes of a SQLite or PostgreSQL store never import that layer (8 MB
    of memory and ~30 ms of start-up, paid for each call by a client that starts a server per call), and
    no call imports it on the event loop (92 ms, seen as the loop's worst stall at an open)."""

    def __init__(
        self, url: URL, path: Path | None, sync_engine: Engine | None, make_async: Callable[[], AsyncEngine]
    ) -> None:
        self.url = url
        self.path = path  # the SQLite file, when there is one (erasure and doctor read it)
        self.is_postgres = url.get_backend_name() == "postgresql"
        # What an erase cannot reach on this database (PostgreSQL: WAL copies kept by the server's settings);
        # None when an erase removes everything. Set at open; the deletion report quotes it.
        self.erase_limits: str | None = None
        self._reads = {"isolation_level": "REPEATABLE READ"} if self.is_postgres else {}
        self._make_async = make_async
        self._async: AsyncEngine | None = None
        self._sync = sync_engine
        self._sync_reader = sync_engine.execution_options(**self._reads) if sync_engine else None
        self._sync_writer = sync_engine.execution_options(memsweep_write=True) if sync_engine else None

    @property
    def engine(self) -> AsyncEngine:
        """SQLAlchemy's asyncio engine, made at the first call that needs it."""
        if self._async is None:
            self._async = self._make_async()
        return self._async

    @classmethod
    async def open(cls, url: str) -> MetadataStore:
        is_sqlite = url.startswith("sqlite")
        is_postgres = url.startswith("postgresql")
        if is_postgres and not url.startswith("postgresql+psycopg://"):
            from memsweep.errors import InvalidInput

            raise InvalidInput(
                "MEMSWEEP_METADATA_URL for PostgreSQL must use the psycopg 3 driver: "
                "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE (install it with pip install 'memsweep[postgres]')."
            )
        kwargs: dict[str, Any] = {}
        if is_sqlite:
            # Pooled connections: opening one (a thread plus PRAGMAs) cost 20–50 ms per transaction. An idle
            # pooled connection holds no read snapshot, so it does not block the erase's TRUNCATE checkpoint.
            kwargs = {"pool_size": 4, "max_overflow": 8, "connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000}}
        elif is_postgres:
            kwargs = {"pool_size": 4, "max_overflow": 8, "pool_pre_ping": True}
        parsed = make_url(url)
        hooks = postgres.install_hooks if is_postgres else _install_sqlite_hooks if is_sqlite else None

        def make_async() -> AsyncEngine:
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(parsed, **kwargs)
            if hooks is not None:
                hooks(engine.sync_engine)
            return engine

        sync_engine = None
        made: AsyncEngine | None = None
        try:
            if is_postgres:
                # psycopg 3 serves both sides: the sync engine for `call`, the async one for `read`/`write`.
                sync_engine = create_engine(parsed, **kwargs)
                postgres.declare_partial_indexes()
            elif is_sqlite:
                # The same file through the stdlib driver, for `call`: a statement through the asyncio layer
                # cost 0.57–0.67 ms here, on a plain connection 0.08–0.11 ms (bench/sql_overhead.py).
                sync_engine = create_engine(
                    parsed.set(drivername="sqlite"),
                    pool_size=4,
                    max_overflow=8,
                    connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                )
            else:
                made = make_async()  # another database runs everything through its async driver: fail here
        except ImportError as exc:
            raise StoreUnavailable(
                f"The driver for {url.split(':', 1)[0]} is not installed ({exc}). "
                "For PostgreSQL: pip install 'memsweep[postgres]'. Nothing was changed."
            ) from exc
        if sync_engine is not None and hooks is not None:
            hooks(sync_engine)
        store = cls(parsed, Path(parsed.database) if is_sqlite and parsed.database else None, sync_engine, make_async)
        store._async = made
        try:
            if await store._schema_recorded() != SCHEMA_FINGERPRINT:
                await store.call(_bring_up_to_date, is_postgres, write=True)
                await store._record_schema()
        except Exception as exc:
            await store.close()
            raise StoreUnavailable(
                f"Cannot open the metadata database ({parsed.render_as_string(hide_password=True)}): "
                f"{exc}. Nothing was changed; check the data directory's permissions and free space."
            ) from exc
        if is_postgres:
            assert sync_engine is not None
            store.erase_limits = await anyio.to_thread.run_sync(postgres.erase_limits, sync_engine)
        return store

    async def _schema_recorded(self) -> str | None:
        """The schema fingerprint the store was last brought up to, read without a write lock; None for a
        new store or one made before fingerprints (no `state` table, or no row)."""
        from sqlalchemy.exc import DBAPIError

        try:
            return await self.call(get_state, SCHEMA_KEY)
        except DBAPIError:
            return None

    async def _record_schema(self) -> None:
        """Record the fingerprint, in its own transaction: a PostgreSQL role that may not write the `state`
        table (the schema check above needs no table privilege when nothing is missing) still opens the
        store, and then checks the schema at every open, as before fingerprints."""
        from sqlalchemy.exc import DBAPIError

        try:
            await self.call(set_state, SCHEMA_KEY, SCHEMA_FINGERPRINT, write=True)
        except DBAPIError:
            pass

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: one consistent snapshot for everything read inside it."""
        async with self.engine.execution_options(**self._reads).connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (`BEGIN IMMEDIATE` on SQLite): commits on exit, rolls back on error."""
        async with self.engine.execution_options(memsweep_write=True).connect() as conn, conn.begin():
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
        engine = self._sync_writer if write else self._sync_reader
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
        if self.is_postgres:
            assert self._sync is not None
            return await anyio.to_thread.run_sync(postgres.erase, self._sync)
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

    async def pair(self, data_dir: Path) -> str:
        """Check that this metadata and `data_dir` belong to one store, and return the store's id.

        The id is kept in both places (`state.store_id`, `DATA_DIR/store-id`). SQLite's file lives in the
        data directory, so there a missing half is filled in (stores made before the id existed). A
        PostgreSQL database can be pointed at any directory: one that holds another store's metadata, or a
        directory that belongs to another database, would mix two stores (deletes that find no files, adds
        whose files another store's doctor calls orphans), so that is refused before any memory is read or
        written."""
        marker = data_dir / STORE_ID_FILE
        on_disk = marker.read_text().strip() if marker.exists() else None
        where = self.url.render_as_string(hide_password=True)

        def claim(conn: Connection) -> str | None:
            current = get_state(conn, "store_id")
            if current is None and (on_disk is None or not self.is_postgres):
                current = on_disk or str(uuid.uuid4())
                set_state(conn, "store_id", current)
            return current

        # Read first: a paired store (every open but the first) needs no write transaction, so an open does
        # not wait behind another process's write.
        in_meta = await self.call(get_state, "store_id")
        if in_meta is None:
            in_meta = await self.call(claim, write=True)
        if in_meta is None:
            raise StoreUnavailable(
                f"The data directory {data_dir} belongs to memsweep store {on_disk}, but the metadata database "
                f"({where}) holds no store. Nothing was changed. Point MEMSWEEP_METADATA_URL at the database "
                "this directory was used with, or use a new, empty data directory."
            )
        if on_disk is None:
            if self.is_postgres and _has_content(data_dir):
                raise StoreUnavailable(
                    f"The metadata database ({where}) belongs to memsweep store {in_meta}, and the data directory "
                    f"{data_dir} already holds data of its own. Nothing was changed. Point --data-dir at the "
                    "directory this database was used with, or MEMSWEEP_METADATA_URL at an empty database."
                )
            if self.is_postgres and (await self.call(_live_items)) > 0:
                raise StoreUnavailable(
                    f"The metadata database ({where}) holds memsweep store {in_meta}, whose files, vectors and "
                    f"graph are in another data directory, not in {data_dir}. Nothing was changed. Point "
                    "--data-dir at that directory. To attach this one anyway (its files are then missing; "
                    f"`memsweep doctor --repair` rebuilds graph and vectors), write {in_meta} into {marker}."
                )
            marker.write_text(in_meta + "\n")
        elif on_disk != in_meta:
            raise StoreUnavailable(
                f"The data directory {data_dir} belongs to memsweep store {on_disk}, but the metadata database "
                f"({where}) to store {in_meta}. Nothing was changed. Point --data-dir and MEMSWEEP_METADATA_URL "
                "at the pair that were used together."
            )
        return in_meta

    async def close(self) -> None:
        if self._async is not None:
            await self._async.dispose()
        if self._sync is not None:
            self._sync.dispose()


STORE_ID_FILE = "store-id"


def _has_content(data_dir: Path) -> bool:
    """Whether a data directory already holds a store's data (owned files or vectors)."""
    return any((data_dir / sub).exists() and any((data_dir / sub).iterdir()) for sub in ("files", "vectors"))


def _schema_fingerprint() -> str:
    """What `create_all` and `_add_missing_columns` would bring a store up to: tables, columns, indexes.
    Checking it costs one read; bringing a store up to date takes a write transaction and 19 index checks
    (80–90 ms of every open, the largest part of a fresh server's first call), so an open does it only
    when the store's recorded fingerprint differs (a new store, an older version, a changed schema)."""
    import hashlib

    parts = []
    for table in metadata.sorted_tables:
        cols = [(c.name, str(c.type), c.nullable, c.primary_key) for c in table.columns]
        idx = sorted(
            (
                i.name or "",
                tuple(c.name for c in i.columns),
                i.unique,
                sorted((k, str(v)) for k, v in i.dialect_kwargs.items() if k.startswith("sqlite_")),
            )
            for i in table.indexes
        )  # a partial index's WHERE is among its SQLite options (PostgreSQL's copy is derived from them)
        parts.append(repr((table.name, cols, idx)))
    parts.append(repr(ADDED_COLUMNS))
    parts.append(postgres.SCHEMA_REVISION)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


SCHEMA_KEY = "schema"
SCHEMA_FINGERPRINT = _schema_fingerprint()


def _live_items(conn: Connection) -> int:
    from memsweep.storage.stores.schema import data

    return int(conn.execute(select(func.count()).select_from(data)).scalar_one())


def _bring_up_to_date(conn: Connection, is_postgres: bool) -> None:
    metadata.create_all(conn)
    _add_missing_columns(conn)
    if is_postgres:
        postgres.prepare_schema(conn)


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
    # Indexes added to an existing table (create_all makes only those of new tables).
    for table_obj in metadata.sorted_tables:
        for index in table_obj.indexes:
            index.create(conn, checkfirst=True)


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
    """A flag in the `state` table (sync: inside a function given to `MetadataStore.call`)."""
    row = conn.execute(text("SELECT value FROM state WHERE key = :k"), {"k": key}).first()
    return row[0] if row else None


def set_state(conn: Connection, key: str, value: str | None) -> None:
    conn.execute(text("DELETE FROM state WHERE key = :k"), {"k": key})
    if value is not None:
        conn.execute(text("INSERT INTO state (key, value) VALUES (:k, :v)"), {"k": key, "v": value})
