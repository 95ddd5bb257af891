"""Benchmarks, run by hand (not in CI). See bench/README.md.

    python bench/run.py --sizes 1000,10000 [--cognee-python ~/cognee-venv/bin/python --cognee-sizes 200,1000]
Every scenario runs in its own process on a fresh copy of a built store (so peak RSS is its own), with
medians over repetitions; prints a table and ratios, writes bench/out/results.json and, when matplotlib
is installed, bench/out/delete_vs_size.png.
"""

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

from workload import scratch  # bench/ is the script's folder, on sys.path

HERE = Path(__file__).resolve().parent
SCENARIOS = ["add_single", "add_batch", "list_datasets", "list_data_first", "list_data_middle", "delete_data",
             "delete_data_dry", "delete_data_keep_bytes", "empty_dataset", "delete_all", "forget_everything",
             "prune_files", "prune_graph", "prune_vector", "prune_metadata", "prune_cache"]  # fmt: skip


def sh(argv: list[str], env: dict | None = None) -> dict:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=7200)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memsweep_suite(n: int, scenarios: list[str]) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"msbench-{n}-"))
    base = work / "base"
    results = {"build": sh([sys.executable, str(HERE / "scenarios.py"), "build", str(base), str(n)])}
    for name in scenarios:
        copy = work / name
        shutil.copytree(base, copy)
        results[name] = sh([sys.executable, str(HERE / "scenarios.py"), name, str(copy), str(n)])
        shutil.rmtree(copy)
        print(
            f"  memsweep n={n:>7} {name:<24} p50 {results[name]['p50_ms']:>10.2f} ms  rss {results[name]['peak_rss_mb']} MB",
            file=sys.stderr,
        )
    shutil.rmtree(work)
    return results


async def _first_list(argv: list[str], env: dict) -> float:
    from mcp import Client, StdioServerParameters

    t = time.perf_counter()
    async with Client(StdioServerParameters(command=argv[0], args=argv[1:], env=env), mode="legacy") as c:
        await c.list_tools()
        return time.perf_counter() - t


def startup(reps: int = 5) -> dict:
    with scratch("msstart-") as tmp:
        env = dict(os.environ, MEMSWEEP_DATA_DIR=str(tmp))
        ms = [asyncio.run(_first_list([sys.executable, "-m", "memsweep", "serve"], env)) for _ in range(reps)]
        bare = [asyncio.run(_first_list([sys.executable, str(HERE / "bare_server.py")], env)) for _ in range(reps)]
    return {"memsweep_ms": round(statistics.median(ms) * 1000, 1), "bare_ms": round(statistics.median(bare) * 1000, 1)}


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a and b else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--cognee-python", help="python of a venv with cognee==1.6.5 installed")
    ap.add_argument("--cognee-sizes", default="200,1000")
    ap.add_argument("--out", help="file name under bench/out (default results.json)")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    cognee_sizes = [int(s) for s in a.cognee_sizes.split(",")] if a.cognee_python else []
    scenarios = a.scenarios.split(",")
    out: dict = {"memsweep": {}, "floor": {}, "cognee": {}, "machine": os.uname().machine, "cpus": os.cpu_count()}
    out_json = HERE / "out" / (a.out or "results.json")
    for n in sorted(set(sizes) | set(cognee_sizes)):
        print(f"n={n}", file=sys.stderr)
        out["memsweep"][n] = memsweep_suite(n, scenarios)
        out["floor"][n] = sh([sys.executable, str(HERE / "floor.py"), str(n)])
        if n in cognee_sizes:  # interleaved: Cognee runs right after memsweep on the same size
            out["cognee"][n] = sh([a.cognee_python, str(HERE / "cognee_bench.py"), str(n)])
    out["startup"] = startup()
    report(out)
    dest = HERE / "out"
    dest.mkdir(exist_ok=True)
    out_json.write_text(json.dumps(out, indent=2))
    plot(out, out_json.with_suffix(".png"))


def report(out: dict) -> None:
    print(f"{'n':>7} {'scenario':<24} {'p50 ms':>10} {'p95 ms':>9} {'rss MB':>7}")
    for n, res in out["memsweep"].items():
        for name, r in res.items():
            print(
                f"{n:>7} {name:<24} {r.get('p50_ms', 0):>10.2f} {r.get('p95_ms', 0):>9.2f} {r.get('peak_rss_mb', 0):>7}"
            )
    print("\nratios")
    for n, res in out["memsweep"].items():
        floor = out["floor"].get(n, {})
        dd = res.get("delete_data", {}).get("p50_ms")
        keep = res.get("delete_data_keep_bytes", {}).get("p50_ms")
        print(f"  n={n}: delete_data/floor {ratio(dd, floor.get('delete_data_p50_ms'))} (erase=false: "
              f"{ratio(keep, floor.get('delete_data_p50_ms'))}; erase=true / erasing floor: "
              f"{ratio(dd, floor.get('delete_data_erase_p50_ms'))}); dry/real {ratio(res.get('delete_data_dry', {}).get('p50_ms'), dd)}; "
              f"empty_dataset/floor {ratio(res.get('empty_dataset', {}).get('p50_ms'), floor.get('empty_dataset_ms'))}")  # fmt: skip
        cg = out["cognee"].get(n)
        if cg:
            print(f"  n={n}: memsweep/Cognee delete_data {ratio(dd, cg['delete_data']['p50_ms'])}, "
                  f"empty_dataset {ratio(res.get('empty_dataset', {}).get('p50_ms'), cg['empty_dataset']['p50_ms'])}, "
                  f"delete_all {ratio(res.get('delete_all', {}).get('p50_ms'), cg.get('delete_all', {}).get('p50_ms'))}, "
                  f"list_datasets {ratio(res.get('list_datasets', {}).get('p50_ms'), cg['list_datasets']['p50_ms'])}, "
                  f"add (batched, per item) {ratio(res.get('add_batch', {}).get('p50_ms'), cg['add_batched_per_item_ms'])}")  # fmt: skip
    ns = sorted(out["memsweep"])
    if len(ns) > 1:
        lo, hi = out["memsweep"][ns[0]], out["memsweep"][ns[-1]]
        print(
            f"  growth delete_data p50 n={ns[-1]} / n={ns[0]}: {ratio(hi.get('delete_data', {}).get('p50_ms'), lo.get('delete_data', {}).get('p50_ms'))}"
        )
    s = out["startup"]
    print(
        f"  start to first tools/list: memsweep {s['memsweep_ms']} ms, bare MCPServer {s['bare_ms']} ms, ratio {ratio(s['memsweep_ms'], s['bare_ms'])}"
    )


def plot(out: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot; pip install matplotlib)", file=sys.stderr)
        return
    ns = sorted(out["memsweep"], key=int)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (
        ("delete_data", "memsweep erase=true"),
        ("delete_data_keep_bytes", "memsweep erase=false"),
        ("delete_data_dry", "memsweep dry run"),
    ):
        ax.plot(ns, [out["memsweep"][n].get(key, {}).get("p50_ms") for n in ns], marker="o", label=label)
    ax.plot(ns, [out["floor"][n]["delete_data_p50_ms"] for n in ns], marker="s", label="floor (raw engines)")
    ax.plot(ns, [out["floor"][n].get("delete_data_erase_p50_ms") for n in ns], marker="s", label="floor + erasure")
    cns = sorted(out["cognee"], key=int)
    if cns:
        ax.plot(cns, [out["cognee"][n]["delete_data"]["p50_ms"] for n in cns], marker="^", label="Cognee 1.6.5")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("items in store")
    ax.set_ylabel("delete_data p50 (ms)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
