"""A fresh server's first real tool call (issue 12.5), run by hand.

    python bench/first_call.py [--items 10000] [--reps 7] [--data-dir DIR]

Times, from the spawn of the process to the answer, a fresh `memsweep serve` answering `list_datasets` on a
store of `--items` items (built once with bench/scenarios.py, or an existing `--data-dir`), against a bare
`MCPServer` (bench/bare_server.py) answering its one tool. Both over stdio through the real MCP client, cold
processes, warm OS page cache (the store is read once before the first rep), interleaved rep by rep.
Prints both medians and the ratio (target: memsweep ≤ 1.5x the bare server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from mcp import Client, StdioServerParameters
from workload import scratch  # bench/ is the script's folder, on sys.path

HERE = Path(__file__).resolve().parent


async def first_call(argv: list[str], env: dict[str, str], tool: str) -> tuple[float, float]:
    start = time.perf_counter()
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    async with Client(params, mode="legacy") as c:
        listed = time.perf_counter()
        r = await c.call_tool(tool, {})
        assert not r.is_error, r.content[0].text
        done = time.perf_counter()
    return (listed - start) * 1000, (done - start) * 1000


# The two sides' command lines: a fresh `memsweep serve`, and the bare server.
OURS = [sys.executable, "-m", "memsweep", "serve"]
BARE = [sys.executable, str(HERE / "bare_server.py")]


@contextlib.contextmanager
def store(data_dir: str | None, items: int, prefix: str) -> Iterator[Path]:
    """`data_dir` as given, or a new store of `items` items built by bench/scenarios.py for this run and
    removed after it."""
    if data_dir:
        yield Path(data_dir)
        return
    with scratch(prefix) as tmp:
        path = tmp / "store"
        print(f"building a {items}-item store in {path} ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "scenarios.py"), "build", str(path), str(items)],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        yield path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    with store(args.data_dir, args.items, "first-call-") as data_dir:
        env = dict(os.environ, MEMSWEEP_DATA_DIR=str(data_dir))
        asyncio.run(first_call(OURS, env, "list_datasets"))  # warms the OS page cache for both sides
        rows: dict[str, list[float]] = {"memsweep": [], "bare": [], "memsweep_init": [], "bare_init": []}
        for _ in range(args.reps):
            init, total = asyncio.run(first_call(OURS, env, "list_datasets"))
            rows["memsweep"].append(total)
            rows["memsweep_init"].append(init)
            init, total = asyncio.run(first_call(BARE, env, "ping"))
            rows["bare"].append(total)
            rows["bare_init"].append(init)
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"spawn → initialized: memsweep {med['memsweep_init']:.0f} ms, bare {med['bare_init']:.0f} ms")
        print(f"spawn → first tool result: memsweep list_datasets {med['memsweep']:.0f} ms "
              f"(min {min(rows['memsweep']):.0f}, max {max(rows['memsweep']):.0f}), "
              f"bare ping {med['bare']:.0f} ms: {med['memsweep'] / med['bare']:.2f}x (target ≤ 1.5x)")  # fmt: skip


if __name__ == "__main__":
    main()
