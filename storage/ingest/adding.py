"""add: metadata rows `ingesting` → file → vectors → graph → `active` (the order recovery can undo)."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from memsweep.errors import InvalidInput
from memsweep.results import AddResult
from memsweep.storage import access
from memsweep.storage.engine import Engine
from memsweep.storage.faults import crash_point
from memsweep.storage.ids import entity_id, new_id, normalise_name
from memsweep.storage.ingest.chunking import chunk_text, extract_entities
from memsweep.storage.ingest.sources import read_source
from memsweep.storage.stores.files import owner_key, sha256_bytes
from memsweep.storage.stores.graph import GraphAdd
from memsweep.storage.stores.schema import chunk_entities, chunks, data, data_entities, datasets, entities, relations
from memsweep.storage.stores.vectors import VectorRow
from sqlalchemy import Connection, select, update

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Content:
    raw: bytes
    text: str
    name: str
    mime_type: str
    owned: bool
    source_path: str | None


def encode_text(value: str, what: str) -> bytes:
    """UTF-8 bytes of a caller's string; a lone surrogate (not encodable) is an `InvalidInput`."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{what} contains a lone surrogate (character {exc.start}), which is not valid Unicode text. "
            "Nothing was stored; send valid UTF-8 text."
        ) from None


def _text_of(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not UTF-8 text; memsweep stores text memories. Nothing was stored.") from exc
    if "\x00" in text:
        raise InvalidInput(f"{what} contains NUL bytes; memsweep stores text memories. Nothing was stored.")
    return text


def read_content(
    engine: Engine, text: str | None, path: str | None, name: str | None, copy: bool, remote: bool = False
) -> Content:
    limits = engine.settings.limits
    if (text is None) == (path is None):
        raise InvalidInput("Give exactly one of `text` or `path`. Nothing was stored.")
    if name is not None and (not name.strip() or len(name) > limits.max_name_chars or "\x00" in name):
        raise InvalidInput(f"`name` must be 1–{limits.max_name_chars} characters without NUL bytes.")
    if text is not None:
        if not copy:
            raise InvalidInput("`copy=false` applies to files added by `path`; a text is always stored.")
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("`text` is empty. Nothing was stored.")
        raw = encode_text(text, "`text`")
        if len(raw) > limits.max_text_bytes:
            raise InvalidInput(
                f"`text` is {len(raw):,} bytes; the limit is {limits.max_text_bytes:,}. Nothing was stored; "
                "split it into several memories."
            )
        _text_of(raw, "`text`")
        label = name or (" ".join(text.split())[:60] or "text")
        return Content(raw, text, label, "text/plain", True, None)
    assert path is not None
    source = read_source(
        path,
        max_bytes=limits.max_file_bytes,
        remote=remote,
        allowed=engine.settings.allowed_paths,
        forbidden=engine.data_dir,
    )
    text = _text_of(source.raw, source.real_path.name)
    if not text.strip():
        raise InvalidInput(f"{source.real_path.name} is empty. Nothing was stored.")
    mime = mimetypes.guess_type(source.real_path.name)[0] or "text/plain"
    real = str(source.real_path)
    return Content(source.raw, text, name or source.real_path.name, mime, copy, None if copy else real)


def _clean_entities(
    engine: Engine, given: list[dict[str, Any]] | None, rels: list[dict[str, Any]] | None, text: str
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str, str]]]:
    """{norm: {name, type, description}} and (source_norm, relation, target_norm)."""
    limits = engine.settings.limits
    out: dict[str, dict[str, Any]] = {}
    triples: list[tuple[str, str, str]] = []

    def add(name: object, etype: object = None, description: object = None) -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > limits.max_name_chars or "\x00" in name:
            raise InvalidInput(f"Entity names must be 1–{limits.max_name_chars} characters; got {str(name)[:40]!r}.")
        norm = normalise_name(name)
        if not norm:
            raise InvalidInput(f"Entity name {name[:40]!r} has no letters or digits.")
        if norm not in out:
            out[norm] = {
                "name": " ".join(name.split()),
                "type": str(etype)[:64] if etype else None,
                "description": str(description)[:2000] if description else None,
            }
        return norm

    if given is None and rels is None:
        # What the built-in extractor finds is a hint, never a reason to refuse the memory: names are cut to
        # the limit at a word boundary, and what still does not fit is dropped.
        names, pairs = extract_entities(text)
        fitted: dict[str, str] = {}
        for n in names:
            cut = _fit_name(n, limits.max_name_chars)
            if cut and normalise_name(cut) and len(out) < limits.max_entities_per_item:
                fitted[n] = add(cut)
        triples = [(fitted[a], "mentioned_with", fitted[b]) for a, b in pairs if a in fitted and b in fitted]
        return out, [t for t in dict.fromkeys(triples) if t[0] != t[2]][: limits.max_relations_per_item]
    for ent in given or []:
        if not isinstance(ent, dict):
            raise InvalidInput('Each entity must be an object like {"name": "Alice", "type": "person"}.')
        add(ent.get("name"), ent.get("type"), ent.get("description"))
    for rel in rels or []:
        if not isinstance(rel, dict):
            raise InvalidInput('Each relation must be {"source": …, "relation": …, "target": …}.')
        label = rel.get("relation")
        if not isinstance(label, str) or not label.strip() or len(label) > 255:
            raise InvalidInput("Each relation needs a `relation` label of 1–255 characters.")
        triples.append((add(rel.get("source")), label.strip(), add(rel.get("target"))))
    if len(out) > limits.max_entities_per_item or len(triples) > limits.max_relations_per_item:
        raise InvalidInput(
            f"At most {limits.max_entities_per_item} entities and {limits.max_relations_per_item} relations "
            "per item. Nothing was stored."
        )
    return out, triples


