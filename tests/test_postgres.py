"""PostgreSQL as the metadata store: what is specific to it (the shared suites run on it with
`pytest --metadata=postgres`; CI's subset is in .ci/run). Skipped on the SQLite run."""

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from memsweep.api import Memory
from memsweep.config import Settings
from memsweep.errors import InvalidInput, StoreUnavailable
from memsweep.storage.stores.metadata import MetadataStore, get_state, set_state
from sqlalchemy import Connection, make_url, text

pytestmark = pytest.mark.anyio


@pytest.fixture
def url(metadata_backend: str | None) -> Iterator[str]:
    if metadata_backend is None:
        pytest.skip("PostgreSQL tests run with --metadata=postgres")
    yield metadata_backend


async def test_writers_of_two_stores_queue_on_the_advisory_lock(url: str) -> None:
    """Two stores (two connection pools, as two processes would have): a write transaction holding the lock
    makes the other writer wait in the server, not fail, and it proceeds the moment the first commits."""
    a, b = await MetadataStore.open(url), await MetadataStore.open(url)
    try:
        finished: list[float] = []

        async def second() -> None:
            await b.call(lambda conn: set_state(conn, "who", "b"), write=True)
            finished.append(time.monotonic())

        async with anyio.create_task_group() as tg:
            async with a.write() as conn:
                await conn.run_sync(lambda c: set_state(c, "who", "a"))
                tg.start_soon(second)
                await anyio.sleep(0.5)
                assert finished == []  # waiting on the lock
                async with b.read() as reader:  # reads never wait for it
                    waiting = await reader.scalar(
                        text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                    )
                assert waiting == 1
                released = time.monotonic()
        assert finished and finished[0] >= released
        assert await a.call(get_state, "who") == "b"
    finally:
        await a.close()
        await b.close()


async def test_read_then_write_loses_no_update(url: str) -> None:
    """The SQLite lost-update trap (ENGINES.md: 416 of 500 lost) does not come back on PostgreSQL: 2 stores x
    40 concurrent read-increment-write transactions end at exactly 80."""
    stores = [await MetadataStore.open(url), await MetadataStore.open(url)]

    def bump(conn: Connection) -> None:
        set_state(conn, "n", str(int(get_state(conn, "n") or "0") + 1))

    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                for _ in range(40):
                    tg.start_soon(lambda s=store: s.call(bump, write=True))
        assert await stores[0].call(get_state, "n") == "80"
    finally:
        for store in stores:
            await store.close()


async def test_erase_limits_say_what_the_server_keeps(url: str, pg_server: object) -> None:
    """With the test server's settings (README's: wal_recycle=off, superuser role) nothing is out of reach;
    a role without the privileges and a server that recycles WAL are named in the report's message."""
    store = await MetadataStore.open(url)
    assert store.is_postgres and store.erase_limits is None
    await store.close()
    admin = pg_server.admin  # type: ignore[attr-defined]
    database = make_url(url).database
    admin("CREATE ROLE memsweep_limited LOGIN")
    admin(f"ALTER DATABASE {database} OWNER TO memsweep_limited")
    admin("ALTER SYSTEM SET wal_recycle = on")
    admin("SELECT pg_reload_conf()")
    try:
        limited = url.replace("memsweep@", "memsweep_limited@")
        store = await MetadataStore.open(limited)
        try:
            assert store.erase_limits is not None
            for words in ("grant pg_checkpoint", "pg_switch_wal()", "wal_recycle = off"):
                assert words in store.erase_limits
        finally:
            await store.close()
    finally:
        admin("ALTER SYSTEM RESET wal_recycle")
        admin("SELECT pg_reload_conf()")
        admin(f"ALTER DATABASE {database} OWNER TO memsweep")
        admin(f"DROP OWNED BY memsweep_limited CASCADE")  # noqa: F541 (one statement per call)
        admin("DROP ROLE memsweep_limited")


