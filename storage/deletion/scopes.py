"""What a deleting call covers: a target turned into a scope on `data` (with every permission and existence
check), and the display-only facts a preview adds to its plan (dataset names, the items listed, items
about the subject the caller may not delete). Nothing here changes a row."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from memsweep.errors import InvalidInput, NotFound, PermissionDenied
from memsweep.storage import access
from memsweep.storage.deletion.targets import MAX_DATA_IDS, Plan, Target
from memsweep.storage.ids import is_uuid, normalise_name, parse_uuid
from memsweep.storage.stores.schema import chunks, data, data_entities, datasets, entities
from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, func, or_, select

SQL_BATCH = 500
MAX_DATASET_NAMES = 5
MAX_LISTED = 20
SNIPPET_CHARS = 80


def batches(values: tuple[str, ...] | list[str], size: int = SQL_BATCH) -> list[list[str]]:
    """`values` in lists of at most `size` (SQLite caps the parameters of one statement)."""
    values = list(values)
    return [values[i : i + size] for i in range(0, len(values), size)]


def _mentions(norm: Any) -> ColumnElement[bool]:
    """Items that have the entity (by normalised name, any owner: identity is per owner) among theirs."""
    ids = select(entities.c.id).where(entities.c.norm == norm).scalar_subquery()
    return data.c.id.in_(select(data_entities.c.data_id).where(data_entities.c.entity_id.in_(ids)))


def expiring_scope() -> ColumnElement[bool]:
    """Items the expiry sweep will delete one day: live, with an expiry, never in a dataset on hold."""
    held = select(datasets.c.id).where(datasets.c.hold.is_(True))
    return and_(data.c.status == "active", data.c.expires_at.is_not(None), data.c.dataset_id.not_in(held))


_ACTIVE = data.c.status == "active"
# Every scope is one of these conditions on `data`, with named parameters. The planner builds its
# statements once per kind and runs them with the scope's values: building SQLAlchemy statements anew for
# every delete cost more than running them (a one-item plan: ~2.2 ms of Python around 0.5 ms of SQLite).
KINDS: dict[str, ColumnElement[bool]] = {
    "item": and_(data.c.id == bindparam("scope_id"), _ACTIVE),
    "items": and_(data.c.id.in_(bindparam("scope_ids", expanding=True)), _ACTIVE),
    "dataset": and_(data.c.dataset_id == bindparam("scope_dataset"), _ACTIVE),
    "datasets": and_(data.c.dataset_id.in_(bindparam("scope_datasets", expanding=True)), _ACTIVE),
    "entity": and_(
        _mentions(bindparam("scope_norm")), data.c.dataset_id.in_(bindparam("scope_datasets", expanding=True)), _ACTIVE
    ),
    "expired": and_(expiring_scope(), data.c.expires_at <= bindparam("scope_until")),
    "journal": data.c.journal_id == bindparam("scope_journal"),  # the rows a journal record still owns
    "ingesting": data.c.status == "ingesting",  # adds a crash left unfinished
}


@dataclass(frozen=True)
class Scope:
    """What a delete covers: one of `KINDS` and the values of its parameters."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> ColumnElement[bool]:
        return KINDS[self.kind]


def resolve(conn: Connection, user: str, target: Target) -> tuple[Scope, tuple[str, ...]]:
    """The target as a scope on `data` plus the datasets it removes; checks existence, `delete`, and holds."""
    if target.kind == "expired":
        assert target.until is not None
        return expired_scope(target.until), ()
    scope, removed = _resolve(conn, user, target)
    _refuse_holds(conn, scope, removed)
    return scope, removed


def expired_scope(until: datetime) -> Scope:
    """The expiry sweep's items: those of `expiring_scope` expired at or before `until`."""
    return Scope("expired", {"scope_until": until})


@functools.cache
def _holds_query(kind: str) -> Select[tuple[str]]:
    touched = select(data.c.dataset_id).where(KINDS[kind]).distinct()
    return (
        select(datasets.c.name)
        .where(
            datasets.c.hold.is_(True),
            or_(datasets.c.id.in_(touched), datasets.c.id.in_(bindparam("removed", expanding=True))),
        )
        .order_by(datasets.c.name)
    )


