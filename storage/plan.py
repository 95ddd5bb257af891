"""The planner: what a delete will remove and what it keeps, computed read-only from the metadata store.

One function serves the dry run, the real run and the resume after a crash (DESIGN.md invariant 4):
the scope is a SQL condition on `data` (one item, a dataset, every deletable dataset, or "rows of journal
record J"), and everything else (chunks, vectors, nodes removed vs kept because shared, edges, files
removed vs kept, cache entries) is derived from it here. Reference counts come from `data_entities` and
`data.file_key`, never from graph aggregates.
"""

from __future__ import annotations

from memsweep.storage.schema import chunk_entities, chunks, data, data_entities, entities, relations
from memsweep.storage.targets import Plan, Wipe
from sqlalchemy import ColumnElement, Connection, and_, func, select

MAX_KEPT_NAMES = 20
__all__ = ["MAX_KEPT_NAMES", "Plan", "Wipe", "plan_scope"]


def _live_other(scope_ids, item=data) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """Items that keep shared things alive: not in this scope and not being deleted by another journal
    (`item` is the `data` table or an alias of it)."""
    return and_(item.c.id.not_in(scope_ids), item.c.status != "deleting")


def plan_scope(
    conn: Connection,
    *,
    op: str,
    scope: ColumnElement[bool],
    dataset_ids: tuple[str, ...] = (),
    memory_only: bool = False,
    file_size: callable = lambda h: 0,  # type: ignore[valid-type]
    cache_prefix: str = "",
) -> Plan:
    scope_ids = select(data.c.id).where(scope).scalar_subquery()
    items = (
        conn.execute(
            select(
                data.c.id,
                data.c.file_key,
                data.c.owned,
                data.c.file_state,
                data.c.graph_ok,
                data.c.vectors_ok,
            ).where(scope)
        )
    ).all()
    data_ids = tuple(sorted(r.id for r in items))
    if not data_ids:
        return Plan(op=op, memory_only=memory_only, dataset_ids=dataset_ids)
    graph_items = tuple(sorted(r.id for r in items if r.graph_ok))
    vector_items = {r.id for r in items if r.vectors_ok}

    chunk_rows = (
        conn.execute(select(chunks.c.id, chunks.c.data_id, chunks.c.text_hash).where(chunks.c.data_id.in_(scope_ids)))
    ).all()
    chunk_ids = tuple(sorted(r.id for r in chunk_rows))
    graph_item_set = set(graph_items)
    graph_chunks = tuple(sorted(r.id for r in chunk_rows if r.data_id in graph_item_set))
    vectors = sum(1 for r in chunk_rows if r.data_id in vector_items)

    # Entities: which of this scope's entities does some other live item still reference?
    # Shared or not: does an item outside this scope, not itself being deleted, reference the entity?
    # One EXISTS probe per *distinct* entity of the scope (through the entity index, stopping at the first
    # hit), so the cost follows the scope, not the store; probing per reference row made delete_all
    # quadratic, and counting every reference grew with the degree of popular entities.
    ents = select(data_entities.c.entity_id.label("eid")).where(data_entities.c.data_id.in_(scope_ids)).distinct()
    ents_q = ents.subquery()
    other, other_item = data_entities.alias("other"), data.alias("other_item")

    def held_by_other(*extra: ColumnElement[bool]):  # type: ignore[no-untyped-def]
        return (
            select(other.c.entity_id)
            .join(other_item, other_item.c.id == other.c.data_id)
            .where(
                other.c.entity_id == ents_q.c.eid,
                _live_other(scope_ids, other_item),
                *extra,
            )
            .exists()
        )

    rows = conn.execute(select(ents_q.c.eid, held_by_other(), held_by_other(other_item.c.graph_ok))).all()
    entity_set = {r[0] for r in rows}
    held_any = {r[0] for r in rows if r[1]}
    held_in_graph = {r[0] for r in rows if r[2]}
    if memory_only:
        # The rows stay (the items stay); only the graph loses what no other item's graph needs.
        meta_entity_ids: tuple[str, ...] = ()
        graph_entities = tuple(sorted(entity_set - held_in_graph))
    else:
        meta_entity_ids = tuple(sorted(entity_set - held_any))
        graph_entities = tuple(sorted(entity_set - held_in_graph))
    kept = sorted(entity_set & held_any)
    kept_names: tuple[str, ...] = ()
    if kept:
        kept_names = tuple(
            r[0]
            for r in (
                conn.execute(
                    select(entities.c.name).where(entities.c.id.in_(kept[:MAX_KEPT_NAMES])).order_by(entities.c.name)
                )
            ).all()
        )

    graph_scope = select(data.c.id).where(scope, data.c.graph_ok).scalar_subquery()
    rel_rows = (
        conn.execute(
            select(relations.c.id, relations.c.source_id, relations.c.target_id).where(
                relations.c.data_id.in_(graph_scope)
            )
        )
    ).all()
    graph_relations = tuple(sorted((r.id, r.source_id, r.target_id) for r in rel_rows))
    mentions = (
        conn.execute(
            select(func.count())
            .select_from(chunk_entities)
            .where(chunk_entities.c.chunk_id.in_(select(chunks.c.id).where(chunks.c.data_id.in_(graph_scope))))
        )
    ).scalar_one()
    edges = len(graph_chunks) + int(mentions) + len(graph_relations)

    files_deleted: tuple[str, ...] = ()
    files_kept = 0
    bytes_freed = 0
    cache_keys: tuple[str, ...] = ()
    if not memory_only:
        owned = {r.file_key for r in items if r.owned and r.file_state == "stored"}
        if owned:
            shared = {
                r[0]
                for r in (
                    conn.execute(
                        select(data.c.file_key)
                        .where(
                            data.c.file_key.in_(select(data.c.file_key).where(scope, data.c.owned).scalar_subquery()),
                            data.c.owned,
                            data.c.file_state == "stored",
                            _live_other(scope_ids),
                        )
                        .distinct()
                    )
                ).all()
            }
            files_deleted = tuple(sorted(owned - shared))
            files_kept = len(owned & shared)
            bytes_freed = sum(file_size(h) for h in files_deleted)
        text_hashes = {r.text_hash for r in chunk_rows}
        live_hashes = {
            r[0]
            for r in (
                conn.execute(
                    select(chunks.c.text_hash)
                    .join(data, data.c.id == chunks.c.data_id)
                    .where(
                        chunks.c.text_hash.in_(select(chunks.c.text_hash).where(chunks.c.data_id.in_(scope_ids))),
                        _live_other(scope_ids),
                    )
                    .distinct()
                )
            ).all()
        }
        cache_keys = tuple(sorted(f"{cache_prefix}{h}" for h in text_hashes - live_hashes))

    return Plan(
        op=op,
        memory_only=memory_only,
        data_ids=data_ids,
        dataset_ids=dataset_ids,
        chunk_ids=chunk_ids,
        vector_data_ids=tuple(sorted(vector_items)),
        vectors=vectors,
        graph_data_ids=graph_items,
        graph_chunk_ids=graph_chunks,
        graph_entity_ids=graph_entities,
        graph_relations=graph_relations,
        edges=edges,
        meta_entity_ids=meta_entity_ids,
        nodes_kept_shared=len(kept),
        kept_names=kept_names,
        files_deleted=files_deleted,
        files_kept=files_kept,
        bytes_freed=bytes_freed,
        cache_keys=cache_keys,
    )
