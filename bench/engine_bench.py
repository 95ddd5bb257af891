"""Engine micro-benchmark (run by hand): time to add N small items, and delete_data p50/p95.

    python bench/engine_bench.py --items 1000 --deletes 100
Prints medians and percentiles; writes bench/out/engine.json.
"""

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from memsweep.api import Memory
from memsweep.config import Settings

VOCAB = [f"Entity{i}" for i in range(200)]


def text(i: int, rng: random.Random) -> tuple[str, list[dict[str, str]]]:
    names = rng.sample(VOCAB, 3)
    body = f"Memory {i}: {names[0]} met {names[1]} near {names[2]}. They talked about project {i % 37} for a while."
    return body, [{"name": n} for n in names]


async def main(items: int, deletes: int, datasets: int, erase: bool) -> dict[str, float]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        async with Memory(Settings(data_dir=Path(tmp))) as mem:
            added = []
            t0 = time.perf_counter()
            for i in range(items):
                body, ents = text(i, rng)
                added.append(await mem.add(f"ds{i % datasets}", text=body, entities=ents))
            add_s = time.perf_counter() - t0
            victims = rng.sample(added, deletes)
            dry, real = [], []
            for v in victims:
                t = time.perf_counter()
                await mem.datasets.delete_data(dataset_id=v.dataset_id, data_id=v.data_id, dry_run=True)
                dry.append(time.perf_counter() - t)
                t = time.perf_counter()
                await mem.datasets.delete_data(dataset_id=v.dataset_id, data_id=v.data_id, erase=erase)
                real.append(time.perf_counter() - t)
            doctor = await mem.doctor()
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))] * 1000  # noqa: E731
    out = {
        "items": items,
        "add_total_s": round(add_s, 2),
        "add_per_item_ms": round(add_s / items * 1000, 2),
        "delete_p50_ms": round(statistics.median(real) * 1000, 1),
        "delete_p95_ms": round(q(real, 0.95), 1),
        "dry_run_p50_ms": round(statistics.median(dry) * 1000, 1),
        "erase": erase,
        "doctor_consistent": doctor.consistent,
    }
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--deletes", type=int, default=100)
    ap.add_argument("--datasets", type=int, default=10)
    ap.add_argument("--no-erase", action="store_true")
    a = ap.parse_args()
    result = asyncio.run(main(a.items, a.deletes, a.datasets, not a.no_erase))
    for k, v in result.items():
        print(f"{k:>18}: {v}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "engine.json").write_text(json.dumps(result, indent=2))
