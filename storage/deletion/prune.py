"""prune: whole-layer development resets, planned like every other delete (same report, same journal)."""

from __future__ import annotations

import hashlib
from typing import Any

from memsweep.results import DeletionCounts
from memsweep.storage.deletion.planner import Plan, Wipe
from memsweep.storage.engine import Engine
from memsweep.storage.stores.schema import chunk_entities, chunks, data, data_entities, datasets, relations
from sqlalchemy import Connection, Select, func, select


def _count(conn: Connection, stmt: Select[Any]) -> int:
    return int(conn.execute(stmt).scalar_one())


def _metadata_layers(conn: Connection, wipe: Wipe) -> tuple[list[str], dict[str, DeletionCounts]]:
    """The items a prune sees and the counts of its graph and metadata layers, in one snapshot."""
    layers: dict[str, DeletionCounts] = {}
    all_ids = [r[0] for r in conn.execute(select(data.c.id).where(data.c.status != "deleting")).all()]
    if wipe.graph:
        graph_items = select(data.c.id).where(data.c.graph_ok, data.c.status != "deleting")
        graph_chunks = select(chunks.c.id).where(chunks.c.data_id.in_(graph_items))
        items = _count(conn, select(func.count()).select_from(graph_items.subquery()))
        n_chunks = _count(conn, select(func.count()).select_from(graph_chunks.subquery()))
        n_entities = _count(
            conn,
            select(func.count(func.distinct(data_entities.c.entity_id))).where(
                data_entities.c.data_id.in_(graph_items)
            ),
        )
        mentions = _count(
            conn, select(func.count()).select_from(chunk_entities).where(chunk_entities.c.chunk_id.in_(graph_chunks))
        )
        rels = _count(conn, select(func.count()).select_from(relations).where(relations.c.data_id.in_(graph_items)))
        layers["graph"] = DeletionCounts(
            nodes_deleted=items + n_chunks + n_entities, edges_deleted=n_chunks + mentions + rels
        )
    if wipe.metadata:
        layers["metadata"] = DeletionCounts(
            datasets=_count(conn, select(func.count()).select_from(datasets)),
            items=len(all_ids),
            chunks=_count(conn, select(func.count()).select_from(chunks)),
        )
    return all_ids, layers


async def plan_prune(engine: Engine, wipe: Wipe) -> Plan:
    """Counts per layer from the stores themselves (files on disk, vector rows, cache entries) and from
    metadata (graph nodes are counted from the rows that derive them, never from Kuzu aggregates)."""
    # metadata=true also clears graph, vectors and cache: they are derived from it (INTERFACE.md).
    if wipe.metadata:
        wipe = Wipe(files=wipe.files, graph=True, vector=True, metadata=True, cache=True)
    all_ids, layers = await engine.meta.call(_metadata_layers, wipe)
    data_ids = tuple(sorted(all_ids)) if wipe.metadata else ()
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
