"""How long a writer waits when two processes share one data directory (run by hand).

    python bench/two_writers.py --ops 60
Runs the same add/delete loop in one process, then in two processes at once on one directory, and prints
per-operation latency (p50/p95/max): the difference is the time spent waiting for the other writer.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from workload import scratch  # bench/ is the script's folder, on sys.path

CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
from memsweep.api import Memory
from memsweep.config import Settings

async def main(data_dir, name, ops):
    lat = []
    async with Memory(Settings(data_dir=Path(data_dir), user=name)) as mem:
        for i in range(ops):
            t = time.perf_counter()
            r = await mem.add(name, text=f"{name} note {i} about Lisbon and Oslo.")
            lat.append(time.perf_counter() - t)
            if i % 3 == 2:
                t = time.perf_counter()
                await mem.datasets.delete_data(dataset_id=r.dataset_id, data_id=r.data_id)
                lat.append(time.perf_counter() - t)
    print(json.dumps(lat))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def run(n_procs: int, ops: int) -> list[float]:
    with scratch("twowriters-") as root:
        return _run(root / "d", n_procs, ops)


def _run(data_dir: Path, n_procs: int, ops: int) -> list[float]:
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir), f"p{k}", str(ops)], stdout=subprocess.PIPE, text=True)
             for k in range(n_procs)]  # fmt: skip
    out: list[float] = []
    for p in procs:
        stdout, _ = p.communicate(timeout=1800)
        out += json.loads(stdout.strip().splitlines()[-1])
    return out


def summary(xs: list[float]) -> str:
    xs = sorted(x * 1000 for x in xs)
    return (
        f"p50 {statistics.median(xs):.1f} ms, p95 {xs[int(0.95 * len(xs))]:.1f} ms, max {xs[-1]:.1f} ms (n={len(xs)})"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=60)
    a = ap.parse_args()
    print("one process :", summary(run(1, a.ops)))
    print("two at once :", summary(run(2, a.ops)))
