"""Start-up recovery and erasure.

On open (under the directory lease): roll back half-finished adds, re-run every open journal record,
rebuild a graph that went missing, and finish a deferred erase. Mirrors ENGINES.md's "cross-store order
that survived kill -9 in a prototype".
"""

from __future__ import annotations

import json
import logging

from memsweep.storage.deletion import deleter
from memsweep.storage.deletion.erasure import erase_if_pending
from memsweep.storage.deletion.planner import Wipe, plan_scope
from memsweep.storage.deletion.scopes import Scope
from memsweep.storage.engine import Engine
from memsweep.storage.ingest.rebuild import mark_for_rebuild, rebuild_if_pending
from memsweep.storage.stores.metadata import get_state
from memsweep.storage.stores.schema import data, journal
from sqlalchemy import Connection, select

log = logging.getLogger("memsweep.recovery")


async def recover(engine: Engine) -> None:
    await engine.run(engine.files.remove_stray_temp_files)
    await rollback_adds(engine)
    await resume(engine)
    await _mark_lost_graph(engine)
    await rebuild_if_pending(engine)
    await erase_if_pending(engine)


def _pending(conn: Connection) -> bool:
    """Whether any recovery step has work: an unfinished add, an open journal record, a rebuild or an
    erase left pending (sync, one read)."""
    return bool(
        conn.execute(select(data.c.id).where(data.c.status == "ingesting").limit(1)).first()
        or conn.execute(select(journal.c.id).where(journal.c.status == "open").limit(1)).first()
        or get_state(conn, "rebuild_pending")
        or get_state(conn, "erase_pending")
    )


async def needs_recovery(engine: Engine) -> bool:
    """True unless the store was left clean: then opening needs neither the directory lease nor the graph,
    and a fresh server answers its first call without waiting for Kuzu (issue 12.5). A graph left open by a
    killed process or a missing graph file always go through `recover()` (files are written under the lease,
    so a write killed before its rename left that mark too). An open journal record of another live process
    also reads as work: `recover()` then waits for the lease, and by then that process has closed it."""
    if engine.graph_marked_open or not engine.graph.path.exists():
        return True
    return bool(await engine.meta.call(_pending))


async def rollback_adds(engine: Engine) -> None:
    """An item still `ingesting` at start-up was never acknowledged: undo it through the delete path."""
    plan = await engine.meta.call(
        lambda conn: plan_scope(
            conn,
            op="rollback_add",
            scope=Scope("ingesting"),
            file_size=engine.file_size,
            cache_prefix=engine.cache_prefix,
        )
    )
    if plan.empty:
        return
    log.warning("rolling back %d unfinished add(s)", len(plan.data_ids))
    journal_id = await deleter.write_journal(engine, "system", plan, erase=True)
    await deleter.apply(engine, journal_id, plan, erase=True, user="system")


async def resume(engine: Engine) -> int:
    """Finish every open journal record (each step is idempotent). Returns how many were resumed."""
    unfinished = (
        select(journal.c.id, journal.c.op, journal.c.user_name, journal.c.erase, journal.c.plan)
        .where(journal.c.status == "open")
        .order_by(journal.c.created_at)
    )
    rows = await engine.meta.call(lambda conn: conn.execute(unfinished).all())
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
    if await engine.meta.call(lambda conn: conn.execute(select(data.c.id).limit(1)).first()) is None:
        return  # a new store: nothing to rebuild, nothing to warn about
    # Marked with rebuild_pending in one transaction; the rebuild itself is recover()'s next step.
    log.warning("graph was missing; it will be rebuilt from metadata")
    await mark_for_rebuild(engine, graph=True)
