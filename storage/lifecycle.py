"""Opening the store: the engine (stores wired behind one facade) composed with what runs around it. This
is the one place that knows both the engine and the rooms above it (deletion, maintenance), so the engine
never imports them back (ARCHITECTURE.md).
"""

from __future__ import annotations

from memsweep.config import Settings
from memsweep.storage.admin.maintenance import repair_graph_if_needed
from memsweep.storage.deletion import expiry
from memsweep.storage.deletion.erasure import erase_if_pending
from memsweep.storage.deletion.recovery import needs_recovery, recover
from memsweep.storage.engine import Engine, Hooks


async def open_engine(settings: Settings) -> Engine:
    """Open the stores and, when anything was left unfinished, recover under the directory lease: roll
    back half-done adds, resume open journal records, rebuild a lost graph, finish a pending erase. Reads
    are served only after this."""
    engine = await Engine.open(
        settings, Hooks(erase_pending=erase_if_pending, after_unclean_stop=repair_graph_if_needed)
    )
    try:
        if await needs_recovery(engine):
            async with engine.exclusive():
                await recover(engine)
        await expiry.sweep(engine)  # items that expired while nothing ran are deleted before serving
    except BaseException:
        await engine.close()
        raise
    return engine
