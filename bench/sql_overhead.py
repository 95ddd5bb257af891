"""Cost of one small metadata statement through each layer (why the delete path uses `MetadataStore.call`).

    python bench/sql_overhead.py
Prints ms per indexed single-row SELECT: SQLAlchemy asyncio + aiosqlite, the same through `run_sync`,
raw aiosqlite, SQLAlchemy on the stdlib driver, and raw sqlite3.
"""

import asyncio
import json
import sqlite3
import time
import uuid
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, create_engine, select
from sqlalchemy.ext.asyncio import create_async_engine
from workload import scratch  # bench/ is the script's folder, on sys.path

md = MetaData()
data = Table("data", md, Column("id", String, primary_key=True), Column("dataset_id", String))


def per_stmt(fn, ids: list[str]) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    for i in ids:
        fn(i)
    return round((time.perf_counter() - t) / len(ids) * 1000, 3)


async def main(root: Path) -> dict:
    path = root / "m.db"
    raw = sqlite3.connect(path)
    ids = [str(uuid.uuid4()) for _ in range(10_000)]
    raw.execute("CREATE TABLE data (id TEXT PRIMARY KEY, dataset_id TEXT)")
    raw.executemany("INSERT INTO data VALUES (?, 'ds')", [(i,) for i in ids])
    raw.commit()
    sample = ids[::50]
    out: dict = {}
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.connect() as conn:
        stmt = select(data.c.dataset_id)
        for i in sample[:20]:
            await conn.execute(stmt.where(data.c.id == i))
        t = time.perf_counter()
        for i in sample:
            (await conn.execute(stmt.where(data.c.id == i))).all()
        out["sqlalchemy_asyncio_aiosqlite"] = round((time.perf_counter() - t) / len(sample) * 1000, 3)
        out["sqlalchemy_run_sync"] = await conn.run_sync(
            lambda c: per_stmt(lambda i: c.execute(stmt.where(data.c.id == i)).all(), sample)
        )
        driver = (await conn.get_raw_connection()).driver_connection
        t = time.perf_counter()
        for i in sample:
            await (await driver.execute("SELECT dataset_id FROM data WHERE id = ?", (i,))).fetchall()
        out["raw_aiosqlite"] = round((time.perf_counter() - t) / len(sample) * 1000, 3)
    await engine.dispose()
    with create_engine(f"sqlite:///{path}").connect() as c:
        out["sqlalchemy_stdlib_driver"] = per_stmt(
            lambda i: c.execute(select(data.c.dataset_id).where(data.c.id == i)).all(), sample
        )
    out["raw_sqlite3"] = per_stmt(
        lambda i: raw.execute("SELECT dataset_id FROM data WHERE id = ?", (i,)).fetchall(), sample
    )
    return out


if __name__ == "__main__":
    with scratch("sqlcost-") as root:
        print(json.dumps(asyncio.run(main(root))))
