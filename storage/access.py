"""Users, datasets and permissions, read and written inside the caller's metadata transaction.

Plain (sync) functions over a `Connection`, run inside a function given to `MetadataStore.call` (one
worker-thread hop for a whole transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from memsweep.errors import InvalidInput, NotFound, PermissionDenied
from memsweep.storage.ids import is_uuid, new_id
from memsweep.storage.stores.schema import acl, data, datasets, users
from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, or_, select

PERMISSIONS = ("read", "write", "delete", "share")


@dataclass(frozen=True)
class DatasetRow:
    id: str
    name: str
    owner_id: str
    owner: str
    created_at: datetime


def now() -> datetime:
    return datetime.now(UTC)


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 255 or "\x00" in name:
        raise InvalidInput("A user name must be 1–255 characters without NUL bytes.")
    return name.strip()


def user_id(conn: Connection, name: str, *, create: bool) -> str | None:
    row = conn.execute(_USER_ID, {"name": name}).first()
    if row:
        return str(row[0])
    if not create:
        return None
    uid = new_id()
    conn.execute(users.insert().values(id=uid, name=name, created_at=now()))
    return uid


def permissions(conn: Connection, uid: str | None, ds: DatasetRow) -> set[str]:
    if uid is None:
        return set()
    if ds.owner_id == uid:
        return set(PERMISSIONS)
    return {r[0] for r in conn.execute(_GRANTED, {"ds": ds.id, "uid": uid})}


def _dataset_select() -> Select[tuple[str, str, str, str, datetime]]:
    return select(
        datasets.c.id,
        datasets.c.name,
        datasets.c.owner_id,
        users.c.name.label("owner"),
        datasets.c.created_at,
    ).join(users, users.c.id == datasets.c.owner_id)


# The statements every call runs, built once and run with their values (building one cost ~4x running it).
_USER_ID = select(users.c.id).where(users.c.name == bindparam("name"))
_GRANTED = select(acl.c.permission).where(acl.c.dataset_id == bindparam("ds"), acl.c.user_id == bindparam("uid"))
_DATASET_BY_ID = _dataset_select().where(datasets.c.id == bindparam("ref"))
_DATASET_BY_NAME = _dataset_select().where(datasets.c.owner_id == bindparam("uid"), datasets.c.name == bindparam("ref"))
_DELETABLE = (
    select(datasets.c.id)
    .where(
        or_(
            datasets.c.owner_id == bindparam("uid"),
            datasets.c.id.in_(
                select(acl.c.dataset_id).where(acl.c.user_id == bindparam("uid"), acl.c.permission == "delete")
            ),
        )
    )
    .order_by(datasets.c.id)
)


def live_items(now: datetime) -> ColumnElement[bool]:
    """Items every read may return: added, not being deleted, not past their expiry (DESIGN.md invariant
    13: an expired item is invisible at once, before the sweep deletes it)."""
    return and_(data.c.status == "active", or_(data.c.expires_at.is_(None), data.c.expires_at > now))


def readable_condition(uid: str) -> ColumnElement[bool]:
    """Datasets whose content the caller may read (search, list_data)."""
    shared = select(acl.c.dataset_id).where(acl.c.user_id == uid, acl.c.permission == "read")
    return or_(datasets.c.owner_id == uid, datasets.c.id.in_(shared))


def visible_condition(uid: str) -> ColumnElement[bool]:
    """Datasets the caller holds any permission on: they exist for the caller, who may do what the grant says
    (a `delete` grant alone lets its holder delete through every tool; reading still needs `read`)."""
    shared = select(acl.c.dataset_id).where(acl.c.user_id == uid)
    return or_(datasets.c.owner_id == uid, datasets.c.id.in_(shared))


def find_dataset(conn: Connection, uid: str | None, ref: str) -> DatasetRow | None:
    """A dataset by id (any the caller holds a permission on) or by name (the caller's own).

    One rule for every path: a dataset the caller holds no permission on is indistinguishable from an absent
    one; a dataset they hold some permission on is found, and `require_dataset` then checks the one needed."""
    if uid is None:
        return None
    if is_uuid(ref):
        row = conn.execute(_DATASET_BY_ID, {"ref": ref.lower()}).first()
    else:
        row = conn.execute(_DATASET_BY_NAME, {"uid": uid, "ref": ref}).first()
    if row is None:
        return None
    ds = DatasetRow(row.id, row.name, row.owner_id, row.owner, row.created_at)
    if not permissions(conn, uid, ds):
        return None  # another user's dataset the caller holds nothing on: indistinguishable from absent
    return ds


def require_dataset(conn: Connection, uid: str | None, ref: str, permission: str) -> DatasetRow:
    ds = find_dataset(conn, uid, ref)
    if ds is None:
        raise NotFound(
            f"No dataset {ref!r} that you can see. Nothing was changed; call list_datasets for the ids and "
            "names you can use."
        )
    if permission not in permissions(conn, uid, ds):
        raise PermissionDenied(
            f"You do not have the '{permission}' permission on dataset {ds.name!r} (owner {ds.owner}). "
            f"Nothing was changed; ask its owner or the operator to run "
            f"`memsweep grant <user> {ds.id} {permission}`."
        )
    return ds


def check_dataset_name(name: str, max_chars: int) -> str:
    if not isinstance(name, str):
        raise InvalidInput("A dataset name must be a string.")
    cleaned = name.strip()
    if not cleaned or len(cleaned) > max_chars or any(ord(c) < 32 for c in cleaned):
        raise InvalidInput(
            f"Dataset names must be 1–{max_chars} printable characters; got {name[:40]!r}. Nothing was changed."
        )
    if is_uuid(cleaned):
        raise InvalidInput("A dataset name cannot look like a UUID (ids and names would be ambiguous).")
    return cleaned


def dataset_for_add(conn: Connection, uid: str, ref: str, max_chars: int) -> tuple[DatasetRow, bool]:
    """The dataset to add into (needs `write`), created under the caller's ownership when `ref` is a new name."""
    existing = find_dataset(conn, uid, ref)
    if existing is not None:
        if "write" not in permissions(conn, uid, existing):
            raise PermissionDenied(
                f"You do not have the 'write' permission on dataset {existing.name!r}. Nothing was stored."
            )
        return existing, False
    if is_uuid(ref):
        raise NotFound(f"No dataset with id {ref!r} that you can see. Nothing was stored; pass a name to create one.")
    name = check_dataset_name(ref, max_chars)
    ds_id = new_id()
    created = now()
    conn.execute(datasets.insert().values(id=ds_id, name=name, owner_id=uid, created_at=created))
    owner = conn.execute(select(users.c.name).where(users.c.id == uid)).scalar_one()
    return DatasetRow(ds_id, name, uid, owner, created), True


def deletable_dataset_ids(conn: Connection, uid: str | None) -> list[str]:
    if uid is None:
        return []
    return [r[0] for r in conn.execute(_DELETABLE, {"uid": uid})]


def grant(conn: Connection, user: str, dataset_id: str, permission: str, *, allow: bool) -> None:
    """Operator-only (CLI and Python API, never a tool): give or take one permission on one dataset."""
    if permission not in PERMISSIONS:
        raise InvalidInput(f"Unknown permission {permission!r}; use one of {', '.join(PERMISSIONS)}.")
    uid = user_id(conn, check_user_name(user), create=True)
    row = conn.execute(_dataset_select().where(datasets.c.id == dataset_id)).first()
    if row is None:
        raise NotFound(f"No dataset with id {dataset_id!r}.")
    conn.execute(acl.delete().where(acl.c.dataset_id == row.id, acl.c.user_id == uid, acl.c.permission == permission))
    if allow:
        conn.execute(acl.insert().values(dataset_id=row.id, user_id=uid, permission=permission))
