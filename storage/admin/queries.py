"""Read paths: datasets, pages of items, search, the audit log. Only `active` items are ever returned."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from memsweep.errors import InvalidInput
from memsweep.results import AuditEntry, Candidate, DataItem, DataPage, DatasetInfo, ForgetReport, SearchHit
from memsweep.storage import access
from memsweep.storage.engine import Engine
from memsweep.storage.ids import normalise_name
from memsweep.storage.stores.schema import audit, chunks, data, data_entities, datasets, entities, users
from sqlalchemy import Connection, and_, case, func, literal, select, tuple_

_WORD = re.compile(r"\w+")
# -ln of what one mentioned query entity (0.4) and one neighbour (0.6) leave of the missing score: ordering
# items by m * _LOG_MATCHED + n * _LOG_NEAR is ordering them by their graph bonus, in SQL.
_LOG_MATCHED, _LOG_NEAR = -math.log(0.4), -math.log(0.6)


async def list_datasets(engine: Engine, user: str) -> list[DatasetInfo]:
    now = engine.now()

    def read(conn: Connection) -> tuple[Sequence[Any], set[str], set[str]]:
        uid = access.user_id(conn, user, create=False)
        if uid is None:
            return [], set(), set()
        live = (
            select(data.c.dataset_id, func.count().label("n"))
            .where(access.live_items(now))
            .group_by(data.c.dataset_id)
            .subquery()
        )
        rows = conn.execute(
            select(
                datasets.c.id,
                datasets.c.name,
                datasets.c.owner_id,
                users.c.name.label("owner"),
                datasets.c.created_at,
                datasets.c.retention_days,
                datasets.c.hold,
                func.coalesce(live.c.n, 0).label("n"),
            )
            .join(users, users.c.id == datasets.c.owner_id)
            .outerjoin(live, live.c.dataset_id == datasets.c.id)
            .where(access.visible_condition(uid))
            .order_by(datasets.c.created_at, datasets.c.id)
        ).all()
        deletable = set(access.deletable_dataset_ids(conn, uid))
        readable = {r[0] for r in conn.execute(select(datasets.c.id).where(access.readable_condition(uid)))}
        return rows, deletable, readable

    rows, deletable, readable = await engine.meta.call(read)
    return [
        DatasetInfo(
            id=r.id,
            name=r.name,
            owner=r.owner,
            items=int(r.n),
            created_at=r.created_at,
            can_delete=r.id in deletable,
            can_read=r.id in readable,
            retention_days=r.retention_days,
            on_hold=bool(r.hold),
        )
        for r in rows
    ]


def _encode_cursor(created_at: datetime, item_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = json.loads(raw)
        return datetime.fromisoformat(at), str(item_id)
    except Exception as exc:
        raise InvalidInput("`cursor` is not one that list_data returned; start again without a cursor.") from exc


async def list_data_page(
    engine: Engine, user: str, dataset_id: str, cursor: str | None = None, limit: int = 50
) -> DataPage:
    max_page = engine.settings.limits.max_page_size
    if not isinstance(limit, int) or not 1 <= limit <= max_page:
        raise InvalidInput(f"`limit` must be between 1 and {max_page}.")
    if not isinstance(dataset_id, str) or not dataset_id.strip():
        raise InvalidInput("`dataset_id` is required.")
    now = engine.now()

    def read(conn: Connection) -> tuple[str, Sequence[Any]]:
        uid = access.user_id(conn, user, create=False)
        ds = access.require_dataset(conn, uid, dataset_id.strip(), "read")
        n_chunks = select(func.count()).where(chunks.c.data_id == data.c.id).scalar_subquery()
        n_entities = select(func.count()).where(data_entities.c.data_id == data.c.id).scalar_subquery()
        stmt = (
            select(data, n_chunks.label("n_chunks"), n_entities.label("n_entities"))
            .where(data.c.dataset_id == ds.id, access.live_items(now))
            .order_by(data.c.created_at, data.c.id)
            .limit(limit + 1)
        )
        if after is not None:
            stmt = stmt.where(tuple_(data.c.created_at, data.c.id) > tuple_(*after))
        return ds.id, conn.execute(stmt).all()

    after = _decode_cursor(cursor) if cursor else None  # a bad cursor is refused before any read
    ds_id, rows = await engine.meta.call(read)
    page = rows[:limit]
    items = [
        DataItem(
            id=r.id,
            name=r.name,
            mime_type=r.mime_type,
            size_bytes=r.size_bytes,
            content_hash=r.content_hash,
            created_at=r.created_at,
            chunks=int(r.n_chunks),
            entities=int(r.n_entities),
            owned_file=bool(r.owned),
            expires_at=r.expires_at,
        )
        for r in page
    ]
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return DataPage(dataset_id=ds_id, items=items, next_cursor=next_cursor)


async def list_data(engine: Engine, user: str, dataset_id: str) -> list[DataItem]:
    out: list[DataItem] = []
    cursor = None
    while True:
        page = await list_data_page(engine, user, dataset_id, cursor, engine.settings.limits.max_page_size)
        out.extend(page.items)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def search(engine: Engine, user: str, query: str, dataset: str | None = None, limit: int = 10) -> list[SearchHit]:
    """Vector similarity over chunks, plus items that mention the query's entities or their graph
    neighbours. Every hit is re-checked against metadata: only live items the caller can read."""
    limits = engine.settings.limits
    if not isinstance(query, str) or not query.strip() or len(query) > 10_000:
        raise InvalidInput("`query` must be 1–10,000 characters.")
    if not isinstance(limit, int) or not 1 <= limit <= limits.max_search_limit:
        raise InvalidInput(f"`limit` must be between 1 and {limits.max_search_limit}.")
    words = [w.casefold() for w in _WORD.findall(query)][:50]
    grams = {normalise_name(" ".join(words[i : i + n])) for n in (1, 2, 3) for i in range(len(words) - n + 1)}

    def scope(conn: Connection) -> tuple[list[str], list[str]]:
        """The datasets the caller may read (or the one asked for), and the query's entities in them."""
        uid = access.user_id(conn, user, create=False)
        if uid is None:
            return [], []
        if dataset is not None:
            ds_ids = [access.require_dataset(conn, uid, dataset, "read").id]
        else:
            ds_ids = [r[0] for r in conn.execute(select(datasets.c.id).where(access.readable_condition(uid)))]
        owners = [r[0] for r in conn.execute(select(datasets.c.owner_id).where(datasets.c.id.in_(ds_ids)).distinct())]
        if not grams or not owners:
            return ds_ids, []
        named = select(entities.c.id).where(entities.c.owner_id.in_(owners), entities.c.norm.in_(sorted(grams)))
        return ds_ids, [r[0] for r in conn.execute(named)]

    ds_ids, matched = await engine.meta.call(scope)
    if not ds_ids:
        return []
    vector = (await engine.run(engine.embedder.embed, [query]))[0]
    hits = await engine.run(engine.vectors.search, vector, limit * 4, ds_ids)
    scores: dict[str, tuple[float, str | None]] = {}
    for h in hits:
        score = max(0.0, 1.0 - h.distance / 2.0)  # squared L2 on unit vectors → cosine
        if h.data_id not in scores or score > scores[h.data_id][0]:
            scores[h.data_id] = (score, h.chunk_id)
    if matched:
        async with engine.exclusive():
            neighbours = await engine.run(engine.graph.neighbours, matched)
        near = sorted(set(neighbours) - set(matched))
        # An item's graph bonus: each query entity it mentions adds 0.6, each neighbour of one 0.4, combined
        # as 1 - (1 - score) * 0.4^m * 0.6^n. Counted in SQL: reading every (item, entity) row into Python
        # made a search cost ~4 ms per 1,000 items once a popular name matched (72 ms p50 at 10,000 single
        # adds). Only the vector hits and the best `limit` graph-only items can rank, so only they are read.
        m = func.sum(case((data_entities.c.entity_id.in_(matched), 1), else_=0))
        n = func.sum(case((data_entities.c.entity_id.in_(near), 1), else_=0)) if near else literal(0)
        counted = (
            select(data_entities.c.data_id, m.label("m"), n.label("n"))
            .join(data, data.c.id == data_entities.c.data_id)
            # Only items whose graph is there: after forget(memory_only) or prune(graph) an item is found by
            # no search path until it is rebuilt (its entity rows stay in metadata for that rebuild).
            .where(data_entities.c.entity_id.in_(sorted(matched) + near), data.c.graph_ok)
            .where(access.live_items(engine.now()), data.c.dataset_id.in_(ds_ids))
            .group_by(data_entities.c.data_id)
        )
        best = counted.order_by((m * _LOG_MATCHED + n * _LOG_NEAR).desc(), data_entities.c.data_id.desc()).limit(limit)

        def graph_counts(conn: Connection) -> dict[str, tuple[int, int]]:
            found = {r.data_id: (r.m, r.n) for r in conn.execute(best)}
            if scores:
                for r in conn.execute(counted.where(data_entities.c.data_id.in_(list(scores)))):
                    found[r.data_id] = (r.m, r.n)
            return found

        found = await engine.meta.call(graph_counts)
        for data_id, (m_count, n_count) in found.items():
            prev = scores.get(data_id, (0.0, None))
            scores[data_id] = (1.0 - (1.0 - prev[0]) * 0.4**m_count * 0.6**n_count, prev[1])
    if not scores:
        return []
    live = select(data.c.id, data.c.dataset_id, data.c.name).where(
        data.c.id.in_(list(scores)), access.live_items(engine.now()), data.c.dataset_id.in_(ds_ids)
    )

    def hydrate(conn: Connection) -> tuple[dict[str, Any], list[tuple[float, str]], dict[str, str]]:
        rows = {r.id: r for r in conn.execute(live)}
        # No padding: a hit that shares nothing with the query (score 0) is not a hit.
        ranked = sorted((s, d) for d, (s, _c) in scores.items() if d in rows and s > 0)[::-1][:limit]
        snippets: dict[str, str] = {}
        for _s, d in ranked:
            chunk_id = scores[d][1]
            cond = chunks.c.id == chunk_id if chunk_id else and_(chunks.c.data_id == d, chunks.c.seq == 0)
            snippets[d] = conn.execute(select(chunks.c.text).where(cond)).scalar() or ""
        return rows, ranked, snippets

    rows, ranked, snippets = await engine.meta.call(hydrate)
    return [
        SearchHit(
            data_id=d,
            dataset_id=rows[d].dataset_id,
            name=rows[d].name,
            snippet=" ".join(snippets[d].split())[:240],
            score=round(s, 4),
        )
        for s, d in ranked
    ]


