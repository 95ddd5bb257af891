"""A store of steady size with a growing history, run by hand.

    python bench/churn.py [--items 1000] [--cycles 3000] [--window 500] [--data-dir DIR] [--out FILE]

What weeks of use look like to the store: its size stays about the same while its history grows. In one
process, through the Python API, on a copy of a store of `--items` items (batch-built once with
bench/scenarios.py, or an existing `--data-dir`): each cycle adds one memory and deletes the oldest live
one (erase=true, the default, except every fourth: erase=false), with a search every third cycle and a
0.3 s pause every 20 cycles (the idle fold runs then, as in a real day). Per window of `--window` cycles
it prints the p50 / p95 of add, delete and search, the data directory's size (MiB, as agent_day.py), the
LanceDB fragments and versions, and the rows the history leaves (journal, audit, receipts). A cost that grows from window to
window at a steady size is a cost of the history.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from agent_day import dir_mb, lance_state  # bench/ is the script's folder, on sys.path
from first_call import store
from workload import item, ms, save


async def churn(data_dir: Path, cycles: int, window: int) -> list[dict[str, object]]:
    from memsweep import Memory

    rows: list[dict[str, object]] = []
    async with Memory.open(data_dir) as mem:
        live: list[tuple[str, str]] = []
        for ds in await mem.datasets.list_datasets():
            live += [(ds.id, d.id) for d in await mem.datasets.list_data(ds.id)]
        live.sort(key=lambda pair: pair[1])  # a fixed order: the "oldest" is the first
        await asyncio.sleep(1.0)
        times: dict[str, list[float]] = {"add": [], "delete": [], "search": []}
        for c in range(cycles):
            it = item(100_000 + c)
            start = time.perf_counter()
            added = await mem.add(it["dataset"], text=it["text"], entities=it["entities"])
            times["add"].append(time.perf_counter() - start)
            live.append((added.dataset_id, added.data_id))
            dataset_id, data_id = live.pop(0)
            start = time.perf_counter()
            await mem.datasets.delete_data(dataset_id=dataset_id, data_id=data_id, erase=c % 4 != 3)
            times["delete"].append(time.perf_counter() - start)
            if c % 3 == 2:
                start = time.perf_counter()
                await mem.search(it["entities"][0]["name"], limit=10)
                times["search"].append(time.perf_counter() - start)
            if c % 20 == 19:
                await asyncio.sleep(0.3)
            if (c + 1) % window == 0:
                fragments, versions = lance_state(data_dir)
                db = sqlite3.connect(data_dir / "metadata.db")
                history = {
                    t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("journal", "audit", "receipts")
                }
                db.close()
                rows.append({
                    "cycles": c + 1,
                    **{k: ms(v) for k, v in times.items()},
                    "dir_mb": round(dir_mb(data_dir), 1),
                    "graph_mb": round(dir_mb(data_dir / "graph"), 1),
                    "metadata_mb": round((data_dir / "metadata.db").stat().st_size / 2**20, 1),
                    "fragments": fragments,
                    "versions": versions,
                    **history,
                })  # fmt: skip
                print(rows[-1], flush=True)
                times = {k: [] for k in times}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=3000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--data-dir", help="an existing store to copy instead of building one")
    parser.add_argument("--out")
    args = parser.parse_args()
    src = store(args.data_dir, args.items, "churn-store-")
    with tempfile.TemporaryDirectory(prefix="churn-") as tmp:
        copy = Path(tmp) / "store"
        shutil.copytree(src, copy)
        rows = asyncio.run(churn(copy, args.cycles, args.window))
    print(f"{'cycles':>7} {'add p50/p95':>13} {'delete p50/p95':>15} {'search p50/p95':>15} {'dir MB':>7} "
          f"{'graph MB':>9} {'meta MB':>8} {'frags':>6} {'vers':>5} {'receipts':>9}")  # fmt: skip
    for r in rows:
        a, d, s = (f"{r[k]['p50_ms']:.1f}/{r[k]['p95_ms']:.1f}" for k in ("add", "delete", "search"))
        print(
            f"{r['cycles']:>7} {a:>13} {d:>15} {s:>15} {r['dir_mb']:>7} "
            f"{r['graph_mb']:>9} {r['metadata_mb']:>8} {r['fragments']:>6} {r['versions']:>5} {r['receipts']:>9}"
        )
    save(args.out, {"argv": sys.argv[1:], "windows": rows})


if __name__ == "__main__":
    main()
