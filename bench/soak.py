"""Reliability at volume (issue 10.13), run by hand and resumable: every run adds to the totals in
`bench/out/soak.json`, so the goals can be reached over several sittings.

    python bench/soak.py --kills 200 --model-examples 200 --fuzz-examples 2000 [--backend kuzu|ladybug]

- kills: SIGKILL at a random time in a random workload (bench/crash_random.py's child: adds, deletes with
  and without erase, empties, memory-only forgets, prunes, rebuilds), then reopen and `doctor`; every
  fifth round instead kills 0–0.4 s after an acknowledged delete_data (tests/test_crash.py's case). A round
  fails when doctor is not consistent after the reopen's recovery.
- model: tests/test_model.py (Hypothesis state machine, 10 steps an example) with this many examples.
- fuzz: tests/test_fuzz.py (hostile arguments through the MCP client) with this many examples per test.

Goals: ≥ 1,000 kill points, ≥ 10,000 model steps, ≥ 100,000 fuzzed calls, each with 0 violations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from crash_random import CHILD, check  # noqa: E402
from workload import scratch  # noqa: E402

from tests.test_crash import KILL_AFTER_REPLY  # noqa: E402

OUT = ROOT / "bench" / "out" / "soak.json"
GOALS = {"kill_points": 1000, "model_steps": 10_000, "fuzz_calls": 100_000}


def load() -> dict:
    if OUT.exists():
        return json.loads(OUT.read_text())
    return {"kill_points": {}, "model_steps": 0, "fuzz_calls": 0, "violations": [], "runs": []}


def kill_round(rng: random.Random, backend: str, after_delete: bool) -> tuple[bool, str]:
    with scratch("soak-") as root:
        return _kill_round(root / "d", rng, backend, after_delete)


def _kill_round(data_dir: Path, rng: random.Random, backend: str, after_delete: bool) -> tuple[bool, str]:
    env = dict(os.environ, MEMSWEEP_GRAPH_BACKEND=backend)
    if after_delete:
        argv = [sys.executable, "-c", KILL_AFTER_REPLY, str(data_dir), backend, str(rng.randrange(6))]
        child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout is not None
        child.stdout.readline()  # "deleted": acknowledged
        time.sleep(rng.uniform(0.0, 0.4))
    else:
        argv = [sys.executable, "-c", CHILD, str(data_dir), str(rng.randint(0, 10**9))]
        child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout is not None
        child.stdout.readline()  # "ready"
        time.sleep(rng.uniform(0.05, 2.5))
    if child.poll() is not None:
        return False, f"child exited on its own ({child.returncode})"
    child.send_signal(signal.SIGKILL)
    child.communicate()
    ok, detail = asyncio.run(check(data_dir, backend))
    return ok, detail


def pytest_count(test: str, env_var: str, examples: int) -> tuple[bool, str]:
    env = dict(os.environ, **{env_var: str(examples)})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    tail = (proc.stdout + proc.stderr)[-1500:]
    return proc.returncode == 0, tail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=0)
    # One backend per run: kuzu and ladybug cannot be loaded into one process, and the check runs here.
    ap.add_argument("--backend", choices=["kuzu", "ladybug"], default="kuzu")
    ap.add_argument("--model-examples", type=int, default=0)
    ap.add_argument("--fuzz-examples", type=int, default=0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    totals = load()
    started = time.time()
    for i in range(a.kills):
        backend = a.backend
        ok, detail = kill_round(rng, backend, after_delete=i % 5 == 4)
        totals["kill_points"][backend] = totals["kill_points"].get(backend, 0) + 1
        if not ok:
            totals["violations"].append(
                {"kind": "kill", "backend": backend, "seed": a.seed, "round": i, "detail": detail}
            )
        print(f"kill {i + 1}/{a.kills} on {backend}: {'ok' if ok else 'VIOLATION ' + detail}", flush=True)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(totals, indent=2))
    if a.model_examples:
        ok, tail = pytest_count("tests/test_model.py", "MEMSWEEP_MODEL_EXAMPLES", a.model_examples)
        totals["model_steps"] += a.model_examples * 10 if ok else 0
        if not ok:
            totals["violations"].append({"kind": "model", "seed": a.seed, "detail": tail})
        print(f"model: {a.model_examples} examples: {'ok' if ok else 'VIOLATION'}", flush=True)
    if a.fuzz_examples:
        ok, tail = pytest_count("tests/test_fuzz.py", "MEMSWEEP_FUZZ_EXAMPLES", a.fuzz_examples)
        # two Hypothesis tests draw examples; each example is one tool call plus one list_datasets check
        calls = 2 * a.fuzz_examples if ok else 0
        totals["fuzz_calls"] += calls
        if not ok:
            totals["violations"].append({"kind": "fuzz", "seed": a.seed, "detail": tail})
        print(f"fuzz: {calls} calls: {'ok' if ok else 'VIOLATION'}", flush=True)
    totals["runs"].append({"seed": a.seed, "seconds": round(time.time() - started), "args": vars(a)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(totals, indent=2))
    kills = sum(totals["kill_points"].values())
    print("\n| what | reached | goal | violations |\n|---|---|---|---|")
    print(f"| SIGKILL points ({', '.join(f'{k} {v}' for k, v in totals['kill_points'].items())}) | {kills:,} | "
          f"{GOALS['kill_points']:,} | {sum(v['kind'] == 'kill' for v in totals['violations'])} |")  # fmt: skip
    for key, kind in (("model_steps", "model"), ("fuzz_calls", "fuzz")):
        n = sum(v["kind"] == kind for v in totals["violations"])
        print(f"| {key.replace('_', ' ')} | {totals[key]:,} | {GOALS[key]:,} | {n} |")


if __name__ == "__main__":
    main()
