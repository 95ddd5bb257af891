"""Random-timing crash harness, run by hand (the CI subset kills at named steps: tests/test_crash.py).

    python bench/crash_random.py --rounds 100 [--backend ladybug]
Each round: a child process runs random adds, deletes, forgets and prunes in a loop; the parent kills it
with SIGKILL after a random delay, reopens the store (which resumes the journal) and runs doctor. Any
inconsistency is a failure; the store is kept for inspection.
"""

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import asyncio, random, sys
from pathlib import Path
from memsweep.api import Memory
from memsweep.config import Settings

async def main(data_dir, seed):
    rng = random.Random(seed)
    async with Memory(Settings(data_dir=Path(data_dir), user="u")) as mem:
        print("ready", flush=True)
        i = 0
        while True:
            i += 1
            op = rng.random()
            datasets = [d.name for d in await mem.datasets.list_datasets()]
            if op < 0.45 or not datasets:
                names = rng.sample(["Alice", "Bob", "Paris", "Oslo", "Acme", "Rome"], 2)
                await mem.add_many([{"dataset": f"d{rng.randint(0, 3)}", "text": f"{names[0]} and {names[1]} {rng.randint(0, 50)}.",
                                     "entities": [{"name": n} for n in names]} for _ in range(rng.randint(1, 5))])
            elif op < 0.75:
                ds = rng.choice(datasets)
                items = await mem.datasets.list_data(ds)
                if items:
                    await mem.datasets.delete_data(dataset_id=ds, data_id=rng.choice(items).id, erase=rng.random() < 0.7)
            elif op < 0.85:
                await mem.datasets.empty_dataset(dataset_id=rng.choice(datasets))
            elif op < 0.92:
                await mem.forget(dataset=rng.choice(datasets), memory_only=True)
            elif op < 0.96:
                await mem.prune.prune(**{rng.choice(["graph", "vector", "cache", "files"]): True})
            else:
                await mem.rebuild()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def check(data_dir: Path, backend: str) -> tuple[bool, str]:
    from memsweep.api import Memory
    from memsweep.config import Settings

    async with Memory(Settings(data_dir=data_dir, user="u", graph_backend=backend)) as mem:
        report = await mem.doctor()
        if report.consistent:
            return True, ""
        kinds = {f.kind for f in report.findings}
        # prune(files) and prune(graph/vector) leave states that are consistent by design; anything else fails
        return False, ", ".join(f"{f.kind}={f.count}" for f in report.findings if f.kind in kinds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--backend", default="kuzu")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="crash-random-")) / "d"
    env = dict(os.environ, MEMSWEEP_GRAPH_BACKEND=a.backend)
    failures = 0
    for r in range(a.rounds):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir), str(rng.randint(0, 10**9))],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        assert child.stdout is not None
        child.stdout.readline()  # "ready": the store is open (and any previous journal resumed)
        time.sleep(rng.uniform(0.05, 2.5))
        if child.poll() is not None:
            print(f"round {r}: the child exited on its own ({child.returncode})")
            failures += 1
            continue
        child.send_signal(signal.SIGKILL)
        child.wait()
        ok, detail = asyncio.run(check(data_dir, a.backend))
        failures += not ok
        print(f"round {r}: {'ok' if ok else 'INCONSISTENT ' + detail}", flush=True)
    if failures:
        print(f"{a.rounds} random kill points on {a.backend}: {failures} failure(s); store kept at {data_dir}")
    else:
        shutil.rmtree(data_dir.parent)
        print(f"{a.rounds} random kill points on {a.backend}: no failure")


if __name__ == "__main__":
    main()
