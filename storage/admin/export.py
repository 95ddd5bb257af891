"""Export before forgetting (issue 15.3): the items a delete with the same target would remove, with their
entities, relations and raw content, as JSON lines, streamed (one page of items in memory at a time).

The set is the delete path's own plan (a dry run of the same target), so an export followed by the forget
holds exactly what the forget removes. Reading content needs the `read` permission on every dataset
involved, on top of what the target itself checks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from memsweep.errors import PermissionDenied
from memsweep.storage import access
from memsweep.storage.deletion.deleter import make_plan
from memsweep.storage.deletion.targets import Target
from memsweep.storage.engine import Engine
from memsweep.storage.stores.schema import data, data_entities, datasets, entities, relations
from sqlalchemy import Connection, select

PAGE = 200


async def export_lines(engine: Engine, user: str, target: Target) -> AsyncIterator[str]:
    """JSON lines: one `{"type": "export", ...}` header, then one `{"type": "item", ...}` per item."""
    plan = await make_plan(engine, user, target)
    ids = list(plan.data_ids)

    def check(conn: Connection) -> None:
        uid = access.user_id(conn, user, create=False)
        for part in (ids[i : i + PAGE] for i in range(0, len(ids), PAGE)):
            ds_ids = {r[0] for r in conn.execute(select(data.c.dataset_id).where(data.c.id.in_(part)).distinct())}
            for ds_id in ds_ids:
                ds = access.find_dataset(conn, uid, ds_id)
                if ds is None or "read" not in access.permissions(conn, uid, ds):
                    raise PermissionDenied(
                        "Exporting needs the 'read' permission on every dataset involved; you may delete from "
                        f"dataset {ds.name if ds else ds_id!r} but not read it. Nothing was written."
                    )

    await engine.meta.call(check)
    yield json.dumps({"type": "export", "op": target.op, "kind": target.kind, "items": len(ids)})
    for start in range(0, len(ids), PAGE):
        part = ids[start : start + PAGE]
        rows = await engine.meta.call(_page, part)
        for row in rows:
            if row.pop("owned"):
                key = row.pop("file_key")
                raw = (
                    await engine.run(engine.files.get, key)
                    if key and await engine.run(engine.files.exists, key)
                    else b""
                )
                row["content"] = raw.decode("utf-8", errors="replace")
            else:
                row.pop("file_key")
                row["content"] = None  # kept by reference: the file stays where it is (source_path)
            yield json.dumps(row, ensure_ascii=False, default=str)


def _page(conn: Connection, ids: list[str]) -> list[dict[str, Any]]:
    items = conn.execute(
        select(
            data.c.id, data.c.dataset_id, datasets.c.name.label("dataset"), data.c.name, data.c.mime_type,
            data.c.size_bytes, data.c.content_hash, data.c.created_at, data.c.owned, data.c.file_key,
            data.c.source_path,
        )
        .join(datasets, datasets.c.id == data.c.dataset_id)
        .where(data.c.id.in_(ids))
        .order_by(data.c.created_at, data.c.id)
    ).all()  # fmt: skip
    ents: dict[str, list[dict[str, Any]]] = {}
    names: dict[str, str] = {}
    for r in conn.execute(
        select(data_entities.c.data_id, data_entities.c.entity_id, data_entities.c.name, data_entities.c.type,
               data_entities.c.description, entities.c.name.label("entity_name"))
        .join(entities, entities.c.id == data_entities.c.entity_id)
        .where(data_entities.c.data_id.in_(ids))
    ):  # fmt: skip
        names[r.entity_id] = r.entity_name
        ents.setdefault(r.data_id, []).append(
            {"name": r.name or r.entity_name, "type": r.type, "description": r.description}
        )
    rels: dict[str, list[dict[str, str]]] = {}
    for r in conn.execute(select(relations).where(relations.c.data_id.in_(ids))):
        rels.setdefault(r.data_id, []).append(
            {"source": names.get(r.source_id, r.source_id), "relation": r.relation,
             "target": names.get(r.target_id, r.target_id)}
        )  # fmt: skip
    return [
        {
            "type": "item",
            "id": r.id,
            "dataset_id": r.dataset_id,
            "dataset": r.dataset,
            "name": r.name,
            "mime_type": r.mime_type,
            "size_bytes": r.size_bytes,
            "content_hash": r.content_hash,
            "created_at": r.created_at.isoformat(),
            "owned": bool(r.owned),
            "file_key": r.file_key,
            "source_path": r.source_path,
            "entities": ents.get(r.id, []),
            "relations": rels.get(r.id, []),
        }
        for r in items
    ]
