"""Read every store directly (not through the API under test) to compare states."""

from typing import Any

from memsweep.api import Memory
from memsweep.storage.stores.schema import metadata as schema
from sqlalchemy import select


async def snapshot(mem: Memory) -> dict[str, Any]:
    engine = mem.engine
    tables: dict[str, Any] = {}
    async with engine.meta.read() as conn:
        for table in schema.sorted_tables:
            if table.name in {"audit", "journal", "state"}:
                continue
            rows = (await conn.execute(select(table))).all()
            tables[table.name] = sorted(tuple(str(v) for v in r) for r in rows)
    async with engine.exclusive():
        graph = await engine.run(engine.graph.snapshot)
    return {
        "tables": tables,
        "vectors": sorted(await engine.run(engine.vectors.chunk_ids)),
        "graph": graph,
        "files": sorted(engine.files.hashes()),
        "cache": sorted(engine.cache.keys()),
    }


async def entity_ids(mem: Memory) -> set[str]:
    async with mem.engine.exclusive():
        return (await mem.engine.run(mem.engine.graph.snapshot)).entities