def _fit_name(name: str, limit: int) -> str:
    """An extracted name shortened to `limit` characters, at a word boundary when there is one."""
    name = " ".join(name.replace("\x00", " ").split())
    if len(name) <= limit:
        return name
    cut = name[:limit]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


@dataclass(frozen=True)
class Prepared:
    """One item ready to store: everything computed outside the writer lock."""

    dataset: str
    content: Content
    found: dict[str, dict[str, Any]]
    triples: list[tuple[str, str, str]]
    pieces: list[str]
    text_hashes: list[str]
    content_hash: str
    data_id: str
    chunk_ids: list[str]
    expires_at: datetime | None = None  # an explicit expiry (from expires_at or ttl_days), else the dataset's


MAX_TTL_DAYS = 36_500


def expiry(engine: Engine, expires_at: str | datetime | None, ttl_days: float | None) -> datetime | None:
    """When an item given `expires_at` (RFC 3339 / ISO 8601; no offset means UTC) or `ttl_days` expires."""
    if expires_at is not None and ttl_days is not None:
        raise InvalidInput("Give `expires_at` or `ttl_days`, not both. Nothing was stored.")
    now = engine.now()
    if ttl_days is not None:
        if isinstance(ttl_days, bool) or not isinstance(ttl_days, int | float) or not 0 < ttl_days <= MAX_TTL_DAYS:
            raise InvalidInput(
                f"`ttl_days` must be a number of days between 0 and {MAX_TTL_DAYS:,}. Nothing was stored."
            )
        return now + timedelta(days=ttl_days)
    if expires_at is None:
        return None
    if isinstance(expires_at, str):
        raw = expires_at
        try:
            expires_at = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"`expires_at` {raw[:40]!r} is not a date and time like 2027-01-31T12:00:00+00:00. Nothing was stored."
            ) from None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if expires_at <= now:
        raise InvalidInput("`expires_at` is already past: that memory would be invisible at once. Nothing was stored.")
    return expires_at


def prepare(
    engine: Engine,
    dataset: str,
    *,
    text: str | None = None,
    path: str | None = None,
    name: str | None = None,
    entity_list: list[dict[str, Any]] | None = None,
    relation_list: list[dict[str, Any]] | None = None,
    copy: bool = True,
    remote: bool = False,
    expires_at: str | datetime | None = None,
    ttl_days: float | None = None,
) -> Prepared:
    if not isinstance(dataset, str) or not dataset.strip():
        raise InvalidInput("`dataset` (an id or a name) is required. Nothing was stored.")
    expires = expiry(engine, expires_at, ttl_days)
    content = read_content(engine, text, path, name, copy, remote)
    found, triples = _clean_entities(engine, entity_list, relation_list, content.text)
    pieces = chunk_text(content.text)
    return Prepared(
        dataset=dataset.strip(),
        content=content,
        found=found,
        triples=triples,
        pieces=pieces,
        text_hashes=[hashlib.sha256(p.encode()).hexdigest() for p in pieces],
        content_hash=sha256_bytes(content.raw),
        data_id=new_id(),
        chunk_ids=[new_id() for _ in pieces],
        expires_at=expires,
    )


