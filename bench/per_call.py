"""A client that starts a server per call, run by hand.

    python bench/per_call.py [--items 1000] [--adds 40] [--deletes 10] [--data-dir DIR]

Some MCP clients start `memsweep serve` for one call and stop it right after (stdin closed). Each call here
is a fresh process over stdio through the real MCP client: `--adds` single `add`s to a store of `--items`
items (batch-built once with bench/scenarios.py, or an existing `--data-dir`), then `--deletes` erasing
`delete_data`s, each call followed by a bare `MCPServer`'s one tool (bench/bare_server.py), the start-up
floor, interleaved call by call. Prints per phase the medians of the wall time (spawn to exit) and of the
call itself (request to answer), for both sides, and the LanceDB fragments and versions the table has after
each phase (a process that stops before its idle fold used to leave its add's fragment for good). `--deletes
0` runs the adds alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

from first_call import BARE, OURS, store  # bench/ is the script's folder, on sys.path
from mcp import Client, StdioServerParameters


async def one_call(argv: list[str], env: dict[str, str], tool: str, args: dict[str, Any]) -> tuple[float, float, Any]:
    """(wall ms from spawn to exit, call ms, structured result) of one process answering one call."""
    start = time.perf_counter()
    async with Client(StdioServerParameters(command=argv[0], args=argv[1:], env=env), mode="legacy") as c:
        asked = time.perf_counter()
        r = await c.call_tool(tool, args)
        answered = time.perf_counter()
        assert not r.is_error, r.content[0].text
    return (time.perf_counter() - start) * 1000, (answered - asked) * 1000, r.structured_content


def fragments(data_dir: Path) -> str:
    """The vector table's fragments and versions (what a process that stops before its pause leaves)."""
    import lance

    uri = data_dir / "vectors" / "chunks.lance"
    if not uri.exists():
        return "no table"
    ds = lance.dataset(str(uri))
    return f"{len(ds.get_fragments())} fragments, {len(ds.versions())} versions"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--adds", type=int, default=40)
    ap.add_argument("--deletes", type=int, default=10)
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    with store(args.data_dir, args.items, "per-call-") as data_dir:
        env = dict(os.environ, MEMSWEEP_DATA_DIR=str(data_dir))
        print(f"before: {fragments(data_dir)}")

        def phase(name: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
            rows: dict[str, list[float]] = {"wall": [], "call": [], "bare_wall": [], "bare_call": []}
            for tool, tool_args in calls:
                wall, call, _ = asyncio.run(one_call(OURS, env, tool, tool_args))
                rows["wall"].append(wall)
                rows["call"].append(call)
                wall, call, _ = asyncio.run(one_call(BARE, env, "ping", {}))
                rows["bare_wall"].append(wall)
                rows["bare_call"].append(call)
            med = {k: statistics.median(v) for k, v in rows.items()}
            print(f"{name} x{len(calls)}: memsweep wall {med['wall']:.0f} ms, call {med['call']:.1f} ms | "
                  f"bare wall {med['bare_wall']:.0f} ms, call {med['bare_call']:.1f} ms | "
                  f"after: {fragments(data_dir)}")  # fmt: skip

        phase(
            "add",
            [("add", {"dataset": "per-call", "text": f"Per-call memory {i} about Oslo."}) for i in range(args.adds)],
        )
        if not args.deletes:
            return
        _, _, listed = asyncio.run(one_call(OURS, env, "list_data", {"dataset_id": "per-call", "limit": args.deletes}))
        victims = [item["id"] for item in listed["items"]]
        phase("delete_data erase=true", [("delete_data", {"dataset_id": "per-call", "data_id": v}) for v in victims])


if __name__ == "__main__":
    main()
