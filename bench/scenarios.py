"""memsweep scenarios, one per process (so each reports its own peak RSS). Run by bench/run.py.

    python bench/scenarios.py build DATA_DIR N          # build a store: N items in 10 datasets
    python bench/scenarios.py SCENARIO DATA_DIR N       # time one scenario on a (copied) store
(`delete_data_mcp` and `delete_data_mcp_keep_bytes` run `delete_data` through the MCP client and server.)
Prints one JSON object.
"""

import asyncio
import json
import random
import resource
import sys
import time
from pathlib import Path

from memsweep.api import Memory
from memsweep.config import Settings

sys.path.insert(0, str(Path(__file__).parent))
from workload import DATASETS, item, ms


async def over_mcp(scenario: str, data_dir: Path, n: int) -> dict:
    """`delete_data` through the real MCP client and server (the SDK's in-memory transport: the protocol,
    argument validation and result shaping without a pipe), the same victims as the Python API scenario."""
    from mcp import Client
    from memsweep.server.app import create_server

    out: dict = {"scenario": scenario, "n": n}
    erase = scenario == "delete_data_mcp"
    async with Client(create_server(Settings(data_dir=data_dir, user="bench")), mode="legacy") as c:
        victims = []
        for ds in range(DATASETS):
            page = await c.call_tool("list_data", {"dataset_id": f"ds{ds}", "limit": 20})
            victims += [(f"ds{ds}", i["id"]) for i in page.structured_content["items"]]
        victims = random.Random(1).sample(victims, min(100, len(victims)))
        times = []
        for d, i in victims:
            t = time.perf_counter()
            r = await c.call_tool("delete_data", {"dataset_id": d, "data_id": i, "erase": erase})
            times.append(time.perf_counter() - t)
            assert not r.is_error, r.content
        out |= ms(times)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


async def run(scenario: str, data_dir: Path, n: int) -> dict:
    if scenario.startswith("delete_data_mcp"):
        return await over_mcp(scenario, data_dir, n)
    out: dict = {"scenario": scenario, "n": n}
    async with Memory(Settings(data_dir=data_dir, user="bench")) as mem:
        t0 = time.perf_counter()
        if scenario == "build":
            for start in range(0, n, 1000):
                await mem.add_many([item(i) for i in range(start, min(n, start + 1000))])
            out["build_s"] = round(time.perf_counter() - t0, 2)
        elif scenario == "add_single":
            out |= ms([await _timed(mem.add(**item(n + i))) for i in range(50)])
        elif scenario == "add_batch":
            times = [await _timed(mem.add_many([item(n + 100 * b + i) for i in range(100)])) for b in range(5)]
            out |= ms([t / 100 for t in times])
            out["per_batch_of_100"] = ms(times)
        elif scenario == "list_datasets":
            out |= ms([await _timed(mem.datasets.list_datasets()) for _ in range(30)])
        elif scenario.startswith("list_data"):
            cursor = None
            if scenario == "list_data_middle":
                for _ in range(n // DATASETS // 50 // 2):
                    cursor = (await mem.datasets.list_data_page("ds1", cursor, 50)).next_cursor
            out |= ms([await _timed(mem.datasets.list_data_page("ds1", cursor, 50)) for _ in range(30)])
        elif scenario in ("delete_data", "delete_data_dry", "delete_data_keep_bytes"):
            rng = random.Random(1)
            victims = []
            for ds in range(DATASETS):
                victims += [(f"ds{ds}", i.id) for i in (await mem.datasets.list_data_page(f"ds{ds}", None, 20)).items]
            victims = rng.sample(victims, min(100, len(victims)))
            dry = scenario == "delete_data_dry"
            erase = scenario != "delete_data_keep_bytes"
            out |= ms(
                [
                    await _timed(mem.datasets.delete_data(dataset_id=d, data_id=i, dry_run=dry, erase=erase))
                    for d, i in victims
                ]
            )
        elif scenario == "empty_dataset":
            out["items"] = (await mem.datasets.empty_dataset(dataset_id="ds3")).items
        elif scenario == "delete_all":
            out["items"] = (await mem.datasets.delete_all()).items
        elif scenario == "forget_everything":
            out["items"] = (await mem.forget(everything=True)).items
        elif scenario.startswith("prune_"):
            layer = scenario.removeprefix("prune_")
            await mem.prune.prune(**{layer: True})
        else:
            raise SystemExit(f"unknown scenario {scenario}")
        if "p50_ms" not in out:
            out["p50_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


async def _timed(coro) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    await coro
    return time.perf_counter() - t


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))))
