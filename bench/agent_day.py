"""The agent's real day (issue 12), run by hand: one long-lived `memsweep serve` over stdio, driven by the
real MCP client the way a desktop agent drives it: single adds (short texts with entities, mixed datasets),
a search every 3 adds, a delete_data every 20, an empty_dataset every 2,000, and idle gaps.

    python bench/agent_day.py --adds 10000 [--gap-max 3.0] [--compress 0.01] [--real-delete-gaps]
                              [--idle-end 70] [--out bench/out/agent_day.json]
    python bench/agent_day.py --plot BEFORE.json AFTER.json bench/agent_day.png   # needs matplotlib

`--compress` multiplies every idle gap (0.01: a 3 s gap becomes 30 ms) for quick runs; the gaps are drawn
uniformly in [0, gap-max]. `--real-delete-gaps` leaves the gap before each delete uncompressed, so the
deletes after a pause (> 0.6 s: "delete-after-idle") can be compared with the ones that follow a call at
once. bench/loop_probe.py watches the event loops of the server and of its engine process (the worst stall
of either). Every `--every` adds it records the memory of the server and its engine process together (RSS,
its anonymous part and PSS, from /proc; and each process's RSS), the data directory's size, LanceDB fragments and versions, and per operation the p50 and
p95 of the last window, and prints a table row. Numbers are warm (one server for the whole run) and
single-item (no batches): the workload of a user's session, not of a bulk load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop_probe import merged
from workload import save, scratch

PROBE_SITE = Path(__file__).resolve().parent / "probe_site"
NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Oslo", "Lisbon", "Atlas", "Orion", "Acme", "Quartz", "Nova"]


def server_pid() -> int | None:
    """The `memsweep serve` child of this process (the SDK does not expose it)."""
    me = os.getpid()
    return next((p for p in children(me) if b"serve" in Path(f"/proc/{p}/cmdline").read_bytes()), None)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _proc_mb(pid: int, name: str, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:  # an engine process that just ended
        pass
    return 0.0


def memory_mb(pid: int) -> dict[str, float]:
    """The server and its engine process (when one runs), together: RSS, its anonymous part, and PSS (which
    counts the pages the two share, the interpreter and libraries, once); also each process's RSS."""
    engines = children(pid)
    tree = [pid, *engines]
    return {
        "rss_mb": round(sum(_proc_mb(p, "status", "VmRSS:") for p in tree), 1),
        "anon_mb": round(sum(_proc_mb(p, "smaps_rollup", "Anonymous:") for p in tree), 1),
        "pss_mb": round(sum(_proc_mb(p, "smaps_rollup", "Pss:") for p in tree), 1),
        "server_rss_mb": round(_proc_mb(pid, "status", "VmRSS:"), 1),
        "engine_rss_mb": round(sum(_proc_mb(p, "status", "VmRSS:") for p in engines), 1),
    }


def rss_by_mapping(pid: int) -> dict[str, float]:
    """Where one process's RSS sits (the profile behind the totals): each large library's code and data,
    the graph's buffer pool (Kuzu reserves it as one anonymous mapping of terabytes), the main heap, and
    the other anonymous memory (malloc's other arenas, Python's object arenas, thread stacks)."""
    out: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return out
    name = ""
    for line in text.splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            start, end = (int(x, 16) for x in head[0].split("-"))
            path = head[5] if len(head) > 5 else ""
            if not path:
                name = "graph buffer pool" if end - start >= 2**40 else "other anonymous"
            elif path.startswith("["):
                name = "heap" if path == "[heap]" else "other anonymous"
            else:
                base = Path(path).name
                name = next((k for k in ("lance", "arrow", "kuzu", "lbug", "python") if k in base),
                            "other files")  # fmt: skip
        elif head and head[0] == "Rss:":
            out[name] = out.get(name, 0.0) + int(head[1]) / 1024
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