async def add(engine: Engine, user: str, dataset: str, **kwargs: Any) -> AddResult:
    # Reading a file (and chunking a large text) is blocking work: never on the event loop.
    prepared = await engine.run(lambda: prepare(engine, dataset, **kwargs))
    return (await add_many(engine, user, [prepared]))[0]


async def add_many(engine: Engine, user: str, batch: list[Prepared]) -> list[AddResult]:
    """Store a batch in one lease: one metadata transaction, one vector write, one graph transaction.
    The order (rows `ingesting` → file → vectors → graph → `active`) is what recovery can undo."""
    if not batch:
        return []
    if len(batch) > engine.settings.limits.max_items_per_call:
        raise InvalidInput(f"At most {engine.settings.limits.max_items_per_call} items per call. Nothing was stored.")
    all_pieces = [p for item in batch for p in item.pieces]
    all_hashes = [h for item in batch for h in item.text_hashes]
    vectors, new_cache = await embed_chunks(engine, all_pieces, all_hashes)
    results: list[AddResult] = []
    vector_rows: list[VectorRow] = []
    g_items: list[tuple[str, str]] = []
    g_chunks: list[tuple[str, str]] = []
    g_entities: list[str] = []
    g_mentions: list[tuple[str, str]] = []
    g_relations: list[tuple[str, str, str, str]] = []
    async with engine.exclusive():
        # deduplicated: the same owner already stored these bytes, before this batch or earlier in it
        dedup: dict[str, bool] = {}
        to_store: dict[str, bytes] = {}  # one write per distinct (owner, content)
        file_keys: dict[str, str] = {}

        def insert_rows(conn: Connection) -> None:
            # One worker-thread hop for the whole transaction (see MetadataStore.call).
            uid = access.user_id(conn, user, create=True)
            assert uid is not None
            offset = 0
            for item in batch:
                ds, _created = access.dataset_for_add(conn, uid, item.dataset, engine.settings.limits.max_name_chars)
                if item.content.owned:
                    key = file_keys[item.data_id] = owner_key(ds.owner_id, item.content_hash)
                    if key in to_store:
                        dedup[item.data_id] = True
                    else:
                        to_store[key] = item.content.raw
                        dedup[item.data_id] = engine.files.exists(key)
                ent_ids, mentions, rel_rows = _store_rows(engine, conn, ds, item, file_keys.get(item.data_id))
                item_vectors = vectors[offset : offset + len(item.pieces)]
                offset += len(item.pieces)
                vector_rows.extend(
                    VectorRow(c, item.data_id, ds.id, v) for c, v in zip(item.chunk_ids, item_vectors, strict=True)
                )
                g_items.append((item.data_id, ds.id))
                g_chunks.extend((c, item.data_id) for c in item.chunk_ids)
                g_entities.extend(ent_ids.values())
                g_mentions.extend(mentions)
                g_relations.extend((r["id"], item.data_id, r["source_id"], r["target_id"]) for r in rel_rows)
                results.append(
                    AddResult(
                        data_id=item.data_id,
                        dataset_id=ds.id,
                        dataset_name=ds.name,
                        chunks=len(item.pieces),
                        entities=len(ent_ids),
                        deduplicated=dedup.get(item.data_id, False),
                    )
                )

        await engine.meta.call(insert_rows, write=True)
        # Files after the rows: a crash between the two leaves an `ingesting` row whose rollback removes the
        # file (a missing one counts as done); file-first would leave an orphan no row points at.
        for key, raw in to_store.items():
            await engine.run(engine.files.put, raw, key)
        crash_point("mid_add")
        await engine.run(engine.vectors.add, vector_rows)
        graph = GraphAdd(g_items, g_chunks, g_entities, g_mentions, g_relations, fresh=True)
        await engine.run(engine.graph.add, graph)
        ids = [item.data_id for item in batch]

        def activate(conn: Connection) -> None:
            for start in range(0, len(ids), 500):
                conn.execute(update(data).where(data.c.id.in_(ids[start : start + 500])).values(status="active"))

        await engine.meta.call(activate, write=True)
        # Cached only once the items are live: a refused add must leave no vector of its text behind.
        await engine.run(engine.cache.put_many, new_cache)
    return results


