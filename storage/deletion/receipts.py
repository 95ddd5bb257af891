"""Receipts (issue 15.2): what an executed delete certifies, and the verification scan behind `verify=true`.

The receipt row is written with the purge (same transaction as the audit entry), marked erased by the erase
that clears `erase_pending`, and, when the caller asked for it, completed by a scan of every file of the data
directory for the deleted chunks' text (UTF-8) and the exact bytes of their vectors. The needles live only in
this call's memory; the receipt keeps counts and times, never content.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from memsweep.errors import NotFound
from memsweep.results import Receipt
from memsweep.storage import access
from memsweep.storage.deletion.scopes import batches
from memsweep.storage.deletion.targets import Plan
from memsweep.storage.engine import Engine
from memsweep.storage.ids import parse_uuid
from memsweep.storage.stores.schema import chunks, data, receipts
from sqlalchemy import Connection, select, update

# Texts shorter than this are common words, not evidence of a memory (and would match innocently).
MIN_TEXT_NEEDLE = 8
READ_BLOCK = 1 << 22


@dataclass(frozen=True)
class Scan:
    files: int
    bytes: int
    hits: int


def removed_counts(plan: Plan) -> dict[str, int]:
    """Per store, what the plan removes (what a receipt certifies)."""
    c = plan.counts()
    return {
        "metadata_items": c.items,
        "metadata_chunks": c.chunks,
        "vector_rows": c.vectors,
        "graph_nodes": c.nodes_deleted,
        "graph_edges": c.edges_deleted,
        "files": c.files_deleted,
        "cache_entries": len(plan.cache_keys),
    }


def insert_receipt(conn: Connection, journal_id: str, user: str, plan: Plan, erase: bool) -> None:
    """Called inside the purge transaction: the receipt exists exactly when the delete committed."""
    conn.execute(
        _INSERT,
        {
            "id": journal_id, "at": access.now(), "user_name": user, "op": plan.op,
            "counts": json.dumps(removed_counts(plan)), "erase": erase,
        },
    )  # fmt: skip


def mark_erased(conn: Connection) -> None:
    """Called where `erase_pending` is cleared: every receipt still waiting is now erased."""
    conn.execute(_MARK_ERASED, {"erased_at": access.now()})


_INSERT = receipts.insert()
_MARK_ERASED = update(receipts).where(receipts.c.erased_at.is_(None))  # SET from the values given


async def collect_needles(engine: Engine, plan: Plan) -> list[bytes]:
    """What the scan looks for: each deleted chunk's text that no live chunk outside the plan also holds
    (identical kept text is not a leak), and the float32 bytes of its vector."""
    ids = list(plan.chunk_ids)

    def read(conn: Connection) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for part in batches(ids):
            out += [
                (r.text, r.text_hash)
                for r in conn.execute(select(chunks.c.text, chunks.c.text_hash).where(chunks.c.id.in_(part)))
            ]
        hashes = sorted({h for _t, h in out})
        live: set[str] = set()
        for part in batches(hashes):
            live |= {
                r[0]
                for r in conn.execute(
                    select(chunks.c.text_hash)
                    .join(data, data.c.id == chunks.c.data_id)
                    .where(
                        chunks.c.text_hash.in_(part),
                        chunks.c.id.not_in(ids),
                        data.c.status == "active",
                    )
                )
            }
        return [(t, h) for t, h in out if h not in live]

    texts = await engine.meta.call(read)
    needles = [t.encode("utf-8") for t, _h in texts if len(t.encode("utf-8")) >= MIN_TEXT_NEEDLE]
    if texts:
        vectors = await engine.run(engine.embedder.embed, [t for t, _h in texts])
        needles += [v.astype("float32").tobytes() for v in vectors]
    return needles


def scan(root: Path, needles: list[bytes]) -> Scan:
    """Read every file under `root` once (in blocks, with an overlap so a needle across a block boundary is
    found) and count the files holding any needle."""
    files = size = hits = 0
    if not needles:
        pattern = None
    else:
        pattern = re.compile(b"|".join(re.escape(n) for n in sorted(set(needles), key=len, reverse=True)))
    overlap = max((len(n) for n in needles), default=1) - 1
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        files += 1
        found = False
        try:
            with path.open("rb") as fh:
                tail = b""
                while block := fh.read(READ_BLOCK):
                    size += len(block)
                    window = tail + block
                    if pattern is not None and not found and pattern.search(window):
                        found = True
                    tail = window[-overlap:] if overlap else b""
        except OSError:
            continue  # removed while scanning (a rewrite finished): nothing of it is left to find
        hits += found
    return Scan(files, size, hits)


def record_scan(conn: Connection, receipt_id: str, result: Scan) -> None:
    conn.execute(
        update(receipts)
        .where(receipts.c.id == receipt_id)
        .values(verified=True, files_scanned=result.files, bytes_scanned=result.bytes, hits=result.hits)
    )


def get_receipt(conn: Connection, receipt_id: str) -> Receipt:
    rid = parse_uuid(receipt_id, "receipt id")
    row = conn.execute(select(receipts).where(receipts.c.id == rid)).first()
    if row is None:
        raise NotFound(f"No receipt {rid}. Receipts are the receipt_id of an executed delete's report.")
    return Receipt(
        receipt_id=row.id, at=row.at, user=row.user_name, op=row.op, removed=json.loads(row.counts),
        erase=row.erase, erased_at=row.erased_at, verified=row.verified, files_scanned=row.files_scanned,
        bytes_scanned=row.bytes_scanned, hits=row.hits,
    )  # fmt: skip
