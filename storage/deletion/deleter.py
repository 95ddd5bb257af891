"""The delete path, one for every deleting call (DESIGN.md, "The delete path"):

plan (read-only) → dry run returns it → permission checked while resolving the target → journal record
commits and hides the items → vectors, graph, files, cache (batched, idempotent) → metadata purge, journal
closed, audit entry (one transaction) → erase. `recovery.resume` re-runs `apply` for any journal record a
crash left open; `apply` recomputes nothing the journal did not fix: its sets come from the plan, which
for a resume is recomputed from the rows the journal record still owns.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from memsweep.storage import access
from memsweep.storage.deletion import receipts
from memsweep.storage.deletion.erasure import erase_now
from memsweep.storage.deletion.planner import plan_scope
from memsweep.storage.deletion.purge import purge
from memsweep.storage.deletion.scopes import SQL_BATCH, Scope, annotate, batches, resolve
from memsweep.storage.deletion.targets import Plan, PlanChanged, Target
from memsweep.storage.engine import Engine
from memsweep.storage.faults import crash_point
from memsweep.storage.ids import new_id
from memsweep.storage.stores.graph import GraphDelete
from memsweep.storage.stores.schema import data, journal
from memsweep.storage.stores.vectors import DELETE_BATCH
from sqlalchemy import Connection, bindparam, update

Progress = Callable[[int, int, str], Awaitable[None]]
__all__ = ["Plan", "PlanChanged", "Progress", "Target", "apply", "execute", "make_plan"]
STEPS = ("journal", "vectors", "graph", "files", "purge", "erase")
GRAPH_BATCH = 2000


async def make_plan(engine: Engine, user: str, target: Target) -> Plan:
    """Read-only: what `target` would delete now, for `user`."""
    if target.kind == "prune":
        from memsweep.storage.deletion.prune import plan_prune

        return await plan_prune(engine, target.wipe)

    return await engine.meta.call(_read_plan, engine, user, target)


def _read_plan(conn: Connection, engine: Engine, user: str, target: Target) -> Plan:
    scope, removed = resolve(conn, user, target)
    plan = plan_scope(
        conn,
        op=target.op,
        scope=scope,
        dataset_ids=removed,
        memory_only=target.memory_only,
        file_size=engine.file_size,
        cache_prefix=engine.cache_prefix,
    )
    return annotate(conn, user, target, plan)


async def execute(
    engine: Engine,
    user: str,
    target: Target,
    *,
    erase: bool = True,
    expected_fingerprint: str | None = None,
    progress: Progress | None = None,
    verify: bool = False,
) -> Executed:
    """Carry out `target`: re-plan under the writer lock, check the fingerprint, journal, apply; with
    `verify`, scan the data directory for what was deleted before returning (the receipt records it)."""
    async with engine.exclusive():
        if verify or target.kind == "prune":
            # The scan's needles are read from the stores between the plan and the journal; a prune plans
            # from the stores themselves.
            plan = await make_plan(engine, user, target)
            _check(plan, expected_fingerprint)
            if plan.empty:
                return Executed(plan, erase)
            needles = await receipts.collect_needles(engine, plan) if verify else []
            journal_id = await write_journal(engine, user, plan, erase)
        else:
            # The plan read and the journal in one write transaction: one worker-thread hop and one commit
            # less per delete (0.5-1.9 ms of 14-40 measured).
            needles = []
            journal_id = new_id()

            def plan_and_journal(conn: Connection) -> Plan:
                plan = _read_plan(conn, engine, user, target)
                _check(plan, expected_fingerprint)  # raising rolls back: nothing is written
                if not plan.empty:
                    _journal(conn, journal_id, user, plan, erase)
                return plan

            plan = await engine.meta.call(plan_and_journal, write=True)
            if plan.empty:
                return Executed(plan, erase)
            crash_point("after_journal")
        erased = await apply(engine, journal_id, plan, erase=erase, user=user, progress=progress)
        result = None
        if verify:
            result = await engine.run(receipts.scan, engine.data_dir, needles)
            await engine.meta.call(receipts.record_scan, journal_id, result, write=True)
    return Executed(plan, erased, journal_id, result)


@dataclass(frozen=True)
class Executed:
    plan: Plan
    erased: bool
    receipt_id: str | None = None
    scan: receipts.Scan | None = None


_OPEN_JOURNAL = journal.insert()
_TAG_ITEMS = update(data).where(data.c.id.in_(bindparam("ids", expanding=True)))  # SET from the values given


def _check(plan: Plan, expected_fingerprint: str | None) -> None:
    if expected_fingerprint is not None and plan.fingerprint != expected_fingerprint:
        raise PlanChanged(plan)


async def write_journal(engine: Engine, user: str, plan: Plan, erase: bool) -> str:
    """One `BEGIN IMMEDIATE` transaction records the intent (ids only) and hides the items."""
    journal_id = new_id()
    await engine.meta.call(_journal, journal_id, user, plan, erase, write=True)
    crash_point("after_journal")
    return journal_id


def _journal(conn: Connection, journal_id: str, user: str, plan: Plan, erase: bool) -> None:
    record = {
        "dataset_ids": list(plan.dataset_ids),
        "memory_only": plan.memory_only,
        "wipe": plan.wipe.__dict__,
    }
    conn.execute(
        _OPEN_JOURNAL,
        {
            "id": journal_id, "op": plan.op, "user_name": user, "status": "open", "erase": erase,
            "plan": json.dumps(record), "created_at": access.now(),
        },
    )  # fmt: skip
    values: dict[str, object] = {"journal_id": journal_id}
    if not plan.memory_only:
        values["status"] = "deleting"  # from here on every read filters these items out
    for part in batches(plan.data_ids, SQL_BATCH):
        conn.execute(_TAG_ITEMS, {"ids": part, **values})
    w = plan.wipe
    if not w.metadata:
        # Partial prunes: the items stay but lose a layer, so they are marked for `rebuild`.
        if w.graph:
            conn.execute(update(data).values(graph_ok=False))
        if w.vector:
            conn.execute(update(data).values(vectors_ok=False))
        if w.files:
            conn.execute(update(data).where(data.c.file_state == "stored").values(file_state="pruned"))


async def apply(
    engine: Engine, journal_id: str, plan: Plan, *, erase: bool, user: str, progress: Progress | None = None
) -> bool:
    """Steps 5–7 for a journaled plan; every step is idempotent, so a resume simply runs them again.
    Returns whether the deleted bytes were erased before returning (never claimed when they were not)."""
    total = len(STEPS)

    async def tick(done: int, what: str) -> None:
        if progress is not None:
            await progress(done, total, what)

    await tick(1, "journal committed; items hidden")
    w = plan.wipe
    checkpointed = False
    async with anyio.create_task_group() as tg:
        # The embedding cache is a separate SQLite file that nothing below depends on: its rows go in their
        # own worker thread (0.5 s of an empty_dataset of 10,000 items when it ran after the files).
        if w.cache or w.metadata:
            tg.start_soon(engine.run, engine.cache.clear)
        elif plan.cache_keys:
            tg.start_soon(engine.run, engine.cache.delete_many, plan.cache_keys)
        async with anyio.create_task_group() as derived:
            # The graph beside the vectors: the items are hidden since the journal committed (every read,
            # search included, re-checks its hits against the metadata), each step is idempotent, and a
            # crash in either leaves the journal open; so their order does not matter, and together they
            # cost the slower of the two (graph 1.6-2 ms beside a 4-5 ms vector delete at 1,000 items).
            derived.start_soon(_delete_graph, engine, plan)
            await _delete_vectors(engine, plan, erase)
            if erase:
                # What is left of the vectors' erase (the cleanup of old versions; the forced rewrite too after
                # a large delete) needs nothing below, so it runs in its own worker thread while the files and
                # metadata are done. A crash meanwhile leaves the journal open (or erase_pending set with the
                # purge), and the next start deletes and erases again: both steps are idempotent.
                tg.start_soon(engine.run, engine.vectors.erase)
        await tick(2, "vectors deleted")
        await tick(3, "graph nodes and edges deleted")

        await _remove_files(engine, plan)
        crash_point("after_files")
        await tick(4, "files removed")

        await purge(engine, journal_id, plan, user, erase)
        crash_point("after_purge")
        await tick(5, "metadata purged; audit recorded")
        if erase:
            # The purge's old page images leave the metadata's WAL while the vector rewrite still runs.
            checkpointed = await engine.meta.checkpoint()

    erased = False
    if erase:
        erased = await erase_now(engine, vectors_rewritten=True, checkpointed=checkpointed)
    if not erased:
        engine.schedule_erase()  # erase=false, or an erase a busy reader kept from completing
    await tick(6, "erased" if erased else "erase pending for the background sweep")
    return erased


async def _delete_vectors(engine: Engine, plan: Plan, erase: bool) -> None:
    if plan.wipe.vector or plan.wipe.metadata:
        await engine.run(engine.vectors.drop)
    elif erase and len(plan.vector_data_ids) <= DELETE_BATCH:
        # The rows go with the rewrite that erases them: one commit instead of a delete and a compaction.
        await engine.run(engine.vectors.delete_erasing, plan.vector_data_ids)
        crash_point("mid_vectors")
    else:
        for i, part in enumerate(batches(plan.vector_data_ids, DELETE_BATCH)):
            await engine.run(engine.vectors.delete_data, part)
            if i == 0:
                crash_point("mid_vectors")
    crash_point("after_vectors")


async def _delete_graph(engine: Engine, plan: Plan) -> None:
    if plan.wipe.graph or plan.wipe.metadata:
        await engine.run(engine.graph.wipe)
    else:
        for i, change in enumerate(_graph_batches(plan)):
            await engine.run(engine.graph.delete, change)
            if i == 0:
                crash_point("mid_graph")
    crash_point("after_graph")


def _graph_batches(plan: Plan) -> list[GraphDelete]:
    """The graph deletions in transactions of at most GRAPH_BATCH keys, in dependency order (relations,
    chunks, items, entities); a small delete is one transaction instead of four."""
    kinds: list[tuple[str, list[Any]]] = [
        ("relations", list(plan.graph_relations)), ("chunk_ids", list(plan.graph_chunk_ids)),
        ("data_ids", list(plan.graph_data_ids)), ("entity_ids", list(plan.graph_entity_ids)),
    ]  # fmt: skip
    out: list[GraphDelete] = []
    current: dict[str, list[Any]] = {}
    size = 0
    for kind, values in kinds:
        while values:
            take = values[: GRAPH_BATCH - size]
            values = values[len(take) :]
            current.setdefault(kind, []).extend(take)
            size += len(take)
            if size >= GRAPH_BATCH:
                out.append(GraphDelete(**current))
                current, size = {}, 0
    if current:
        out.append(GraphDelete(**current))
    return out


async def _remove_files(engine: Engine, plan: Plan) -> None:
    if plan.wipe.files:
        hashes = list(engine.files.hashes())
    else:
        hashes = list(plan.files_deleted)
    if not hashes:
        return
    # No re-check needed: the plan was computed under this same lease (adds wait for it), and a resume
    # recomputes it from the rows the journal still owns. prune(files) marked every item `pruned` first.
    for i, part in enumerate(batches(hashes, SQL_BATCH)):
        # one worker-thread hop per batch: per-file hops cost ~0.2 ms each (2.2 s for a 10k-file prune)
        await engine.run(lambda part=part: [engine.files.remove(h) for h in part])
        if i == 0:
            crash_point("mid_files")


def journal_scope(journal_id: str) -> Scope:
    return Scope("journal", {"scope_journal": journal_id})