async def test_a_limited_role_runs_the_product_and_the_report_says_what_stays(
    url: str, pg_server: object, tmp_path: Path
) -> None:
    """A role without CHECKPOINT or pg_switch_wal() still adds and deletes; the delete's message says what
    PostgreSQL keeps instead of claiming more than was done."""
    admin = pg_server.admin  # type: ignore[attr-defined]
    database = make_url(url).database
    admin("CREATE ROLE memsweep_app LOGIN")
    admin(f"ALTER DATABASE {database} OWNER TO memsweep_app")
    try:
        settings = Settings(
            data_dir=tmp_path / "d", user="alice", metadata_url=url.replace("memsweep@", "memsweep_app@")
        )
        async with Memory(settings) as mem:
            item = await mem.add("notes", text="Carol keeps the keys.")
            report = await mem.datasets.delete_data(dataset_id="notes", data_id=item.data_id)
            assert report.executed and "Erased from disk." in report.message
            assert "grant pg_checkpoint" in report.message and "pg_switch_wal()" in report.message
    finally:
        admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin("DROP ROLE memsweep_app")


async def test_bad_urls_are_refused_with_the_next_step(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"postgresql\+psycopg://"):
        await MetadataStore.open(url.replace("postgresql+psycopg://", "postgresql://"))
    missing = url.rsplit("/", 1)[0] + "/no_such_db?" + url.split("?", 1)[1]
    with pytest.raises(StoreUnavailable, match="Nothing was changed") as caught:
        await MetadataStore.open(missing.replace("memsweep@", "memsweep:s3cret@"))
    assert "s3cret" not in str(caught.value)


async def test_one_database_belongs_to_one_data_directory(url: str, tmp_path: Path) -> None:
    """Pointing a second data directory at a database that holds a store, or a store's directory at an
    empty database, is refused before anything is written: a mix would delete without finding files and
    make one store's doctor call the other's files orphans."""
    first = Settings(data_dir=tmp_path / "first", user="alice", metadata_url=url)
    async with Memory(first) as mem:
        await mem.add("notes", text="Dora plants tulips.")
    with pytest.raises(StoreUnavailable, match="whose files, vectors and graph are in another data directory"):
        async with Memory(first.with_(data_dir=tmp_path / "second")):
            pass
    assert not (tmp_path / "second" / "store-id").exists()
    from tests import pgserver

    pgserver.new_store_metadata()
    import os

    empty = os.environ["MEMSWEEP_METADATA_URL"]
    with pytest.raises(StoreUnavailable, match="holds no store"):
        async with Memory(first.with_(metadata_url=empty)):
            pass
    async with Memory(first) as mem:  # the right pair still opens, with its data
        assert [d.items for d in await mem.datasets.list_datasets()] == [1]


async def test_the_partial_indexes_are_partial_on_postgresql(url: str) -> None:
    """schema.py names the partial indexes' WHERE for SQLite only; a PostgreSQL store gets the same WHERE
    when it opens (postgres.declare_partial_indexes), not a full index."""
    store = await MetadataStore.open(url)
    try:
        defs = await store.call(
            lambda conn: dict(
                conn.execute(
                    text(
                        "SELECT indexname, indexdef FROM pg_indexes "
                        "WHERE indexname LIKE 'ix_data_entities_first_%' OR indexname = 'ix_receipts_pending'"
                    )
                ).all()
            )
        )
    finally:
        await store.close()
    assert defs.pop("ix_receipts_pending").endswith("WHERE (erased_at IS NULL)")
    assert sorted(defs) == [f"ix_data_entities_first_{f}" for f in ("description", "name", "type")]
    for name, definition in defs.items():
        assert definition.endswith(f"WHERE ({name.rsplit('_', 1)[1]} IS NOT NULL)"), definition


def test_every_table_with_user_text_is_rewritten_by_the_erase() -> None:
    """A new table that keeps names or texts must join TEXT_TABLES (or this list, with the reason)."""
    from memsweep.storage.stores.postgres import TEXT_TABLES
    from memsweep.storage.stores.schema import metadata
    from sqlalchemy import String

    with_text = {
        t.name
        for t in metadata.sorted_tables
        if any(isinstance(c.type, String) and (c.type.length is None or c.type.length > 64) for c in t.columns)
    }
    from memsweep.storage.stores.postgres import text_columns

    assert {t for t, _ in text_columns()} == set(TEXT_TABLES)
    # user names and token owners (not memory content), audit and receipt counts and ids, state flags
    assert with_text - set(TEXT_TABLES) == {"users", "api_tokens", "audit", "receipts", "state"}
