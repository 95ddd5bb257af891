"""prune: whole-layer development resets, planned like every other delete (same report, same journal)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from memsweep.results import DeletionCounts
from memsweep.storage.deletion.planner import Plan, Wipe
from memsweep.storage.engine import Engine
from memsweep.storage.stores.schema import chunk_entities, chunks, data, data_entities, datasets, relations
from sqlalchemy import Select, func, select

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


async def _count(conn: AsyncConnection, stmt: Select[Any]) -> int:
    return int((await conn.execute(stmt)).scalar_one())


async def plan_prune(engine: Engine, wipe: Wipe) -> Plan:
    """Counts per layer from the stores themselves (files on disk, vector rows, cache entries) and from
    metadata (graph nodes are counted from the rows that derive them, never from Kuzu aggregates)."""
    # metadata=true also clears graph, vectors and cache: they are derived from it (INTERFACE.md).
    if wipe.metadata:
        wipe = Wipe(files=wipe.files, graph=True, vector=True, metadata=True, cache=True)
    layers: dict[str, DeletionCounts] = {}
    data_ids: tuple[str, ...] = ()
    async with engine.meta.read() as conn:
        all_ids = [r[0] for r in (await conn.execute(select(data.c.id).where(data.c.status != "deleting"))).all()]
        if wipe.graph:
            graph_items = select(data.c.id).where(data.c.graph_ok, data.c.status != "deleting")
            graph_chunks = select(chunks.c.id).where(chunks.c.data_id.in_(graph_items))
            items = await _count(conn, select(func.count()).select_from(graph_items.subquery()))
            n_chunks = await _count(conn, select(func.count()).select_from(graph_chunks.subquery()))
            n_entities = await _count(
                conn,
                select(func.count(func.distinct(data_entities.c.entity_id))).where(
                    data_entities.c.data_id.in_(graph_items)
                ),
            )
            mentions = await _count(
                conn,
                select(func.count()).select_from(chunk_entities).where(chunk_entities.c.chunk_id.in_(graph_chunks)),
            )
            rels = await _count(
                conn, select(func.count()).select_from(relations).where(relations.c.data_id.in_(graph_items))
            )
            layers["graph"] = DeletionCounts(
                nodes_deleted=items + n_chunks + n_entities, edges_deleted=n_chunks + mentions + rels
            )
        if wipe.metadata:
            layers["metadata"] = DeletionCounts(
                datasets=await _count(conn, select(func.count()).select_from(datasets)),
                items=len(all_ids),
                chunks=await _count(conn, select(func.count()).select_from(chunks)),
            )
            data_ids = tuple(sorted(all_ids))
    if wipe.vector:
        layers["vector"] = DeletionCounts(vectors=await engine.run(engine.vectors.count))
    if wipe.files:
        hashes = list(await engine.run(lambda: list(engine.files.hashes())))
        size = sum(engine.files.size(h) for h in hashes)
        layers["files"] = DeletionCounts(files_deleted=len(hashes), bytes_freed=size)
    if wipe.cache:
        layers["cache"] = DeletionCounts(cache_entries=await engine.run(engine.cache.count))
    extra = hashlib.sha256(
        ("|".join(sorted(all_ids)) + repr(sorted((k, v.model_dump_json()) for k, v in layers.items()))).encode()
    ).hexdigest()
    return Plan(op="prune", data_ids=data_ids, wipe=wipe, layers=layers, extra_fingerprint=extra)
