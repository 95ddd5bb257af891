"""Rebuilding the derived stores (graph, vectors) from the metadata, the source of truth: after a prune of a
layer, a lost graph file, a backend switch, or a graph a crash left different from the metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memsweep.results import RebuildReport
from memsweep.storage.engine import Engine
from memsweep.storage.faults import crash_point
from memsweep.storage.stores.graph import GraphAdd
from memsweep.storage.stores.metadata import get_state, set_state
from memsweep.storage.stores.schema import chunk_entities, chunks, data, data_entities, relations
from memsweep.storage.stores.vectors import VectorRow
from sqlalchemy import Connection, select, update

BATCH = 200


async def rebuild(engine: Engine) -> RebuildReport:
    async with engine.exclusive():
        return await rebuild_locked(engine)


async def rebuild_if_pending(engine: Engine) -> None:
    if await engine.meta.call(get_state, "rebuild_pending"):
        await rebuild_locked(engine)


async def mark_for_rebuild(engine: Engine, *, graph: bool = False, vectors: bool = False) -> None:
    """Mark every item as lacking its graph nodes and/or vectors, with `rebuild_pending` in the same
    transaction: do this before wiping a derived store, so a crash in between still rebuilds at start."""

    def mark(conn: Connection) -> None:
        set_state(conn, "rebuild_pending", "1")
        if vectors:
            conn.execute(update(data).values(vectors_ok=False))
        if graph:
            conn.execute(update(data).values(graph_ok=False))

    await engine.meta.call(mark, write=True)


async def rebuild_locked(engine: Engine) -> RebuildReport:
    """Recreate graph nodes and vector rows of every live item marked as lacking them.

    `rebuild_pending` brackets the work: a crash between writing an item's rows and marking it done
    leaves rows for an item still marked as lacking them, and the next start runs the rebuild again
    (each item's vectors are deleted before they are written, graph writes are MERGEs)."""
    from memsweep.storage.ingest.adding import embed_chunks

    await engine.meta.call(set_state, "rebuild_pending", "1", write=True)

    lacking = select(data.c.id, data.c.dataset_id, data.c.graph_ok, data.c.vectors_ok).where(
        data.c.status == "active", ~(data.c.graph_ok & data.c.vectors_ok)
    )
    rows = await engine.meta.call(lambda conn: conn.execute(lacking).all())
    n_items = n_chunks = n_vectors = n_nodes = 0
    entities_written: set[str] = set()  # an entity shared by items of several batches is one node
    for start in range(0, len(rows), BATCH):
        part = rows[start : start + BATCH]
        ids = [r.id for r in part]
        crows, ents, ments, rels = await engine.meta.call(_read_batch, ids)
        by_item = {r.id: r for r in part}
        vec_items = [r.id for r in part if not r.vectors_ok]
        if vec_items:
            vec_chunks = [c for c in crows if c.data_id in set(vec_items)]
            vectors, new_cache = await embed_chunks(
                engine, [c.text for c in vec_chunks], [c.text_hash for c in vec_chunks]
            )
            await engine.run(engine.vectors.delete_data, vec_items)
            await engine.run(
                engine.vectors.add,
                [
                    VectorRow(c.id, c.data_id, by_item[c.data_id].dataset_id, v)
                    for c, v in zip(vec_chunks, vectors, strict=True)
                ],
            )
            await engine.run(engine.cache.put_many, new_cache)
            n_vectors += len(vec_chunks)
        graph_items = {r.id for r in part if not r.graph_ok}
        if graph_items:
            g_chunks = [c for c in crows if c.data_id in graph_items]
            g_chunk_ids = {c.id for c in g_chunks}
            change = GraphAdd(
                items=[(i, by_item[i].dataset_id) for i in graph_items],
                chunks=[(c.id, c.data_id) for c in g_chunks],
                entities=sorted({e.entity_id for e in ents if e.data_id in graph_items}),
                mentions=[(m.chunk_id, m.entity_id) for m in ments if m.chunk_id in g_chunk_ids],
                relations=[(r.id, r.data_id, r.source_id, r.target_id) for r in rels if r.data_id in graph_items],
            )
            await engine.run(engine.graph.add, change)
            n_nodes += len(change.items) + len(change.chunks)
            entities_written.update(change.entities)
        crash_point("mid_rebuild")
        done = update(data).where(data.c.id.in_(ids)).values(graph_ok=True, vectors_ok=True)
        await engine.meta.call(lambda conn, done=done: conn.execute(done), write=True)
        n_items += len(part)
        n_chunks += len(crows)
    await engine.meta.call(set_state, "rebuild_pending", None, write=True)
    n_nodes += len(entities_written)
    return RebuildReport(
        items=n_items,
        chunks=n_chunks,
        vectors=n_vectors,
        nodes=n_nodes,
        message=f"Rebuilt {n_items} item(s): {n_vectors} vector row(s) and {n_nodes} graph node(s) written.",
    )


def _read_batch(conn: Connection, ids: list[str]) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any], Sequence[Any]]:
    """A batch's chunks (in order), entity references, mentions and relations, in one snapshot."""
    crows = conn.execute(
        select(chunks.c.id, chunks.c.data_id, chunks.c.text, chunks.c.text_hash)
        .where(chunks.c.data_id.in_(ids))
        .order_by(chunks.c.data_id, chunks.c.seq)
    ).all()
    ents = conn.execute(select(data_entities).where(data_entities.c.data_id.in_(ids))).all()
    ments = conn.execute(select(chunk_entities).where(chunk_entities.c.chunk_id.in_([c.id for c in crows]))).all()
    rels = conn.execute(select(relations).where(relations.c.data_id.in_(ids))).all()
    return crows, ents, ments, rels
