"""Forgetting a subject (issue 14), run by hand: `forget(entity=...)` of a subject mentioned by 1% of a
10,000-item store against `delete_data` of the same number of items one by one, interleaved in one run on
one warm store (Python API, erase=true on both sides, so both pay the same erasure guarantees).

    python bench/forget_bench.py [--items 10000] [--rounds 3] [--out bench/out/forget.json]

The store is built with add_many in batches of 1,000 from bench/workload.py; item i also mentions
"Subject<k>" when i % 100 == k (k = 1 … 2·rounds), so each subject is in 1% of the items. Round r forgets
Subject<2r-1> by entity and deletes Subject<2r>'s items one by one; the store shrinks by 1% per side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import item, save, scratch


async def run(args: argparse.Namespace, root: Path) -> dict:
    from memsweep.api import Memory
    from memsweep.storage.stores.schema import data, data_entities, entities
    from sqlalchemy import select

    data_dir = root / "d"
    subjects = 2 * args.rounds
    async with Memory.open(data_dir) as mem:
        started = time.perf_counter()
        for start in range(0, args.items, 1000):
            batch = []
            for i in range(start, min(start + 1000, args.items)):
                it = item(i)
                k = i % 100
                if 1 <= k <= subjects:
                    it["entities"] = [*it["entities"], {"name": f"Subject{k}"}]
                batch.append(it)
            await mem.add_many(batch)
        print(f"built {args.items} items in {time.perf_counter() - started:.1f} s", flush=True)
        by_entity: list[float] = []
        one_by_one: list[float] = []
        for r in range(1, args.rounds + 1):
            t = time.perf_counter()
            report = await mem.forget(entity=f"Subject{2 * r - 1}")
            by_entity.append(time.perf_counter() - t)
            n = report.items
            # the same share of the store, deleted the way an agent without subject forget must: id by id
            async with mem.engine.meta.read() as conn:
                rows = await conn.execute(
                    select(data.c.dataset_id, data.c.id)
                    .join(data_entities, data_entities.c.data_id == data.c.id)
                    .join(entities, entities.c.id == data_entities.c.entity_id)
                    .where(entities.c.norm == f"subject{2 * r}", data.c.status == "active")
                )
                victims = [(row[0], row[1]) for row in rows]
            t = time.perf_counter()
            for ds, data_id in victims:
                await mem.datasets.delete_data(dataset_id=ds, data_id=data_id)
            one_by_one.append(time.perf_counter() - t)
            print(f"round {r}: forget(entity) of {n} items {by_entity[-1] * 1000:.0f} ms; "
                  f"delete_data x{len(victims)} {one_by_one[-1] * 1000:.0f} ms", flush=True)  # fmt: skip
    result = {
        "items": args.items,
        "subject_items": n,
        "forget_entity_p50_ms": round(statistics.median(by_entity) * 1000, 1),
        "delete_data_one_by_one_p50_ms": round(statistics.median(one_by_one) * 1000, 1),
    }
    result["ratio"] = round(result["forget_entity_p50_ms"] / result["delete_data_one_by_one_p50_ms"], 3)
    print(json.dumps(result))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    with scratch("forget-bench-") as root:
        save(args.out, asyncio.run(run(args, root)))


if __name__ == "__main__":
    main()