def _store_rows(
    engine: Engine, conn: Connection, ds: access.DatasetRow, item: Prepared, file_key: str | None
) -> tuple[dict[str, str], list[tuple[str, str]], list[dict[str, Any]]]:
    """Insert the item's rows (status `ingesting`); returns its entity ids by normalised name, its
    chunk → entity mentions and its relation rows."""
    ent_ids = {norm: entity_id(ds.owner_id, norm) for norm in item.found}
    existing: set[str] = set()
    if ent_ids:
        existing = {r[0] for r in conn.execute(select(entities.c.id).where(entities.c.id.in_(list(ent_ids.values()))))}
    # A new entity shows what its first item says; later items' words are kept per item (data_entities),
    # and the entity row is recomputed from the live ones when an item goes (purge.purge).
    new_rows = [
        {"id": ent_ids[n], "owner_id": ds.owner_id, "norm": n, **item.found[n]}
        for n in item.found
        if ent_ids[n] not in existing
    ]
    content = item.content
    created = engine.now()
    conn.execute(
        data.insert().values(
            id=item.data_id,
            dataset_id=ds.id,
            name=content.name[: engine.settings.limits.max_name_chars],
            mime_type=content.mime_type,
            size_bytes=len(content.raw),
            content_hash=item.content_hash,
            file_key=file_key,
            owned=content.owned,
            source_path=content.source_path,
            status="ingesting",
            file_state="stored" if content.owned else "reference",
            graph_ok=True,
            vectors_ok=True,
            created_at=created,
            expires_at=item.expires_at or _retention_expiry(engine, conn, ds.id),
        )
    )
    if item.pieces:
        conn.execute(
            chunks.insert(),
            [
                {"id": c, "data_id": item.data_id, "seq": i, "text": p, "text_hash": h}
                for i, (c, p, h) in enumerate(zip(item.chunk_ids, item.pieces, item.text_hashes, strict=True))
            ],
        )
    if new_rows:
        conn.execute(entities.insert(), new_rows)
    if ent_ids:
        conn.execute(
            data_entities.insert(),
            [
                {"data_id": item.data_id, "entity_id": ent_ids[n], "created_at": created, **item.found[n]}
                for n in ent_ids
            ],
        )
    mentions = _mentions(item.pieces, item.chunk_ids, item.found, ent_ids)
    if mentions:
        conn.execute(chunk_entities.insert(), [{"chunk_id": c, "entity_id": e} for c, e in mentions])
    rel_rows = [
        {"id": new_id(), "data_id": item.data_id, "source_id": ent_ids[s], "target_id": ent_ids[t], "relation": r}
        for s, r, t in dict.fromkeys(item.triples)
    ]
    if rel_rows:
        conn.execute(relations.insert(), rel_rows)
    return ent_ids, mentions, rel_rows


def _retention_expiry(engine: Engine, conn: Connection, dataset_id: str) -> datetime | None:
    """The dataset's retention (set by the operator) for an item given no expiry of its own."""
    days = conn.execute(select(datasets.c.retention_days).where(datasets.c.id == dataset_id)).scalar()
    return engine.now() + timedelta(days=days) if days else None


def _mentions(
    pieces: list[str], chunk_ids: list[str], found: dict[str, dict[str, Any]], ent_ids: dict[str, str]
) -> list[tuple[str, str]]:
    """Provenance chunk → entity: the chunks whose text names the entity, else the first chunk."""
    pairs: list[tuple[str, str]] = []
    folded = [p.casefold() for p in pieces]
    for norm, info in found.items():
        hits = [c for c, f in zip(chunk_ids, folded, strict=True) if info["name"].casefold() in f or norm in f]
        for c in hits or chunk_ids[:1]:
            pairs.append((c, ent_ids[norm]))
    return pairs


async def embed_chunks(
    engine: Engine, pieces: list[str], hashes: list[str]
) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Vectors for `pieces` (cache first) and the new cache entries to store once the add succeeds."""
    keys = [engine.cache_key(h) for h in hashes]
    cached = await engine.run(engine.cache.get_many, keys)
    missing = [i for i, k in enumerate(keys) if k not in cached]
    new: dict[str, np.ndarray] = {}
    if missing:
        fresh = await engine.run(engine.embedder.embed, [pieces[i] for i in missing])
        new = {keys[i]: fresh[j] for j, i in enumerate(missing)}
        cached.update(new)
    return [cached[k] for k in keys], new