async def forget_candidates(
    engine: Engine, user: str, query: str, dataset: str | None = None, limit: int = 20
) -> ForgetReport:
    """What `forget(query=...)` shows: the items search picks for the description, among those the caller
    may delete. Always a preview: deleting them is a separate `forget(data_ids=[...])` with the ids chosen,
    so what is deleted is exactly what was shown, never a re-run of the query."""
    if not isinstance(limit, int) or not 1 <= limit <= engine.settings.limits.max_search_limit:
        raise InvalidInput(f"`limit` must be between 1 and {engine.settings.limits.max_search_limit}.")
    hits = await search(engine, user, query, dataset, engine.settings.limits.max_search_limit)

    def deletable_ids(conn: Connection) -> set[str]:
        return set(access.deletable_dataset_ids(conn, access.user_id(conn, user, create=False)))

    deletable = await engine.meta.call(deletable_ids)
    chosen = [h for h in hits if h.dataset_id in deletable][:limit]
    skipped = sum(1 for h in hits if h.dataset_id not in deletable)
    candidates = [
        Candidate(data_id=h.data_id, dataset_id=h.dataset_id, name=h.name, snippet=h.snippet[:80], score=h.score)
        for h in chosen
    ]
    if candidates:
        message = (
            f"{len(candidates)} item(s) match; nothing was deleted. To forget some of them, call "
            "forget(data_ids=[...]) with exactly the ids you choose."
        )
    else:
        message = "No item you may delete matches; nothing was deleted."
    if skipped:
        message += f" {skipped} more match in datasets you may not delete."
    return ForgetReport(dry_run=True, executed=False, message=message, candidates=candidates)


async def audit_log(engine: Engine, user: str | None = None, limit: int = 100) -> list[AuditEntry]:
    stmt = select(audit).order_by(audit.c.seq.desc()).limit(limit)
    if user is not None:
        stmt = stmt.where(audit.c.user_name == user)
    rows = await engine.meta.call(lambda conn: conn.execute(stmt).all())
    return [
        AuditEntry(
            seq=r.seq,
            at=r.at,
            user=r.user_name,
            op=r.op,
            counts=json.loads(r.counts),
            data_ids=json.loads(r.data_ids),
        )
        for r in rows
    ]
