"""Start-up recovery and erasure.

On open (under the directory lease): roll back half-finished adds, re-run every open journal record,
rebuild a graph that went missing, and finish a deferred erase. Mirrors ENGINES.md's "cross-store order
that survived kill -9 in a prototype".
"""

from __future__ import annotations

import json
import logging

from memsweep.storage import deleter
from memsweep.storage.engine import Engine
from memsweep.storage.faults import crash_point
from memsweep.storage.metadata import get_state, set_state
from memsweep.storage.plan import Wipe, plan_scope
from memsweep.storage.schema import data, journal
from sqlalchemy import select

log = logging.getLogger("memsweep.recovery")


async def recover(engine: Engine) -> None:
    await engine.run(engine.files.remove_stray_temp_files)
    await _rollback_adds(engine)
    await resume(engine)
    await _mark_lost_graph(engine)
    from memsweep.storage.maintenance import rebuild_if_pending

    await rebuild_if_pending(engine)
    await erase_if_pending(engine)


async def _rollback_adds(engine: Engine) -> None:
    """An item still `ingesting` at start-up was never acknowledged: undo it through the delete path."""
    plan = await engine.meta.call(
        lambda conn: plan_scope(
            conn,
            op="rollback_add",
            scope=data.c.status == "ingesting",
            file_size=engine.file_size,
            cache_prefix=engine.cache_prefix,
        )
    )
    if plan.empty:
        return
    log.warning("rolling back %d unfinished add(s)", len(plan.data_ids))
    journal_id = await deleter._journal(engine, "system", plan, erase=True)
    await deleter.apply(engine, journal_id, plan, erase=True, user="system")


async def resume(engine: Engine) -> int:
    """Finish every open journal record (each step is idempotent). Returns how many were resumed."""
    async with engine.meta.read() as conn:
        rows = (
            await conn.execute(
                select(journal.c.id, journal.c.op, journal.c.user_name, journal.c.erase, journal.c.plan)
                .where(journal.c.status == "open")
                .order_by(journal.c.created_at)
            )
        ).all()
    for row in rows:
        record = json.loads(row.plan)
        log.warning("resuming deletion %s (%s) left unfinished by a previous run", row.id, row.op)
        wipe = Wipe(**record.get("wipe", {}))
        plan = await engine.meta.call(
            lambda conn, row=row, record=record: plan_scope(
                conn,
                op=row.op,
                scope=deleter.journal_scope(row.id),
                dataset_ids=tuple(record.get("dataset_ids", ())),
                memory_only=bool(record.get("memory_only")),
                file_size=engine.file_size,
                cache_prefix=engine.cache_prefix,
            )
        )
        if wipe.any:
            from dataclasses import replace

            plan = replace(plan, wipe=wipe)
        await deleter.apply(engine, row.id, plan, erase=bool(row.erase), user=row.user_name)
    return len(rows)


async def _mark_lost_graph(engine: Engine) -> None:
    """A graph file that did not exist at open (deleted, or a backend switch) is rebuilt from metadata."""
    if not engine.graph.created:
        return
    engine.graph.created = False
    async with engine.meta.read() as conn:
        if (await conn.execute(select(data.c.id).limit(1))).first() is None:
            return  # a new store: nothing to rebuild, nothing to warn about
    from memsweep.storage.maintenance import mark_for_rebuild

    # Marked with rebuild_pending in one transaction; the rebuild itself is recover()'s next step.
    log.warning("graph was missing; it will be rebuilt from metadata")
    await mark_for_rebuild(engine, graph=True)


async def erase_now(engine: Engine, *, vectors_rewritten: bool = False) -> bool:
    """Rewrite what holds deleted bytes and drop old versions (ENGINES.md): LanceDB forced compaction and
    cleanup (unless the caller just did it), SQLite WAL checkpoint; the graph holds no content and the
    cache zeroes on delete. Returns True only when every step completed. `erase_pending` is cleared last,
    after a complete checkpoint, so a crash or a busy reader anywhere before leaves it set and the sweep
    (or the next start) erases again."""
    if not vectors_rewritten:
        await engine.run(engine.vectors.erase)
    crash_point("mid_erase")
    await engine.run(engine.vectors.ensure_indexes)
    if not await engine.meta.checkpoint():
        log.warning("erase pending: another process is reading the metadata database; the sweep will retry")
        return False
    await engine.meta.call(set_state, "erase_pending", None, write=True)
    return True


async def erase_if_pending(engine: Engine) -> bool:
    """Finish a recorded erase; True when nothing is left pending."""
    pending = await engine.meta.call(get_state, "erase_pending")
    if pending:
        return await erase_now(engine)
    return True