class Cognee:
    """Cognee 1.6.5's side of the day (bench/cognee_day.py, in Cognee's venv, its databases open for the
    whole run): each call goes to it right after memsweep's, with the same arguments, and is timed here, a
    round trip through its pipe as memsweep's goes through the server's."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.items: dict[str, tuple[str, str]] = {}  # memsweep's data_id -> Cognee's (dataset_id, data_id)
        self.datasets: dict[str, str] = {}  # dataset name -> Cognee's dataset id

    @classmethod
    async def start(cls, python: str) -> Cognee:
        proc = await asyncio.create_subprocess_exec(
            python, str(PROBE_SITE.parent / "cognee_day.py"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            limit=2**24,
        )  # fmt: skip
        side = cls(proc)
        await side._answer()
        return side

    async def _answer(self) -> dict:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            if line.startswith(b"@@ "):
                return json.loads(line[3:])
        raise RuntimeError(f"bench/cognee_day.py ended (exit {await self.proc.wait()})")

    async def call(self, **call: object) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(call).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._answer()

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"op": "quit"}\n')
        await self.proc.stdin.drain()
        await self.proc.wait()


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def lance_state(data_dir: Path) -> tuple[int, int]:
    import lance

    uri = data_dir / "vectors" / "chunks.lance"
    if not uri.exists():
        return 0, 0
    ds = lance.dataset(str(uri))
    return len(ds.get_fragments()), len(ds.versions())


def stalls(prefix: Path) -> dict:
    return merged(str(prefix))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(args: argparse.Namespace, root: Path) -> dict:
    rng = random.Random(args.seed)
    data_dir = root / "d"
    probe_out = Path(tempfile.mkdtemp(prefix="loop-probe-")) / "stalls"
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(data_dir), LOOP_PROBE_OUT=str(probe_out),
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROBE_SITE), os.environ.get("PYTHONPATH")])))  # fmt: skip
    params = StdioServerParameters(command=sys.executable, args=["-m", "memsweep", "serve"], env=env)
    rows: list[dict] = []
    window: dict[str, list[float]] = {}
    all_ops: dict[str, list[float]] = {}
    live: dict[str, list[str]] = {}

    def record(op: str, start: float) -> None:
        ms = (time.perf_counter() - start) * 1000
        window.setdefault(op, []).append(ms)
        all_ops.setdefault(op, []).append(ms)

    async def timed(c: Client, op: str, tool: str, arguments: dict) -> dict:
        start = time.perf_counter()
        r = await c.call_tool(tool, arguments)
        record(op, start)
        assert not r.is_error, r.content[0].text
        return r.structured_content or {}

    cognee = await Cognee.start(args.cognee_python) if args.cognee_python else None
    cognee_adds = args.adds if args.cognee_adds is None else args.cognee_adds
    paired: dict[str, list[tuple[float, float]]] = {}  # per call: (memsweep's ms, Cognee's ms) for the same call

    async def cognee_timed(op: str, ours: str, **call: object) -> dict:
        """Cognee's turn at the call memsweep just made (its time is the last of `all_ops[ours]`)."""
        assert cognee is not None
        start = time.perf_counter()
        out = await cognee.call(op=op, **call)
        record(f"cognee_{op}", start)
        paired.setdefault(op, []).append((all_ops[ours][-1], all_ops[f"cognee_{op}"][-1]))
        return out

    async with Client(params, mode="legacy") as c:
        start = time.perf_counter()
        await timed(c, "first_call", "list_datasets", {})
        first_call_ms = (time.perf_counter() - start) * 1000
        pid = server_pid()
        assert pid is not None, "could not find the server process"
        print(f"server pid {pid}; first call {first_call_ms:.0f} ms; {memory_mb(pid)}", flush=True)
        print(
            f"{'adds':>6} {'rss MB':>7} {'anon':>5} {'pss':>5} {'dir MB':>7} {'frags':>5} {'vers':>5} {'stall':>6}  "
            "p50/p95 ms: add, search, delete, delete-after-idle"
        )
        for i in range(1, args.adds + 1):
            ds = f"ds{rng.randrange(8)}"
            names = rng.sample(NAMES, 2)
            text = f"Turn {i}: {names[0]} talked with {names[1]} about item {rng.randrange(10**6)}."
            added = await timed(
                c, "add", "add", {"dataset": ds, "text": text, "entities": [{"name": n} for n in names]}
            )
            live.setdefault(ds, []).append(added["data_id"])
            if cognee and i <= cognee_adds:
                theirs = await cognee_timed("add", "add", dataset=ds, text=text, entities=names)
                cognee.items[added["data_id"]] = (theirs["dataset_id"], theirs["data_id"])
                cognee.datasets[ds] = theirs["dataset_id"]
            raw_gap = rng.uniform(0, args.gap_max)
            gap = raw_gap * args.compress
            if i % 3 == 0:
                await timed(c, "search", "search", {"query": f"{names[0]} {names[1]}"})
            if i % 20 == 0:
                victim_ds = rng.choice([d for d, ids in live.items() if ids])
                victim = live[victim_ds].pop(rng.randrange(len(live[victim_ds])))
                # a delete after an idle gap is the sporadic delete of a real session (issue 12.4)
                if args.real_delete_gaps:
                    gap = raw_gap
                op = "delete_after_idle" if gap > 0.6 else "delete"
                await asyncio.sleep(gap)
                gap = 0
                await timed(c, op, "delete_data", {"dataset_id": victim_ds, "data_id": victim})
                if cognee and victim in cognee.items:
                    cds, cid = cognee.items.pop(victim)
                    await cognee_timed("delete", op, dataset_id=cds, data_id=cid)
            if i % 2000 == 0:
                victim_ds = rng.choice(sorted(live))
                preview = await timed(c, "empty_preview", "empty_dataset", {"dataset_id": victim_ds})
                if preview.get("confirm_token"):
                    await timed(c, "empty_dataset", "empty_dataset",
                                {"dataset_id": victim_ds, "confirm_token": preview["confirm_token"]})  # fmt: skip
                live[victim_ds] = []
                if cognee and victim_ds in cognee.datasets:
                    await cognee_timed("empty", "empty_dataset", dataset_id=cognee.datasets[victim_ds])
                    cognee.items = {k: v for k, v in cognee.items.items() if v[0] != cognee.datasets[victim_ds]}
            await asyncio.sleep(gap)
            if i % args.every == 0:
                frags, versions = lance_state(data_dir)
                loop = stalls(probe_out)
                row = {
                    "adds": i, **memory_mb(pid), "dir_mb": round(dir_mb(data_dir), 2),
                    "fragments": frags, "versions": versions, "loop_worst_ms": loop["worst_ms"],
                    "engine_rss_by_mapping": {str(p): rss_by_mapping(p) for p in children(pid)},
                    **{f"{op}_p50": round(pct(v, 0.5), 2) for op, v in window.items()},
                    **{f"{op}_p95": round(pct(v, 0.95), 2) for op, v in window.items()},
                }  # fmt: skip
                if cognee:
                    theirs = memory_mb(cognee.proc.pid)
                    row.update(cognee_rss_mb=theirs["rss_mb"], cognee_pss_mb=theirs["pss_mb"])
                rows.append(row)
                cells = [f"{pct(window.get(o, []), 0.5):.0f}/{pct(window.get(o, []), 0.95):.0f}"
                         for o in ("add", "search", "delete", "delete_after_idle")]  # fmt: skip
                print(f"{i:>6} {row['rss_mb']:>7.0f} {row['anon_mb']:>5.0f} {row['pss_mb']:>5.0f} {row['dir_mb']:>7.1f} {frags:>5} {versions:>5} "
                      f"{loop['worst_ms']:>6.1f}  {'  '.join(cells)}",
                      flush=True)  # fmt: skip
                if cognee and "cognee_rss_mb" in row:
                    cells = [f"{o} {pct(window.get('cognee_' + o, []), 0.5):.0f}/{pct(window.get('cognee_' + o, []), 0.95):.0f}"
                             for o in ("add", "delete")]  # fmt: skip
                    print(f"{'':>6} Cognee: RSS {row['cognee_rss_mb']:.0f} MB, PSS {row['cognee_pss_mb']:.0f}; "
                          f"p50/p95 ms: {', '.join(cells)}", flush=True)  # fmt: skip
                window = {}
        idle: dict[str, float] = {}
        idle_anon: dict[str, float] = {}
        idle_detail: dict[str, dict[str, float]] = {}
        waited = 0.0
        # the fixed marks that come before the end, then the end itself (an --idle-end under 10 s was skipped)
        for mark in sorted({m for m in (1.0, 10.0) if m < args.idle_end} | {args.idle_end}):
            if mark > waited:
                await asyncio.sleep(mark - waited)
                waited = mark
                now = memory_mb(pid)
                idle[f"{mark:.0f}s"] = now["rss_mb"]
                idle_anon[f"{mark:.0f}s"] = now["anon_mb"]
                idle_detail[f"{mark:.0f}s"] = now
        print(
            "idle at the end, server + engine process, RSS (anonymous; PSS; engine process RSS) MB: "
            + ", ".join(
                f"after {k} {v:.0f} ({idle_anon[k]:.0f}; {idle_detail[k]['pss_mb']:.0f}; "
                f"{idle_detail[k]['engine_rss_mb']:.0f})"
                for k, v in idle.items()
            ),
            flush=True,
        )
        loop = stalls(probe_out)
        print(f"event loop: worst stall {loop['worst_ms']:.1f} ms, {loop['over_20ms']} stalls over 20 ms; "
              f"worst: {loop['top'][:5]}; the threads' stacks at each in {probe_out.parent}", flush=True)  # fmt: skip
        idle_rss = idle[f"{args.idle_end:.0f}s"] if args.idle_end > 0 else memory_mb(pid)["rss_mb"]
    result = {"args": vars(args), "first_call_ms": first_call_ms, "idle_rss_mb": idle_rss, "idle_rss": idle,
              "idle_anon": idle_anon, "idle_detail": idle_detail,
              "loop": loop, "rows": rows}  # fmt: skip
    for op in ("delete", "delete_after_idle"):
        result[f"all_{op}_p50"] = statistics.median(all_ops[op]) if all_ops.get(op) else None
    if all_ops.get("delete") and all_ops.get("delete_after_idle"):
        ratio = statistics.median(all_ops["delete_after_idle"]) / statistics.median(all_ops["delete"])
        print(f"delete after a pause / back-to-back, p50 over the run: {ratio:.2f}x "
              f"({len(all_ops['delete_after_idle'])} vs {len(all_ops['delete'])} deletes; target ≤ 1.2x)")  # fmt: skip
    if rows:
        first = next((r for r in rows if r["adds"] >= 1000), rows[0])
        print(f"RSS at {rows[-1]['adds']} adds / at {first['adds']}: {rows[-1]['rss_mb'] / first['rss_mb']:.2f}x "
              f"(target ≤ 1.2x and < 350 MB); median add {statistics.median([r.get('add_p50', 0) for r in rows]):.1f} ms")  # fmt: skip
    if cognee:
        await cognee.close()
        result["cognee"] = {"adds": min(cognee_adds, args.adds)}
        print(f"against Cognee 1.6.5, the calls both made (its first {result['cognee']['adds']} adds and the "
              "deletes of those items), p50 ms:")  # fmt: skip
        for op, label in (("add", "add"), ("delete", "delete_data"), ("empty", "empty_dataset")):
            if pairs := paired.get(op):
                a, b = statistics.median(x for x, _ in pairs), statistics.median(y for _, y in pairs)
                result["cognee"][label] = {"memsweep_p50": a, "cognee_p50": b, "n": len(pairs)}
                print(f"  {label:<14} memsweep {a:8.1f}  Cognee {b:8.1f}  ratio {a / b:.3f}  (n={len(pairs)})")
        if rows and "cognee_rss_mb" in rows[-1]:
            last = rows[-1]
            print(f"  memory at {last['adds']} adds: memsweep RSS {last['rss_mb']:.0f} MB (PSS {last['pss_mb']:.0f}), "
                  f"Cognee RSS {last['cognee_rss_mb']:.0f} MB (PSS {last['cognee_pss_mb']:.0f})")  # fmt: skip
    return result


