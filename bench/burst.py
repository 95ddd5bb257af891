"""A client that never pauses, run by hand.

    python bench/burst.py [--items 1000] [--adds 300] [--rounds 3] [--data-dir DIR] [--against PATH]

Single `add`s back to back through the Python API (no gap, so the idle fold 0.2 s after the last write
never comes), a `search` after every third, in a fresh process on a copy of a store of `--items` items
(batch-built once with bench/scenarios.py, or an existing `--data-dir`; the copy's leftovers are folded
during a 1 s pause before the timed part). Prints per run the add and search p50 / p95 / max, and the
LanceDB fragment count after each add (peak and mean).

`--against PATH` runs the same workload with another checkout's code (a folder that holds a `memsweep`
link to it, put first on PYTHONPATH), alternating with this one run by run: e.g.
`git worktree add /tmp/old REV && mkdir /tmp/oldpath && ln -s /tmp/old /tmp/oldpath/memsweep`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from first_call import store  # bench/ is the script's folder, on sys.path


async def burst(data_dir: Path, adds: int) -> dict[str, object]:
    import lance
    from memsweep import Memory
    from memsweep.storage import engine

    add_ms: list[float] = []
    search_ms: list[float] = []
    fragments: list[int] = []
    async with Memory.open(data_dir) as mem:
        await mem.add("burst", text="A warm-up memory about Lima.", entities=[{"name": "Lima"}])
        await asyncio.sleep(1.0)  # the pause: what the copy and the warm-up left is folded
        uri = str(mem.engine.vectors.uri)
        for i in range(adds):
            start = time.perf_counter()
            await mem.add(
                f"burst{i % 4}",
                text=f"Burst memory {i} at {time.time()} about Lima and person{i % 50}.",
                entities=[{"name": "Lima"}, {"name": f"person{i % 50}"}],
            )
            add_ms.append((time.perf_counter() - start) * 1000)
            fragments.append(len(lance.dataset(uri).get_fragments()))
            if i % 3 == 2:
                start = time.perf_counter()
                await mem.search(f"person{i % 50} in Lima", limit=10)
                search_ms.append((time.perf_counter() - start) * 1000)

    def spread(values: list[float]) -> list[float]:
        ordered = sorted(values)
        return [
            round(statistics.median(values), 1),
            round(ordered[int(0.95 * (len(values) - 1))], 1),
            round(ordered[-1], 1),
        ]

    return {
        "merge_every": engine.COMPACT_MAX_COMMITS,
        "add_p50_p95_max": spread(add_ms),
        "search_p50_p95_max": spread(search_ms),
        "fragments_peak": max(fragments),
        "fragments_mean": round(statistics.mean(fragments), 1),
    }


def one_run(src: Path, adds: int, pythonpath: str | None) -> dict[str, object]:
    """One fresh process on a fresh copy of the store."""
    with tempfile.TemporaryDirectory(prefix="burst-") as tmp:
        copy = Path(tmp) / "store"
        shutil.copytree(src, copy)
        env = dict(os.environ)
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(copy), "--adds", str(adds)],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--adds", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-dir")
    ap.add_argument("--against", help="a folder holding a `memsweep` link to another checkout")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run the workload in this process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(burst(Path(args.one), args.adds))))
        return
    with store(args.data_dir, args.items, "burst-") as src:
        sides = [("this checkout", None)] + ([(f"against {args.against}", args.against)] if args.against else [])
        for r in range(args.rounds):
            for label, path in sides if r % 2 == 0 else sides[::-1]:
                print(f"round {r + 1}, {label}: {json.dumps(one_run(src, args.adds, path))}", flush=True)


if __name__ == "__main__":
    main()
