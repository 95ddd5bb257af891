"""The planner: what a delete will remove and what it keeps, computed read-only from the metadata store.

One function serves the dry run, the real run and the resume after a crash (DESIGN.md invariant 4):
the scope is a SQL condition on `data` (one item, a dataset, every deletable dataset, or "rows of journal
record J"), and everything else (chunks, vectors, nodes removed vs kept because shared, edges, files
removed vs kept, cache entries) is derived from it here. Reference counts come from `data_entities` and
`data.file_key`, never from graph aggregates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from memsweep.storage.deletion.scopes import KINDS, Scope
from memsweep.storage.deletion.targets import Plan, Wipe
from memsweep.storage.stores.schema import chunk_entities, chunks, data, data_entities, entities, relations
from sqlalchemy import ColumnElement, Connection, Exists, Row, ScalarSelect, Select, and_, bindparam, func, select

MAX_KEPT_NAMES = 20
__all__ = ["MAX_KEPT_NAMES", "Plan", "Wipe", "plan_scope"]


def _live_other(scope_ids: ScalarSelect[str], item: Any = data) -> ColumnElement[bool]:
    """Items that keep shared things alive: not in this scope and not being deleted by another journal
    (`item` is the `data` table or an alias of it)."""
    return and_(item.c.id.not_in(scope_ids), item.c.status != "deleting")


@dataclass(frozen=True)
class _Items:
    data_ids: tuple[str, ...]
    graph_ids: tuple[str, ...]  # items whose graph nodes exist
    vector_ids: frozenset[str]  # items whose vector rows exist
    owned_keys: frozenset[str]  # file-store keys of the files the store owns for these items


@dataclass(frozen=True)
class _Entities:
    meta_ids: tuple[str, ...] = ()  # entity rows removed
    graph_ids: tuple[str, ...] = ()  # entity nodes removed
    kept: int = 0
    kept_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Statements:
    """The planner's questions for one kind of scope, built once (scopes.KINDS) and run with its values."""

    items: Select[Any]
    chunks: Select[Any]
    entities: Select[Any]
    relations: Select[Any]
    mentions: Select[Any]
    shared_files: Select[Any]
    live_hashes: Select[Any]


_KEPT_NAMES = (
    select(entities.c.name).where(entities.c.id.in_(bindparam("kept", expanding=True))).order_by(entities.c.name)
)


@functools.cache
def _statements(kind: str) -> _Statements:
    scope = KINDS[kind]
    scope_ids = select(data.c.id).where(scope).scalar_subquery()
    graph_scope = select(data.c.id).where(scope, data.c.graph_ok).scalar_subquery()
    return _Statements(
        items=select(
            data.c.id, data.c.file_key, data.c.owned, data.c.file_state, data.c.graph_ok, data.c.vectors_ok
        ).where(scope),
        chunks=select(chunks.c.id, chunks.c.data_id, chunks.c.text_hash).where(chunks.c.data_id.in_(scope_ids)),
        entities=_entities_query(scope_ids),
        relations=select(relations.c.id, relations.c.source_id, relations.c.target_id).where(
            relations.c.data_id.in_(graph_scope)
        ),
        mentions=select(func.count())
        .select_from(chunk_entities)
        .where(chunk_entities.c.chunk_id.in_(select(chunks.c.id).where(chunks.c.data_id.in_(graph_scope)))),
        shared_files=select(data.c.file_key)
        .where(
            data.c.file_key.in_(select(data.c.file_key).where(scope, data.c.owned).scalar_subquery()),
            data.c.owned,
            data.c.file_state == "stored",
            _live_other(scope_ids),
        )
        .distinct(),
        live_hashes=select(chunks.c.text_hash)
        .join(data, data.c.id == chunks.c.data_id)
        .where(
            chunks.c.text_hash.in_(select(chunks.c.text_hash).where(chunks.c.data_id.in_(scope_ids))),
            _live_other(scope_ids),
        )
        .distinct(),
    )


def _entities_query(scope_ids: ScalarSelect[str]) -> Select[Any]:
    """Each distinct entity of the scope, whether a live item outside it still mentions it, and whether one
    whose graph exists does.

    One EXISTS probe per *distinct* entity of the scope (through the entity index, stopping at the first
    hit), so the cost follows the scope, not the store; probing per reference row made delete_all
    quadratic, and counting every reference grew with the degree of popular entities."""
    ents = select(data_entities.c.entity_id.label("eid")).where(data_entities.c.data_id.in_(scope_ids)).distinct()
    ents_q = ents.subquery()
    other, other_item = data_entities.alias("other"), data.alias("other_item")

    def held_by_other(*extra: ColumnElement[bool]) -> Exists:
        return (
            select(other.c.entity_id)
            .join(other_item, other_item.c.id == other.c.data_id)
            .where(other.c.entity_id == ents_q.c.eid, _live_other(scope_ids, other_item), *extra)
            .exists()
        )

    return select(ents_q.c.eid, held_by_other(), held_by_other(other_item.c.graph_ok))


