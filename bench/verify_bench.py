"""What `verify=true` costs (issue 15.2), run by hand: delete_data with and without the verification scan,
interleaved on one warm store built with add_many from bench/workload.py, erase=true on both sides.

    python bench/verify_bench.py --sizes 1000,10000 [--rounds 5]
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

from workload import item, scratch


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


async def one(size: int, rounds: int, root: Path) -> dict:
    from memsweep.api import Memory

    data_dir = root / "d"
    async with Memory.open(data_dir) as mem:
        for start in range(0, size, 1000):
            await mem.add_many([item(i) for i in range(start, min(start + 1000, size))])
        victims = [(i.id, "ds3") for i in (await mem.datasets.list_data("ds3"))[: 2 * rounds]]
        plain, verified, files, scanned = [], [], 0, 0
        for _round in range(rounds):
            for verify, out in ((False, plain), (True, verified)):
                data_id, ds = victims.pop()
                t = time.perf_counter()
                report = await mem.datasets.delete_data(dataset_id=ds, data_id=data_id, verify=verify)
                out.append(time.perf_counter() - t)
                if verify:
                    assert report.hits == 0, report
                    files, scanned = report.files_scanned or 0, report.bytes_scanned or 0
        result = {
            "items": size,
            "data_dir_mb": round(dir_mb(data_dir), 1),
            "files_scanned": files,
            "bytes_scanned": scanned,
            "delete_data_p50_ms": round(statistics.median(plain) * 1000, 1),
            "delete_data_verify_p50_ms": round(statistics.median(verified) * 1000, 1),
        }
        result["verify_ratio"] = round(result["delete_data_verify_p50_ms"] / result["delete_data_p50_ms"], 2)
        print(json.dumps(result), flush=True)
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    for size in (int(s) for s in a.sizes.split(",")):
        with scratch("verify-bench-") as root:
            asyncio.run(one(size, a.rounds, root))


if __name__ == "__main__":
    main()
