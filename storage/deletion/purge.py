"""Step 6 of the delete path (DESIGN.md): one metadata transaction removes the rows a journal record owns,
re-derives the shared entities that lost an item, closes the record, and writes the audit entry and the
receipt. Its statements are built once, at import, and run with the journal record's id ("jid") and the
ids of each batch ("ids"): building SQLAlchemy statements anew for every delete cost more than running them."""

from __future__ import annotations

import json
from typing import Any

from memsweep.storage import access
from memsweep.storage.deletion import receipts
from memsweep.storage.deletion.scopes import SQL_BATCH, batches
from memsweep.storage.deletion.targets import Plan
from memsweep.storage.engine import Engine
from memsweep.storage.stores.metadata import set_state
from memsweep.storage.stores.schema import (
    acl,
    audit,
    chunk_entities,
    chunks,
    data,
    data_entities,
    datasets,
    entities,
    journal,
    relations,
)
from sqlalchemy import ColumnElement, Connection, ScalarSelect, Update, bindparam, delete, func, select, update

_IN_JOURNAL = select(data.c.id).where(data.c.journal_id == bindparam("jid")).scalar_subquery()
_TOUCHED = select(data_entities.c.entity_id).where(data_entities.c.data_id.in_(_IN_JOURNAL)).distinct()
_PURGE_ROWS = (  # references before the rows they point at
    delete(chunk_entities).where(
        chunk_entities.c.chunk_id.in_(select(chunks.c.id).where(chunks.c.data_id.in_(_IN_JOURNAL)))
    ),
    delete(chunks).where(chunks.c.data_id.in_(_IN_JOURNAL)),
    delete(data_entities).where(data_entities.c.data_id.in_(_IN_JOURNAL)),
    delete(relations).where(relations.c.data_id.in_(_IN_JOURNAL)),
    delete(data).where(data.c.journal_id == bindparam("jid")),
)
# NOT EXISTS (an index probe per entity), not NOT IN (a scan of every reference in the store)
_DROP_UNUSED_ENTITIES = delete(entities).where(
    entities.c.id.in_(bindparam("ids", expanding=True)),
    ~select(data_entities.c.entity_id).where(data_entities.c.entity_id == entities.c.id).exists(),
)
_DROP_GRANTS = delete(acl).where(acl.c.dataset_id.in_(bindparam("ids", expanding=True)))
_DROP_EMPTY_DATASETS = delete(datasets).where(
    datasets.c.id.in_(bindparam("ids", expanding=True)),
    ~select(data.c.id).where(data.c.dataset_id == datasets.c.id).exists(),
)
_KEEP_MEMORY_ONLY = (
    update(data).where(data.c.journal_id == bindparam("jid")).values(graph_ok=False, vectors_ok=False, journal_id=None)
)
_CLOSE_JOURNAL = (
    update(journal).where(journal.c.id == bindparam("jid")).values(status="done", finished_at=bindparam("finished"))
)
_AUDIT = audit.insert()


async def purge(engine: Engine, journal_id: str, plan: Plan, user: str, erase: bool) -> None:
    """One transaction: metadata rows go, the journal record closes, the audit log gains an entry."""
    jid = {"jid": journal_id}

    def write(conn: Connection) -> None:
        if plan.wipe.metadata:
            for table in (chunk_entities, chunks, data_entities, relations, data, entities, acl, datasets):
                conn.execute(delete(table))
        elif plan.memory_only:
            conn.execute(_KEEP_MEMORY_ONLY, jid)
        elif plan.data_ids or plan.dataset_ids:
            touched = [r[0] for r in conn.execute(_TOUCHED, jid)]
            for statement in _PURGE_ROWS:
                conn.execute(statement, jid)
            for part in batches(plan.meta_entity_ids, SQL_BATCH):
                conn.execute(_DROP_UNUSED_ENTITIES, {"ids": part})
            kept = sorted(set(touched) - set(plan.meta_entity_ids))
            for part in batches(kept, SQL_BATCH):
                conn.execute(_REDERIVE_ENTITIES, {"ids": part})
            for part in batches(plan.dataset_ids, SQL_BATCH):
                conn.execute(_DROP_GRANTS, {"ids": part})
                conn.execute(_DROP_EMPTY_DATASETS, {"ids": part})
        conn.execute(_CLOSE_JOURNAL, {**jid, "finished": access.now()})
        # Recorded with the purge, so a crash before the erase finishes is finished at the next start.
        set_state(conn, "erase_pending", "1")
        counts = plan.counts().model_dump()
        conn.execute(
            _AUDIT,
            {
                "at": access.now(), "user_name": user, "op": plan.op, "journal_id": journal_id,
                "counts": json.dumps(counts), "data_ids": json.dumps(list(plan.data_ids)),
            },
        )  # fmt: skip
        receipts.insert_receipt(conn, journal_id, user, plan, erase)

    await engine.meta.call(write, write=True)


def _rederive_entities_statement() -> Update:
    """Shared entities that lost an item show what their oldest remaining item says: the spelling, type and
    description a deleted item contributed leave with it (DESIGN.md invariant 9). With `secure_delete` the
    old values are zeroed in the file."""
    de = data_entities.alias("de")

    def first(column: str, *extra: ColumnElement[bool]) -> ScalarSelect[Any]:
        # One probe of the partial index ix_data_entities_first_<column> (schema.py): the item's creation
        # time is copied into data_entities, so no join with `data` and no sort of every item.
        return (
            select(de.c[column])
            .where(de.c.entity_id == entities.c.id, *extra)
            .order_by(de.c.created_at, de.c.data_id)
            .limit(1)
            .scalar_subquery()
        )

    return (
        update(entities)
        .where(entities.c.id.in_(bindparam("ids", expanding=True)))
        .values(
            name=func.coalesce(first("name", de.c.name.is_not(None)), entities.c.name),
            type=first("type", de.c.type.is_not(None)),
            description=first("description", de.c.description.is_not(None)),
        )
    )


_REDERIVE_ENTITIES = _rederive_entities_statement()