def plot(before: Path, after: Path, dest: Path) -> None:
    """Two runs' rows side by side over the adds: RSS, p50 per operation, data directory size, fragments."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {"before": json.loads(before.read_text())["rows"], "after": json.loads(after.read_text())["rows"]}
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = [
        (axes[0][0], "memory, server + engine process (MB)", [("rss_mb", "RSS"), ("pss_mb", "PSS")]),
        (axes[0][1], "p50 latency (ms)", [("add_p50", "add"), ("search_p50", "search"), ("delete_p50", "delete")]),
        (axes[1][0], "data directory (MB)", [("dir_mb", "")]),
        (axes[1][1], "LanceDB fragments", [("fragments", "")]),
    ]
    for ax, title, keys in panels:
        for (label, rows), style in zip(runs.items(), ("--", "-"), strict=True):
            for key, what in keys:
                if not all(key in r for r in rows):  # older runs recorded no PSS
                    continue
                name = f"{label} {what}".strip()
                ax.plot([r["adds"] for r in rows], [r[key] for r in rows], style, marker="o", label=name)
        ax.set_title(title)
        ax.set_xlabel("single adds")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("The agent's day: one memsweep serve over stdio, 10,000 single adds")
    fig.tight_layout()
    fig.savefig(dest, dpi=100)


def main() -> None:
    if sys.argv[1:2] == ["--plot"]:
        plot(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adds", type=int, default=10_000)
    ap.add_argument("--gap-max", type=float, default=3.0)
    ap.add_argument("--compress", type=float, default=1.0)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--idle-end", type=float, default=70.0, help="idle seconds at the end (RSS sampled)")
    ap.add_argument("--real-delete-gaps", action="store_true")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--data-dir")
    ap.add_argument("--cognee-python", help="python of a venv with cognee==1.6.5: the same day through Cognee too")
    ap.add_argument("--cognee-adds", type=int, help="Cognee takes part in the first N adds only (~0.45 s each)")
    ap.add_argument("--out")
    args = ap.parse_args()
    with scratch("agent-day-", args.data_dir) as root:
        save(args.out, asyncio.run(run(args, root)))


if __name__ == "__main__":
    main()