def plan_scope(
    conn: Connection,
    *,
    op: str,
    scope: Scope,
    dataset_ids: tuple[str, ...] = (),
    memory_only: bool = False,
    file_size: Callable[[str], int] = lambda _key: 0,
    cache_prefix: str = "",
) -> Plan:
    """Everything `scope` would remove and keep, one question per function below."""
    q, params = _statements(scope.kind), scope.params
    items = _items(conn, q, params)
    if not items.data_ids:
        return Plan(op=op, memory_only=memory_only, dataset_ids=dataset_ids)
    chunk_rows = conn.execute(q.chunks, params).all()
    graph_set = set(items.graph_ids)
    graph_chunks = tuple(sorted(r.id for r in chunk_rows if r.data_id in graph_set))
    ents = _entities(conn, q, params, memory_only)
    graph_relations, edges = _relations_and_edges(conn, q, params, graph_chunks)
    files_deleted, files_kept, bytes_freed = ((), 0, 0) if memory_only else _files(conn, q, params, items, file_size)
    cache_keys = () if memory_only else _cache_keys(conn, q, params, chunk_rows, cache_prefix)
    return Plan(
        op=op,
        memory_only=memory_only,
        data_ids=items.data_ids,
        dataset_ids=dataset_ids,
        chunk_ids=tuple(sorted(r.id for r in chunk_rows)),
        vector_data_ids=tuple(sorted(items.vector_ids)),
        vectors=sum(1 for r in chunk_rows if r.data_id in items.vector_ids),
        graph_data_ids=items.graph_ids,
        graph_chunk_ids=graph_chunks,
        graph_entity_ids=ents.graph_ids,
        graph_relations=graph_relations,
        edges=edges,
        meta_entity_ids=ents.meta_ids,
        nodes_kept_shared=ents.kept,
        kept_names=ents.kept_names,
        files_deleted=files_deleted,
        files_kept=files_kept,
        bytes_freed=bytes_freed,
        cache_keys=cache_keys,
    )


def _items(conn: Connection, q: _Statements, params: dict[str, Any]) -> _Items:
    """The items in scope, and which of them still have graph nodes, vector rows and an owned file."""
    rows = conn.execute(q.items, params).all()
    return _Items(
        data_ids=tuple(sorted(r.id for r in rows)),
        graph_ids=tuple(sorted(r.id for r in rows if r.graph_ok)),
        vector_ids=frozenset(r.id for r in rows if r.vectors_ok),
        owned_keys=frozenset(r.file_key for r in rows if r.owned and r.file_state == "stored"),
    )


def _entities(conn: Connection, q: _Statements, params: dict[str, Any], memory_only: bool) -> _Entities:
    """An entity goes with the scope unless a live item outside it still mentions it (then it is kept and
    named); in the graph, only items whose graph exists count."""
    rows = conn.execute(q.entities, params).all()
    entity_set = {r[0] for r in rows}
    held_any = {r[0] for r in rows if r[1]}
    held_in_graph = {r[0] for r in rows if r[2]}
    kept = sorted(entity_set & held_any)
    names: tuple[str, ...] = ()
    if kept:
        names = tuple(r[0] for r in conn.execute(_KEPT_NAMES, {"kept": kept[:MAX_KEPT_NAMES]}).all())
    return _Entities(
        # memory_only: the rows stay (the items stay); only the graph loses what no other item's graph needs
        meta_ids=() if memory_only else tuple(sorted(entity_set - held_any)),
        graph_ids=tuple(sorted(entity_set - held_in_graph)),
        kept=len(kept),
        kept_names=names,
    )


def _relations_and_edges(
    conn: Connection, q: _Statements, params: dict[str, Any], graph_chunks: tuple[str, ...]
) -> tuple[tuple[tuple[str, str, str], ...], int]:
    """The relation edges of the scope's items (those with a graph), and every edge that goes with them:
    item→chunk, chunk→entity and the relations."""
    rel_rows = conn.execute(q.relations, params).all()
    mentions = conn.execute(q.mentions, params).scalar_one()
    graph_relations = tuple(sorted((r.id, r.source_id, r.target_id) for r in rel_rows))
    return graph_relations, len(graph_chunks) + int(mentions) + len(graph_relations)


def _files(
    conn: Connection, q: _Statements, params: dict[str, Any], items: _Items, file_size: Callable[[str], int]
) -> tuple[tuple[str, ...], int, int]:
    """An owned file goes unless a live item outside the scope still points at it (same owner and content:
    keys are per owner); files added by reference are never touched. Returns (deleted, kept, bytes)."""
    if not items.owned_keys:
        return (), 0, 0
    shared = {r[0] for r in conn.execute(q.shared_files, params).all()}
    deleted = tuple(sorted(items.owned_keys - shared))
    return deleted, len(items.owned_keys & shared), sum(file_size(k) for k in deleted)


def _cache_keys(
    conn: Connection,
    q: _Statements,
    params: dict[str, Any],
    chunk_rows: Sequence[Row[Any, Any, Any]],
    cache_prefix: str,
) -> tuple[str, ...]:
    """A cached embedding goes unless a live chunk outside the scope has the same text."""
    live = {r[0] for r in conn.execute(q.live_hashes, params).all()}
    return tuple(sorted(f"{cache_prefix}{h}" for h in {r.text_hash for r in chunk_rows} - live))