def _refuse_holds(conn: Connection, scope: Scope, removed: tuple[str, ...]) -> None:
    """A dataset on hold is deleted by nothing (issue 15.1): the error names the hold and how to lift it."""
    held = conn.execute(_holds_query(scope.kind), {**scope.params, "removed": list(removed)}).all()
    if held:
        names = ", ".join(repr(r[0]) for r in held[:5])
        raise PermissionDenied(
            f"Dataset {names} is on hold: nothing in it may be deleted (or expire) until the operator runs "
            "`memsweep release DATASET`. Nothing was deleted."
        )


def _resolve(conn: Connection, user: str, target: Target) -> tuple[Scope, tuple[str, ...]]:
    removed: tuple[str, ...]
    uid = access.user_id(conn, user, create=False)
    if target.kind == "item":
        data_id = parse_uuid(target.data_id, "data_id")
        row = conn.execute(select(data.c.dataset_id, data.c.status).where(data.c.id == data_id)).first()
        if target.dataset is not None:
            ds = access.require_dataset(conn, uid, target.dataset, "delete")
            if row is None or row.dataset_id != ds.id or row.status != "active":
                raise NotFound(
                    f"No item {data_id} in dataset {ds.name!r} (it may already have been deleted). "
                    "Nothing was deleted; call list_data to see what the dataset holds."
                )
        else:
            if row is None or row.status != "active" or access.find_dataset(conn, uid, row.dataset_id) is None:
                raise NotFound(
                    f"No item {data_id} that you can see (it may already have been deleted). Nothing was deleted."
                )
            access.require_dataset(conn, uid, row.dataset_id, "delete")
        return Scope("item", {"scope_id": data_id}), ()
    if target.kind == "dataset":
        if not isinstance(target.dataset, str) or not target.dataset.strip():
            raise InvalidInput("A dataset id or name is required. Nothing was deleted.")
        ds = access.require_dataset(conn, uid, target.dataset.strip(), "delete")
        removed = () if target.memory_only else (ds.id,)
        return Scope("dataset", {"scope_dataset": ds.id}), removed
    if target.kind == "items":
        return _resolve_items(conn, uid, target), ()
    if target.kind == "entity":
        return _resolve_entity(conn, uid, target), ()
    if target.kind == "all":
        ids = access.deletable_dataset_ids(conn, uid)
        removed = () if target.memory_only else tuple(ids)
        return Scope("datasets", {"scope_datasets": ids}), removed
    raise InvalidInput(f"unknown delete target {target.kind!r}")


def _resolve_items(conn: Connection, uid: str | None, target: Target) -> Scope:
    """Several items by id: every id must name a live item the caller may delete, or nothing is deleted and
    the error lists the ids that failed (so what is deleted is exactly what was named)."""
    if not target.data_ids or len(target.data_ids) > MAX_DATA_IDS:
        raise InvalidInput(f"`data_ids` takes a list of 1–{MAX_DATA_IDS:,} item ids. Nothing was deleted.")
    bad_form = [str(v)[:40] for v in target.data_ids if not isinstance(v, str) or _not_uuid(v)]
    if bad_form:
        raise InvalidInput(
            f"Not item ids: {', '.join(repr(v) for v in bad_form[:10])}{_more(bad_form, 10)}. Nothing was deleted; "
            "pass the ids that list_data, search or forget(query=...) returned."
        )
    ids = sorted({parse_uuid(v, "data_id") for v in target.data_ids})
    found: dict[str, str] = {}
    for part in batches(ids, SQL_BATCH):
        rows = conn.execute(select(data.c.id, data.c.dataset_id).where(data.c.id.in_(part), data.c.status == "active"))
        found |= {r.id: r.dataset_id for r in rows}
    narrowed = access.require_dataset(conn, uid, target.dataset, "delete").id if target.dataset else None
    missing, denied = [], []
    perms: dict[str, set[str]] = {}
    for i in ids:
        ds_id = found.get(i)
        ds = access.find_dataset(conn, uid, ds_id) if ds_id else None
        if ds is None or ds_id is None or (narrowed is not None and ds_id != narrowed):
            missing.append(i)
            continue
        if ds_id not in perms:
            perms[ds_id] = access.permissions(conn, uid, ds)
        if "delete" not in perms[ds_id]:
            denied.append(i)
    if missing:
        where = " in that dataset" if narrowed else " that you can see"
        raise NotFound(
            f"{len(missing)} of the {len(ids)} ids name no live item{where}: {', '.join(missing[:10])}"
            f"{_more(missing, 10)}. Nothing was deleted; drop those ids and call forget again."
        )
    if denied:
        raise PermissionDenied(
            f"You may not delete {len(denied)} of the {len(ids)} items (no 'delete' permission on their dataset): "
            f"{', '.join(denied[:10])}{_more(denied, 10)}. Nothing was deleted."
        )
    return Scope("items", {"scope_ids": ids})


