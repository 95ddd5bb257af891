"""The planner: what a delete will remove and what it keeps, computed read-only from the metadata store.

One function serves the dry run, the real run and the resume after a crash (DESIGN.md invariant 4):
the scope is a SQL condition on `data` (one item, a dataset, every deletable dataset, or "rows of journal
record J"), and everything else (chunks, vectors, nodes removed vs kept because shared, edges, files
removed vs kept, cache entries) is derived from it here. Reference counts come from `data_entities` and
`data.content_hash`, never from graph aggregates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from memsweep.results import DeletionCounts
from memsweep.storage.schema import chunk_entities, chunks, data, data_entities, entities, relations
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

MAX_KEPT_NAMES = 20


@dataclass(frozen=True)
class Wipe:
    """Whole-layer resets (prune)."""

    files: bool = False
    graph: bool = False
    vector: bool = False
    metadata: bool = False
    cache: bool = False

    @property
    def any(self) -> bool:
        return any(asdict(self).values())


@dataclass(frozen=True)
class Plan:
    op: str
    memory_only: bool = False
    data_ids: tuple[str, ...] = ()
    dataset_ids: tuple[str, ...] = ()  # datasets removed with their items
    chunk_ids: tuple[str, ...] = ()
    vector_data_ids: tuple[str, ...] = ()  # items whose vector rows exist
    vectors: int = 0
    graph_data_ids: tuple[str, ...] = ()  # items whose graph nodes exist
    graph_chunk_ids: tuple[str, ...] = ()
    graph_entity_ids: tuple[str, ...] = ()  # entity nodes removed (no other item with a graph holds them)
    graph_relations: tuple[tuple[str, str, str], ...] = ()
    edges: int = 0
    meta_entity_ids: tuple[str, ...] = ()  # entity rows removed (no other live item references them)
    nodes_kept_shared: int = 0
    kept_names: tuple[str, ...] = ()  # shown in previews only; never journaled or logged
    files_deleted: tuple[str, ...] = ()
    files_kept: int = 0
    bytes_freed: int = 0
    cache_keys: tuple[str, ...] = ()
    wipe: Wipe = field(default_factory=Wipe)
    layers: dict[str, DeletionCounts] = field(default_factory=dict)
    extra_fingerprint: str = ""

    @property
    def empty(self) -> bool:
        if self.wipe.any:
            return not any(self.counts().model_dump().values())
        return not self.data_ids and not self.dataset_ids

    def counts(self) -> DeletionCounts:
        if self.layers:
            total: dict[str, int] = {}
            for layer in self.layers.values():
                for key, value in layer.model_dump().items():
                    total[key] = total.get(key, 0) + value
            return DeletionCounts(**total)
        graph_nodes = len(self.graph_data_ids) + len(self.graph_chunk_ids) + len(self.graph_entity_ids)
        return DeletionCounts(
            datasets=len(self.dataset_ids),
            items=0 if self.memory_only else len(self.data_ids),
            chunks=0 if self.memory_only else len(self.chunk_ids),
            vectors=self.vectors,
            nodes_deleted=graph_nodes,
            nodes_kept_shared=self.nodes_kept_shared,
            edges_deleted=self.edges,
            files_deleted=len(self.files_deleted),
            files_kept=self.files_kept,
            bytes_freed=self.bytes_freed,
        )

    @property
    def fingerprint(self) -> str:
        """Binds a confirmation to this exact plan: any item added or removed in scope changes it."""
        body = {
            "op": self.op,
            "memory_only": self.memory_only,
            "data": sorted(self.data_ids),
            "datasets": sorted(self.dataset_ids),
            "entities": sorted(self.graph_entity_ids),
            "meta_entities": sorted(self.meta_entity_ids),
            "files": sorted(self.files_deleted),
            "wipe": asdict(self.wipe),
            "extra": self.extra_fingerprint,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _live_other(scope_ids) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """Rows that keep shared things alive: not in this scope and not being deleted by another journal."""
    return and_(data.c.id.not_in(scope_ids), data.c.status != "deleting")


async def plan_scope(
    conn: AsyncConnection,
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
        await conn.execute(
            select(
                data.c.id,
                data.c.content_hash,
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
        await conn.execute(
            select(chunks.c.id, chunks.c.data_id, chunks.c.text_hash).where(chunks.c.data_id.in_(scope_ids))
        )
    ).all()
    chunk_ids = tuple(sorted(r.id for r in chunk_rows))
    graph_item_set = set(graph_items)
    graph_chunks = tuple(sorted(r.id for r in chunk_rows if r.data_id in graph_item_set))
    vectors = sum(1 for r in chunk_rows if r.data_id in vector_items)

    # Entities: which of this scope's entities does some other live item still reference?
    scope_entities = select(data_entities.c.entity_id).where(data_entities.c.data_id.in_(scope_ids)).distinct()
    entity_set = {r[0] for r in (await conn.execute(scope_entities)).all()}
    held = (
        await conn.execute(
            select(data_entities.c.entity_id, func.max(data.c.graph_ok))
            .join(data, data.c.id == data_entities.c.data_id)
            .where(data_entities.c.entity_id.in_(scope_entities), _live_other(scope_ids))
            .group_by(data_entities.c.entity_id)
        )
    ).all()
    held_any = {r[0] for r in held}
    held_in_graph = {r[0] for r in held if r[1]}
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
                await conn.execute(
                    select(entities.c.name).where(entities.c.id.in_(kept[:MAX_KEPT_NAMES])).order_by(entities.c.name)
                )
            ).all()
        )

    graph_scope = select(data.c.id).where(scope, data.c.graph_ok).scalar_subquery()
    rel_rows = (
        await conn.execute(
            select(relations.c.id, relations.c.source_id, relations.c.target_id).where(
                relations.c.data_id.in_(graph_scope)
            )
        )
    ).all()
    graph_relations = tuple(sorted((r.id, r.source_id, r.target_id) for r in rel_rows))
    mentions = (
        await conn.execute(
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
        owned = {r.content_hash for r in items if r.owned and r.file_state == "stored"}
        if owned:
            shared = {
                r[0]
                for r in (
                    await conn.execute(
                        select(data.c.content_hash)
                        .where(
                            data.c.content_hash.in_(
                                select(data.c.content_hash).where(scope, data.c.owned).scalar_subquery()
                            ),
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
                await conn.execute(
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
