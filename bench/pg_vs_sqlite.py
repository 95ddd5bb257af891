"""The add and delete scenarios with the metadata on PostgreSQL next to SQLite, interleaved in one run.

    python bench/pg_vs_sqlite.py --size 10000 [--rounds 2] [--out pg_vs_sqlite.json]

Starts a PostgreSQL server from the machine's binaries (tests/pgserver.py: a temporary folder, Unix socket,
fsync=on as a real server has it, wal_recycle=off as README asks), builds one store of N items on each
backend with bench/scenarios.py, then runs every scenario on a fresh copy of each store (a copied data
directory; on PostgreSQL also `CREATE DATABASE … TEMPLATE`), alternating SQLite and PostgreSQL so both see
the same machine state. Each scenario runs in its own process (its own peak RSS), warm within the process
(the store is opened once, then timed), as in bench/run.py. Prints medians and the PostgreSQL/SQLite ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # the checkout, so `tests.pgserver` imports
sys.path.insert(0, str(HERE))
from workload import save  # noqa: E402

SCENARIOS = ["add_single", "add_batch", "list_data_first", "delete_data", "delete_data_keep_bytes", "empty_dataset"]


def scenario(name: str, data_dir: Path, n: int, metadata_url: str | None) -> dict:
    env = dict(os.environ)
    env.pop("MEMSWEEP_METADATA_URL", None)
    if metadata_url:
        env["MEMSWEEP_METADATA_URL"] = metadata_url
    proc = subprocess.run(
        [sys.executable, str(HERE / "scenarios.py"), name, str(data_dir), str(n)],
        capture_output=True, text=True, env=env, timeout=7200,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=1, help="times each scenario runs on each backend")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--out")
    args = ap.parse_args()
    from tests.pgserver import PgServer

    server = PgServer.start(fsync=True)
    work = Path(tempfile.mkdtemp(prefix="pgbench-"))
    try:
        base_db = server.create_database()
        bases = {"sqlite": (work / "sqlite", None), "postgres": (work / "postgres", server.url(base_db))}
        out: dict = {"n": args.size, "build": {}, "scenarios": {}}
        for backend, (path, url) in bases.items():
            out["build"][backend] = scenario("build", path, args.size, url)
            print(f"build {backend:<8} {out['build'][backend]['build_s']:>8.1f} s", file=sys.stderr)
        for name in args.scenarios.split(","):
            for r in range(args.rounds):
                for backend, (path, url) in bases.items():
                    copy = work / f"{backend}-{name}-{r}"
                    shutil.copytree(path, copy)
                    copy_url = None
                    if url:
                        db = server.create_database_from(base_db)
                        copy_url = server.url(db)
                    res = scenario(name, copy, args.size, copy_url)
                    out["scenarios"].setdefault(name, {}).setdefault(backend, []).append(res)
                    shutil.rmtree(copy)
                    if url:
                        server.drop_database(db)
                    print(f"{name:<24} {backend:<8} p50 {res['p50_ms']:>10.2f} ms  rss {res['peak_rss_mb']} MB",
                          file=sys.stderr)  # fmt: skip
        print(
            f"\n{'scenario (n=' + str(args.size) + ')':<26} {'SQLite p50':>12} {'PostgreSQL p50':>15} {'PG/SQLite':>10}"
        )
        for name, by in out["scenarios"].items():
            lite = sorted(x["p50_ms"] for x in by["sqlite"])[len(by["sqlite"]) // 2]
            pg = sorted(x["p50_ms"] for x in by["postgres"])[len(by["postgres"]) // 2]
            print(f"{name:<26} {lite:>10.2f} ms {pg:>12.2f} ms {pg / lite:>10.2f}")
        b = out["build"]
        print(f"{'build (s)':<26} {b['sqlite']['build_s']:>10.1f} s  {b['postgres']['build_s']:>11.1f} s "
              f"{b['postgres']['build_s'] / b['sqlite']['build_s']:>10.2f}")  # fmt: skip
        save(args.out and str(HERE / "out" / args.out), out)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
