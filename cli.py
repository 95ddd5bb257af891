"""The `memsweep` command: `serve` for agents, `doctor` and a few commands for people.

Exit codes: 0 done, 1 refused / not confirmed / inconsistent, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from memsweep.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings()
    if getattr(args, "data_dir", None):
        s = s.with_(data_dir=Path(args.data_dir))
    if getattr(args, "allow_prune", False):
        s = s.with_(allow_prune=True)
    if getattr(args, "graph_backend", None):
        s = s.with_(graph_backend=args.graph_backend)
    return s


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="memsweep", description="A memory store for AI agents that forgets correctly.")
    p.add_argument("--data-dir", help="data directory (default: $MEMSWEEP_DATA_DIR or ~/.local/share/memsweep)")
    p.add_argument("--graph-backend", choices=["kuzu", "ladybug"], help="graph engine (default kuzu)")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--allow-prune", action="store_true", help="enable the prune tool")
    doctor = sub.add_parser("doctor", help="check every store against the metadata")
    doctor.add_argument("--repair", action="store_true", help="fix what was found")
    doctor.add_argument("--json", action="store_true")
    ds = sub.add_parser("datasets", help="list datasets")
    ds.add_argument("--json", action="store_true")
    ls = sub.add_parser("ls", help="list a dataset's items")
    ls.add_argument("dataset")
    ls.add_argument("--json", action="store_true")
    add = sub.add_parser("add", help="add a memory")
    add.add_argument("dataset")
    add.add_argument("text", nargs="?")
    add.add_argument("--file")
    add.add_argument("--json", action="store_true")
    search = sub.add_parser("search", help="search memories")
    search.add_argument("query")
    search.add_argument("--json", action="store_true")
    rm = sub.add_parser("rm", help="delete an item, or a whole dataset")
    rm.add_argument("dataset")
    rm.add_argument("item", nargs="?")
    rm.add_argument("--dry-run", action="store_true")
    rm.add_argument("--yes", action="store_true", help="do not ask")
    rm.add_argument("--json", action="store_true")
    audit = sub.add_parser("audit", help="who deleted what (ids and counts)")
    audit.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    if args.command == "serve":
        return _serve(settings, args)
    from memsweep.errors import InvalidInput, MemsweepError, NotFound

    if getattr(args, "file", None):
        args.file = os.path.abspath(args.file)  # relative to where the person ran the command
    try:
        return asyncio.run(_run(settings, args))
    except (InvalidInput, NotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemsweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from memsweep.server.app import configure_logging, create_server

    configure_logging()
    if args.transport == "http":
        print(
            "error: the HTTP transport needs bearer-token authentication, which this version does not have yet; "
            "refusing to serve memories unauthenticated. Use stdio (the default).",
            file=sys.stderr,
        )
        return 2
    create_server(settings).run("stdio")
    return 0


def _print(obj: Any, as_json: bool, text: str) -> None:
    if as_json:
        data = [o.model_dump(mode="json") for o in obj] if isinstance(obj, list) else obj.model_dump(mode="json")
        print(json.dumps(data, indent=2))
    else:
        print(text)


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from memsweep.api import Memory

    async with Memory(settings) as mem:
        if args.command == "doctor":
            report = await mem.doctor(repair=args.repair)
            lines = [
                f"{'consistent' if report.consistent else 'INCONSISTENT'}: "
                + ", ".join(f"{k}={v}" for k, v in report.checked.items())
            ]
            lines += [
                f"  {f.kind}: {f.count} — {f.detail}{' (repaired)' if f.repaired else ''}" for f in report.findings
            ]
            _print(report, args.json, "\n".join(lines))
            return 0 if report.consistent else 1
        if args.command == "datasets":
            rows = await mem.datasets.list_datasets()
            text = "\n".join(
                f"{d.id}  {d.name:<24} {d.items:>6} items  owner={d.owner}  can_delete={d.can_delete}" for d in rows
            )
            _print(rows, args.json, text or "(no datasets)")
            return 0
        if args.command == "ls":
            items = await mem.datasets.list_data(args.dataset)
            text = "\n".join(f"{i.id}  {i.size_bytes:>8} B  {i.chunks:>3} chunks  {i.name}" for i in items)
            _print(items, args.json, text or "(empty)")
            return 0
        if args.command == "add":
            result = await mem.add(args.dataset, args.text, path=args.file)
            _print(
                result,
                args.json,
                f"added {result.data_id} to {result.dataset_name} ({result.chunks} chunks, {result.entities} entities)",
            )
            return 0
        if args.command == "search":
            hits = await mem.search(args.query)
            _print(hits, args.json, "\n".join(f"{h.score:.3f}  {h.data_id}  {h.snippet}" for h in hits) or "(no hits)")
            return 0
        if args.command == "audit":
            entries = await mem.audit()
            _print(
                entries,
                args.json,
                "\n".join(
                    f"{e.at:%Y-%m-%d %H:%M:%S}  {e.user:<12} {e.op:<14} {e.counts.get('items', 0)} items"
                    for e in entries
                )
                or "(empty)",
            )
            return 0
        if args.command == "rm":
            return await _rm(mem, args)
    return 2


async def _rm(mem: Any, args: argparse.Namespace) -> int:
    from memsweep.storage.deleter import Target

    if args.item:
        target = Target("delete_data", "item", data_id=args.item, dataset=args.dataset)
    else:
        target = Target("empty_dataset", "dataset", dataset=args.dataset)
    preview = await mem.run(target, dry_run=True)
    if args.dry_run or (preview.items == 0 and preview.datasets == 0):
        _print(preview, args.json, preview.message)
        return 0
    if not args.yes:
        print(preview.message, file=sys.stderr)
        if not sys.stdin.isatty() and not sys.stdin.readable():
            return 1
        print("Delete? [y/N] ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in {"y", "yes"}:
            print("Nothing was deleted.", file=sys.stderr)
            return 1
    report = await mem.run(target, expected_fingerprint=preview.fingerprint)
    _print(report, args.json, report.message)
    return 0