def _entity_norm(target: Target) -> str:
    name = target.entity
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise InvalidInput("`entity` must be a name of 1–255 characters. Nothing was deleted.")
    norm = normalise_name(name)
    if not norm:
        raise InvalidInput(f"`entity` {name[:40]!r} has no letters or digits. Nothing was deleted.")
    return norm


def _resolve_entity(conn: Connection, uid: str | None, target: Target) -> Scope:
    """Every live item, in the datasets the caller may delete (narrowed by `dataset`), that mentions the
    entity. An entity no readable item mentions is an error that says so."""
    norm = _entity_norm(target)
    deletable = access.deletable_dataset_ids(conn, uid)
    chosen = [access.require_dataset(conn, uid, target.dataset, "delete").id] if target.dataset else deletable
    scope = Scope("entity", {"scope_norm": norm, "scope_datasets": chosen})
    if uid is None or not conn.execute(select(data.c.id).where(scope.where).limit(1), scope.params).first():
        if target.dataset or _not_deletable_count(conn, uid, norm, deletable) == 0:
            where = f" in dataset {target.dataset!r}" if target.dataset else " in the datasets you can see"
            raise NotFound(
                f"No memory mentions {str(target.entity)[:80]!r}{where}. Nothing was deleted; entities are the names "
                "given to add (or found in its text): search for the subject to see how it was stored."
            )
    return scope


def _not_deletable_count(conn: Connection, uid: str | None, norm: str, deletable: list[str]) -> int:
    """Items about the subject in datasets the caller may read but not delete: counted, never named."""
    if uid is None:
        return 0
    readable = select(datasets.c.id).where(access.readable_condition(uid), datasets.c.id.not_in(deletable))
    return int(
        conn.execute(
            select(func.count()).where(_mentions(norm), data.c.dataset_id.in_(readable), data.c.status == "active")
        ).scalar_one()
    )


def _not_uuid(value: str) -> bool:
    return not is_uuid(value.strip())


def _more(values: list[str], shown: int) -> str:
    return f" and {len(values) - shown} more" if len(values) > shown else ""


def annotate(conn: Connection, user: str, target: Target, plan: Plan) -> Plan:
    """The display-only facts of a preview: dataset names, and for subject and several-item forgets the
    items listed (up to 20) and the items about the subject the caller may not delete."""
    plan = _with_dataset_names(conn, plan)
    if target.kind not in ("entity", "items", "expired"):
        return plan
    first = select(chunks.c.data_id, chunks.c.text).where(chunks.c.seq == 0).subquery()
    rows = conn.execute(
        select(data.c.id, data.c.dataset_id, data.c.name, first.c.text)
        .outerjoin(first, first.c.data_id == data.c.id)
        .where(data.c.id.in_(plan.data_ids[:MAX_LISTED]))
        .order_by(data.c.created_at, data.c.id)
    ).all()
    listed = tuple((r.id, r.dataset_id, r.name, " ".join((r.text or "").split())[:SNIPPET_CHARS]) for r in rows)
    elsewhere = 0
    if target.kind == "entity":
        uid = access.user_id(conn, user, create=False)
        elsewhere = _not_deletable_count(conn, uid, _entity_norm(target), access.deletable_dataset_ids(conn, uid))
    return replace(plan, listed=listed, items_not_deletable=elsewhere)


def _with_dataset_names(conn: Connection, plan: Plan) -> Plan:
    """The names of the datasets a plan touches, for the preview and the confirmation question (the person
    should see *which* dataset goes, not only how much). Display only: not in the fingerprint or journal."""
    if not plan.data_ids and not plan.dataset_ids:
        return plan
    ids = set(plan.dataset_ids)
    for part in batches(plan.data_ids, SQL_BATCH):  # large plans: count every dataset, name the first few
        ids |= {r[0] for r in conn.execute(_HOLDING, {"ids": part})}
    names = conn.execute(_NAMES, {"ids": sorted(ids)})
    return replace(plan, dataset_names=tuple(r[0] for r in names), datasets_touched=len(ids))


_HOLDING = select(data.c.dataset_id).where(data.c.id.in_(bindparam("ids", expanding=True))).distinct()
_NAMES = (
    select(datasets.c.name)
    .where(datasets.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(datasets.c.name)
    .limit(MAX_DATASET_NAMES)
)
