"""memsweep's delete_data against Cognee 1.6.5 and the layout-faithful floor, interleaved (issue 12.6).

    python bench/peer.py [--size 1000] [--rounds 2] [--cognee-python ~/cognee-venv/bin/python]

Each round runs, one process each and in this order: the floor on memsweep's layout (bench/floor.py
--layout), memsweep's `delete_data` with erase=true and erase=false through the Python API and through
the MCP client and server (bench/scenarios.py, each on a fresh copy of one store built for the round),
then Cognee (bench/cognee_bench.py, its own store). Cognee is measured warm (victims in the datasets whose
engines it keeps open) and cold (every delete in a dataset whose engines it must reopen), and the two are
quoted apart. All deletes are single items in a store of `--size` items in 10 datasets, back to back.
Prints the medians over rounds and the ratios the issue sets targets for.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import ratio, sh  # noqa: E402

OURS = ["delete_data", "delete_data_keep_bytes", "delete_data_mcp", "delete_data_mcp_keep_bytes"]


def one_round(n: int, cognee_python: str | None) -> dict[str, float]:
    row: dict[str, float] = {}
    floor = sh([sys.executable, str(HERE / "floor.py"), str(n), "--layout"])
    row["floor"], row["floor_erase"] = floor["delete_data_p50_ms"], floor["delete_data_erase_p50_ms"]
    work = Path(tempfile.mkdtemp(prefix=f"peer-{n}-"))
    sh([sys.executable, str(HERE / "scenarios.py"), "build", str(work / "base"), str(n)])
    for name in OURS:
        shutil.copytree(work / "base", work / name)
        row[name] = sh([sys.executable, str(HERE / "scenarios.py"), name, str(work / name), str(n)])["p50_ms"]
        shutil.rmtree(work / name)
    shutil.rmtree(work)
    if cognee_python:
        cg = sh([cognee_python, str(HERE / "cognee_bench.py"), str(n)])
        row["cognee_warm"], row["cognee_cold"] = cg["delete_data"]["p50_ms"], cg["delete_data_cold"]["p50_ms"]
        row["cognee_graph_nodes"] = float(cg["graph_nodes"])
    print("  round: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()), file=sys.stderr, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cognee-python", help="python of a venv with cognee==1.6.5 installed")
    a = ap.parse_args()
    rounds = [one_round(a.size, a.cognee_python) for _ in range(a.rounds)]
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"n={a.size}, {a.rounds} rounds, medians of per-round p50s (ms):")
    for k, v in med.items():
        print(f"  {k:<28} {v:9.2f}")
    print("ratios (target in brackets):")
    targets = [
        ("erase=false API / layout floor", "delete_data_keep_bytes", "floor", "≤ 2"),
        ("erase=false MCP / layout floor", "delete_data_mcp_keep_bytes", "floor", "≤ 2"),
        ("erase=true API / erasing floor", "delete_data", "floor_erase", "≤ 1.5"),
        ("erase=true MCP / erasing floor", "delete_data_mcp", "floor_erase", "≤ 1.5"),
    ]
    if a.cognee_python:
        targets += [
            ("erase=true API / Cognee warm", "delete_data", "cognee_warm", "≤ 0.1"),
            ("erase=true MCP / Cognee warm", "delete_data_mcp", "cognee_warm", "≤ 0.1"),
            ("erase=true API / Cognee cold", "delete_data", "cognee_cold", "stated apart"),
            ("erase=true MCP / Cognee cold", "delete_data_mcp", "cognee_cold", "stated apart"),
        ]
    for label, a_key, b_key, target in targets:
        print(f"  {label:<34} {ratio(med[a_key], med[b_key]):>7}  [{target}]")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"peer_{a.size}.json").write_text(json.dumps({"rounds": rounds, "median": med}, indent=2))


if __name__ == "__main__":
    main()
