"""Erasure (DESIGN.md invariant 7): after a delete's purge, rewrite what still holds the deleted bytes and
drop old versions (ENGINES.md: LanceDB forced compaction and cleanup, SQLite WAL checkpoint; the graph
holds no content and the cache zeroes on delete). `erase_pending` in the metadata store records an erase
that is due, so the background sweep, a stop or the next start finishes it."""

from __future__ import annotations

import logging

from memsweep.storage.deletion.receipts import mark_erased
from memsweep.storage.engine import Engine
from memsweep.storage.faults import crash_point
from memsweep.storage.stores.metadata import get_state, set_state
from sqlalchemy import Connection

log = logging.getLogger("memsweep.erasure")


async def erase_now(engine: Engine, *, vectors_rewritten: bool = False, checkpointed: bool = False) -> bool:
    """Rewrite what holds deleted bytes and drop old versions (ENGINES.md): LanceDB forced compaction and
    cleanup and SQLite WAL checkpoint (unless the caller just did them); the graph holds no content and the
    cache zeroes on delete. Returns True only when every step completed. `erase_pending` is cleared last,
    after a complete checkpoint, so a crash or a busy reader anywhere before leaves it set and the sweep
    (or the next start) erases again."""
    if not vectors_rewritten:
        await engine.run(engine.vectors.erase)
    crash_point("mid_erase")
    # The indexes' remap over the rewritten fragments is folded in when writes pause (Engine._when_idle), not
    # here: after an add, folding its new row into the three BTREE indexes cost a delete 78 ms of its 128.
    if not checkpointed and not await engine.meta.checkpoint():
        log.warning("erase pending: another process is reading the metadata database; the sweep will retry")
        return False

    def done(conn: Connection) -> None:
        set_state(conn, "erase_pending", None)
        mark_erased(conn)  # every receipt waiting for this erase now certifies it

    await engine.meta.call(done, write=True)
    return True


async def erase_if_pending(engine: Engine) -> bool:
    """Finish a recorded erase; True when nothing is left pending."""
    pending = await engine.meta.call(get_state, "erase_pending")
    if pending:
        return await erase_now(engine)
    return True
