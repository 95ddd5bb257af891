"""Retention that ends in erasure (issue 15.1). An item past its `expires_at` is invisible to every read at
once (`access.live_items`); this sweep deletes such items through the one delete path, with erase, as the
user `system` and the audit reason `expired`. Datasets on hold are skipped. It runs at start-up, in a
running server every `SWEEP_SECONDS`, and by `memsweep expire`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from memsweep.storage.deletion.deleter import Executed, execute, make_plan
from memsweep.storage.deletion.scopes import expired_scope, expiring_scope
from memsweep.storage.deletion.targets import Plan, Target
from memsweep.storage.engine import Engine
from memsweep.storage.stores.schema import data, datasets
from sqlalchemy import Connection, func, select, update

SWEEP_SECONDS = 60.0
SYSTEM = "system"


def expired_target(engine: Engine, within: timedelta | None = None) -> Target:
    return Target("expired", "expired", until=engine.now() + (within or timedelta(0)))


async def preview(engine: Engine, within: timedelta | None = None) -> Plan:
    """What expires by now (+ `within`): the plan the sweep would carry out, deleting nothing."""
    return await make_plan(engine, SYSTEM, expired_target(engine, within))


async def sweep(engine: Engine) -> Executed:
    """Delete, with erase, every item whose expiry has passed (not in a dataset on hold). A look at the
    metadata first, without the directory lease: an idle server's sweep every minute must not take the
    lease (and reopen the graph) when nothing is due."""
    target = expired_target(engine)
    until = target.until
    assert until is not None

    def due(conn: Connection) -> bool:
        scope = expired_scope(until)
        return conn.execute(select(data.c.id).where(scope.where).limit(1), scope.params).first() is not None

    if not await engine.meta.call(due):
        return Executed(Plan(op="expired"), erased=True)
    return await execute(engine, SYSTEM, target, erase=True)


async def next_due(engine: Engine) -> datetime | None:
    """When the next live item expires (not counting datasets on hold), or None: a server whose engine
    process ends when idle starts it again then, so the sweep still comes on time."""

    def first(conn: Connection) -> datetime | None:
        when: datetime | None = conn.execute(select(func.min(data.c.expires_at)).where(expiring_scope())).scalar()
        return when if when is None or when.tzinfo else when.replace(tzinfo=UTC)

    return await engine.meta.call(first)


def set_retention(conn: Connection, dataset_id: str, days: int | None) -> None:
    """Operator-only: new items of the dataset expire `days` after their add (None: no retention)."""
    conn.execute(update(datasets).where(datasets.c.id == dataset_id).values(retention_days=days))


def set_hold(conn: Connection, dataset_id: str, hold: bool) -> None:
    """Operator-only: a dataset on hold neither expires nor can be deleted until released."""
    conn.execute(update(datasets).where(datasets.c.id == dataset_id).values(hold=hold or None))
