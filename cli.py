"""The `memsweep` command: `serve` for agents; the rest for people (a thin layer over the Python API).

Destructive commands show the preview and ask at a prompt that defaults to no; `--yes` skips the prompt,
`--dry-run` only previews, `--json` prints the report the tool returns. Exit codes: 0 done, 1 refused /
not confirmed / inconsistent, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from memsweep.config import Settings

# The engine's errors name tool arguments; a person at the terminal typed flags. Longest phrases first.
_CLI_WORDS = (
    (
        "`data_id`, `data_ids`, `entity`, `dataset`, or `everything=true` (or `query` to find candidates first)",
        "--item ID (repeatable), --entity NAME, --dataset NAME, or --everything (or --query TEXT to find candidates "
        "first)",
    ),
    ("`data_id`, `dataset`, or `everything=true`", "--item ID, --dataset NAME, or --everything"),
    ("forget(data_ids=[...])", "`memsweep forget --item ID --item ID …`"),
    (
        "`everything=true` cannot be combined with `data_id` or `dataset`",
        "--everything cannot be combined with --item or --dataset",
    ),
    ("Give exactly one of `text` or `path`", "Give exactly one of TEXT or --file PATH"),
    ("`copy=false` applies to files added by `path`", "--no-copy applies to files added with --file"),
    ("call list_datasets or list_data", "run `memsweep datasets` or `memsweep ls DATASET`"),
    ("call list_datasets", "run `memsweep datasets`"),
    ("call list_data", "run `memsweep ls DATASET`"),
    ("dry_run=true", "--dry-run"),
    ("erase=false", "--keep-bytes"),
    ("`path`", "--file"),
    ("`text`", "TEXT"),
    ("`limit`", "--limit"),
    ("`query`", "QUERY"),
    ("`dataset_id`", "DATASET"),
    ("`dataset`", "DATASET"),
    ("data_id", "ITEM"),
)


def in_cli_words(message: str) -> str:
    """An engine message with tool argument names replaced by this command line's flags."""
    for tool_words, cli_words in _CLI_WORDS:
        message = message.replace(tool_words, cli_words)
    return message


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings()
    if getattr(args, "data_dir", None):
        s = s.with_(data_dir=Path(args.data_dir).expanduser())
    if getattr(args, "user", None):
        s = s.with_(user=args.user)
    if getattr(args, "allow_prune", False):
        s = s.with_(allow_prune=True)
    if getattr(args, "graph_backend", None):
        s = s.with_(graph_backend=args.graph_backend)
    return s


def _global_options(default: object) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name (`memsweep serve --data-dir P` is how client
    configs write it). After the command they default to SUPPRESS, so they never undo a value given before."""
    g = argparse.ArgumentParser(add_help=False)
    g.add_argument(
        "--data-dir", default=default, help="data directory (default: $MEMSWEEP_DATA_DIR or ~/.local/share/memsweep)"
    )
    g.add_argument("--user", default=default, help="act as this user (default: $MEMSWEEP_USER or 'default')")
    g.add_argument("--graph-backend", default=default, choices=["kuzu", "ladybug"], help="graph engine (default kuzu)")
    return g


def _period_or_none(raw: str) -> float | None:
    """`30d`, `12h`, `90m` (in days) or `none`."""
    text = raw.strip().lower()
    if text == "none":
        return None
    units = {"d": 1.0, "h": 1 / 24, "m": 1 / 1440}
    try:
        value = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a period like 30d, 12h or 90m (or none), not {raw!r}")
    return value


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {raw!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and exit 2, in the CLI's own words (argparse prints the whole usage block first).
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    from memsweep import __version__

    p = _Parser(
        prog="memsweep",
        description="A memory store for AI agents that forgets correctly.",
        parents=[_global_options(None)],
    )
    p.add_argument("--version", action="version", version=f"memsweep {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    after = _global_options(argparse.SUPPRESS)

    def cmd(name: str, help: str, json_flag: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, parents=[after])
        if json_flag:
            sp.add_argument("--json", action="store_true", help="print the report as JSON")
        return sp

    serve = cmd("serve", "run the MCP server (stdio by default)", json_flag=False)
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default loopback only)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--allow-prune", action="store_true", help="enable the prune tool")
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="over HTTP, also accept this Host name (a proxy or DNS name in front); repeatable",
    )
    doctor = cmd("doctor", "check every store against the metadata")
    doctor.add_argument("--repair", action="store_true", help="fix what was found")
    cmd("datasets", "list datasets")
    ls = cmd("ls", "list a dataset's items")
    ls.add_argument("dataset")
    add = cmd("add", "add a memory")
    add.add_argument("dataset")
    add.add_argument("text", nargs="?")
    add.add_argument("--file")
    add.add_argument("--no-copy", action="store_true", help="keep the file by reference")
    search = cmd("search", "search memories")
    search.add_argument("query")
    search.add_argument("--limit", type=_positive_int, default=10)
    for name, help in (("rm", "delete an item, or a whole dataset"), ("forget", "forget an item, a dataset or everything"),
                       ("prune", "development reset of whole layers")):  # fmt: skip
        sp = cmd(name, help)
        sp.add_argument("--dry-run", action="store_true", help="only preview")
        sp.add_argument("--yes", action="store_true", help="do not ask")
        if name != "prune":
            sp.add_argument("--keep-bytes", action="store_true", help="erase=false: leave erasure to the sweep")
            sp.add_argument("--verify", action="store_true", help="scan the data directory for the deleted bytes")
        if name == "rm":
            sp.add_argument("dataset")
            sp.add_argument("item", nargs="?")
        elif name == "forget":
            sp.add_argument("--item", action="append", metavar="ID", help="an item id; repeat for several")
            sp.add_argument("--entity", metavar="NAME", help="every item that mentions this subject")
            sp.add_argument("--query", metavar="TEXT", help="only list candidates (never deletes)")
            sp.add_argument("--limit", type=_positive_int, default=20, help="with --query: at most this many")
            sp.add_argument("--dataset")
            sp.add_argument("--everything", action="store_true")
            sp.add_argument("--memory-only", action="store_true")
        else:
            for layer in ("files", "graph", "vector", "metadata", "cache"):
                sp.add_argument(f"--{layer}", action="store_true")
    cmd("rebuild", "recreate graph and vectors from metadata")
    for name in ("grant", "revoke"):
        sp = cmd(name, f"{name} a permission (operator only)", json_flag=False)
        sp.add_argument("grantee")
        sp.add_argument("dataset")
        sp.add_argument("permission", choices=["read", "write", "delete", "share"])
    tok = cmd("token", "create (or revoke) an HTTP bearer token for a user", json_flag=False)
    tok.add_argument("grantee", nargs="?")
    tok.add_argument("--revoke", metavar="TOKEN", help="revoke this token")
    tok.add_argument("--revoke-all", action="store_true", help="revoke every token of the user")
    ret = cmd("retention", "set a dataset's retention (operator only): 30d, 12h, or none", json_flag=False)
    ret.add_argument("dataset")
    ret.add_argument("period", type=_period_or_none, metavar="PERIOD")
    for name, help in (("hold", "put a dataset on hold: nothing of it expires or is deleted"),
                       ("release", "take a dataset off hold")):  # fmt: skip
        cmd(name, f"{help} (operator only)", json_flag=False).add_argument("dataset")
    expire = cmd("expire", "delete (with erase) every item past its expiry")
    expire.add_argument("--dry-run", action="store_true", help="only list what would go")
    expire.add_argument("--within", type=_period_or_none, default=0.0, metavar="PERIOD",
                        help="with --dry-run: what goes by now + PERIOD (e.g. 7d)")  # fmt: skip
    exp = cmd("export", "write what a forget with the same scope would remove, as JSON lines", json_flag=False)
    exp.add_argument("--dataset")
    exp.add_argument("--entity", metavar="NAME")
    exp.add_argument("--item", action="append", metavar="ID", help="an item id; repeat for several")
    exp.add_argument("--everything", action="store_true")
    exp.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    inst = cmd("install", "add memsweep to an MCP client's config (claude, cursor, vscode)", json_flag=False)
    inst.add_argument("client", choices=["claude", "cursor", "vscode"])
    inst.add_argument("--config", help="the client's config file (default: where that client keeps it)")
    inst.add_argument("--dry-run", action="store_true", help="print the change and write nothing")
    audit = cmd("audit", "who deleted what (ids and counts, never content)")
    audit.add_argument("--limit", type=_positive_int, default=50)
    audit.add_argument("--receipt", metavar="ID", help="show what one executed delete certifies")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (`memsweep audit --json | head`): not an error of ours, and no traceback.
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _restart_without_thread_cache() -> None:
    """The commands below open the store in this process: start it again, once, as the server starts its
    engine process, without glibc's per-thread cache of freed blocks (storage/heap.py: the graph engine
    must get zeroed blocks only, or a deleted memory can reach its files)."""
    from memsweep.storage import heap

    if not heap.thread_cache_on(os.environ):
        return
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "memsweep", *sys.argv[1:]], heap.without_thread_cache(os.environ))


def _main(argv: list[str] | None = None) -> int:
    from memsweep.errors import InvalidInput, MemsweepError, NotFound

    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "install":
        return _install(settings, args)

    if argv is None:
        _restart_without_thread_cache()
    if getattr(args, "file", None):
        args.file = os.path.abspath(args.file)  # relative to where the person ran the command
    if getattr(args, "output", None):
        args.output = os.path.abspath(os.path.expanduser(args.output))
    try:
        return asyncio.run(_run(settings, args))
    except (InvalidInput, NotFound) as exc:
        print(f"error: {in_cli_words(str(exc))}", file=sys.stderr)
        return 2
    except MemsweepError as exc:
        print(f"error: {in_cli_words(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 1


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from memsweep.server.engine_process import EngineProcess

    # The engine process starts first: it imports the storage engines on one core while this process
    # imports the MCP SDK on the other, and a fresh server's first call waits for the slower of the two.
    engine = EngineProcess(settings, settings.engine_idle_seconds)
    engine.launch()
    from memsweep.config import configure_logging
    from memsweep.server.app import create_server
    from memsweep.server.http import LOOPBACK, security_settings
    from memsweep.server.stop import run_until_stopped

    configure_logging()
    from memsweep.storage import heap

    heap.tune_for_server()  # this process is ours: fewer arenas, freed large blocks go back to the system
    if args.transport == "stdio":
        if sys.stdin.isatty():
            # Someone started it by hand: stdout is the protocol, so say what this is on stderr, once.
            print(
                f"memsweep {_version()}: MCP server on stdio for {settings.data_dir} (user {settings.user}). It "
                "talks JSON-RPC with an MCP client on stdin/stdout; stop it with Ctrl-C.",
                file=sys.stderr,
            )
        server = create_server(settings, engine=engine)
        heap.freeze_startup_objects()
        return run_until_stopped(server, server.run_stdio_async)
    if args.host not in LOOPBACK:
        print(
            f"warning: serving on {args.host}, reachable beyond this machine. Every request still needs a bearer "
            "token (`memsweep token USER`); put TLS in front of it.",
            file=sys.stderr,
        )
    security = security_settings(args.host, args.port, args.allow_host)
    url_host = f"[{args.host}]" if _is_ipv6(args.host) else args.host
    server = create_server(settings, http_url=f"http://{url_host}:{args.port}", engine=engine)
    heap.freeze_startup_objects()
    print(
        f"memsweep {_version()}: MCP over HTTP on http://{url_host}:{args.port}/mcp; stop it with Ctrl-C.",
        file=sys.stderr,
    )
    return run_until_stopped(
        server, lambda: server.run_streamable_http_async(host=args.host, port=args.port, transport_security=security)
    )


def _install(settings: Settings, args: argparse.Namespace) -> int:
    from memsweep import install
    from memsweep.errors import InvalidInput

    config = Path(args.config).expanduser() if args.config else install.default_config(args.client)
    try:
        change = install.plan(args.client, config, settings.data_dir.expanduser().absolute())
        if not change.changed:
            print(f"{config}: memsweep is already installed with these settings; nothing changed.")
            return 0
        if args.dry_run:
            print(change.diff(), end="")
            print("(dry run: nothing was written)", file=sys.stderr)
            return 0
        backup = install.apply(change)
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {config}: {exc.strerror}. Nothing was changed.", file=sys.stderr)
        return 1
    saved = f" (the previous file is saved as {backup.name})" if backup else ""
    print(f"added memsweep to {config}{saved}; restart {args.client} to load it.")
    return 0


def _version() -> str:
    from memsweep import __version__

    return __version__


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _print(obj: Any, as_json: bool, text: str) -> None:
    if as_json:
        data = [o.model_dump(mode="json") for o in obj] if isinstance(obj, list) else obj.model_dump(mode="json")
        print(json.dumps(data, indent=2))
    else:
        print(text)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*map(str, r)) for r in [header, *rows])


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from memsweep.api import Memory

    if args.command == "token":
        return await _token(settings, args)
    async with Memory(settings) as mem:
        c = args.command
        if c == "doctor":
            report = await mem.doctor(repair=args.repair)
            head = "consistent" if report.consistent else "INCONSISTENT"
            lines = [f"{head}: " + ", ".join(f"{k}={v}" for k, v in report.checked.items())]
            lines += [
                f"  {f.kind}: {f.count} — {f.detail}{' (repaired)' if f.repaired else ''}" for f in report.findings
            ]
            _print(report, args.json, "\n".join(lines))
            return 0 if report.consistent else 1
        if c == "datasets":
            rows = await mem.datasets.list_datasets()
            table = [[d.id, d.name, d.items, d.owner, "yes" if d.can_delete else "no"] for d in rows]
            _print(rows, args.json, _table(table, ["id", "name", "items", "owner", "can delete"]))
            return 0
        if c == "ls":
            items = await mem.datasets.list_data(args.dataset)
            table = [[i.id, i.size_bytes, i.chunks, i.entities, i.name[:50]] for i in items]
            _print(items, args.json, _table(table, ["id", "bytes", "chunks", "entities", "name"]))
            return 0
        if c == "add":
            result = await mem.add(args.dataset, args.text, path=args.file, copy=not args.no_copy)
            dedup = ", deduplicated" if result.deduplicated else ""
            _print(result, args.json, f"added {result.data_id} to {result.dataset_name} "
                   f"({_n(result.chunks, 'chunk')}, {_n(result.entities, 'entity', 'entities')}{dedup})")  # fmt: skip

            return 0
        if c == "search":
            hits = await mem.search(args.query, limit=args.limit)
            _print(
                hits,
                args.json,
                _table([[f"{h.score:.3f}", h.data_id, h.snippet[:60]] for h in hits], ["score", "id", "snippet"]),
            )
            return 0
        if c == "rebuild":
            report = await mem.rebuild()
            _print(report, args.json, report.message)
            return 0
        if c == "audit" and args.receipt:
            receipt = await mem.receipt(args.receipt)
            lines = [
                f"receipt {receipt.receipt_id}: {receipt.op} by {receipt.user} at {receipt.at:%Y-%m-%d %H:%M:%S} UTC"
            ]
            lines += [f"  removed {k.replace('_', ' ')}: {v}" for k, v in receipt.removed.items()]
            erased = f"at {receipt.erased_at:%Y-%m-%d %H:%M:%S} UTC" if receipt.erased_at else "pending"
            lines.append(f"  bytes erased: {erased}" + ("" if receipt.erase else " (erase=false: by the sweep)"))
            if receipt.verified:
                lines.append(
                    f"  verified: {receipt.files_scanned} files, {receipt.bytes_scanned} bytes scanned, {receipt.hits} hits"
                )
            else:
                lines.append("  verified: not asked (--verify)")
            _print(receipt, args.json, "\n".join(lines))
            return 0 if receipt.hits in (None, 0) else 1
        if c == "audit":
            entries = await mem.audit(args.limit)
            table = [
                [f"{e.at:%Y-%m-%d %H:%M:%S}", e.user, e.op, e.counts.get("items", 0), len(e.data_ids)] for e in entries
            ]
            _print(entries, args.json, _table(table, ["at (UTC)", "user", "op", "items", "ids"]))
            return 0
        if c == "export":
            return await _export(mem, args)
        if c == "retention":
            days = None if args.period is None else max(1, round(args.period))
            await mem.set_retention(args.dataset, days)
            print(
                f"{args.dataset}: "
                + (f"new items expire {days} day(s) after they are added" if days else "no retention")
            )
            return 0
        if c in ("hold", "release"):
            await mem.hold(args.dataset, on=c == "hold")
            print(f"{args.dataset}: " + ("on hold (nothing expires or is deleted)" if c == "hold" else "released"))
            return 0
        if c == "expire":
            report = await mem.expire(dry_run=args.dry_run, within_days=args.within or 0.0)
            rows = [[x.data_id, x.dataset_id, x.name[:50]] for x in report.candidates]
            text = (
                report.message
                if not args.dry_run
                else (_table(rows, ["id", "dataset", "name"]) + "\n" + report.message)
            )
            _print(report, args.json, text)
            return 0
        if c in ("grant", "revoke"):
            from memsweep.storage.ids import is_uuid

            # The operator may name any dataset by id; a name is looked up among the acting user's own.
            ds = args.dataset.lower() if is_uuid(args.dataset.lower()) else await mem.dataset_id(args.dataset)
            if ds is None:
                print(f"error: no dataset {args.dataset!r} visible to {mem.user!r}", file=sys.stderr)
                return 2
            await (mem.grant if c == "grant" else mem.revoke)(args.grantee, ds, args.permission)
            done = "granted" if c == "grant" else "revoked"
            print(f"{done} {args.permission} on {args.dataset} {'to' if c == 'grant' else 'from'} {args.grantee}")
            return 0
        return await _delete(mem, args)


async def _export(mem: Any, args: argparse.Namespace) -> int:
    """Stream the export; with --output, into a temporary file renamed into place once complete (a failed
    export leaves no half file where the person expects a whole one)."""
    lines = mem.export(dataset=args.dataset, entity=args.entity, data_ids=args.item, everything=args.everything)
    if not args.output:
        async for line in lines:
            sys.stdout.write(line + "\n")
        return 0
    import anyio

    out = anyio.Path(args.output)  # made absolute in _main
    tmp = out.with_name(f".{out.name}.partial")
    count = -1
    try:
        async with await anyio.open_file(tmp, "w", encoding="utf-8") as fh:
            async for line in lines:
                await fh.write(line + "\n")
                count += 1
        await tmp.replace(out)
    finally:
        await tmp.unlink(missing_ok=True)
    print(f"exported {count} item(s) to {out}", file=sys.stderr)
    return 0


async def _token(settings: Settings, args: argparse.Namespace) -> int:
    from memsweep.server.auth import create_token, revoke_tokens
    from memsweep.storage.stores.metadata import MetadataStore, sqlite_url

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    meta = await MetadataStore.open(settings.metadata_url or sqlite_url(settings.data_dir / "metadata.db"))
    try:
        if args.revoke:
            n = await revoke_tokens(meta, token=args.revoke)
            print(f"revoked {n} token(s)")
            return 0 if n else 1
        if not args.grantee:
            print("error: name the user: memsweep token USER", file=sys.stderr)
            return 2
        if args.revoke_all:
            print(f"revoked {await revoke_tokens(meta, user=args.grantee)} token(s) of {args.grantee}")
            return 0
        token = await create_token(meta, args.grantee)
        print(token)
        print(f"(a bearer token for {args.grantee}; shown once, stored hashed)", file=sys.stderr)
        return 0
    finally:
        await meta.close()


async def _delete(mem: Any, args: argparse.Namespace) -> int:
    from memsweep.api import forget_target, prune_target
    from memsweep.storage.deletion.deleter import Target

    erase = not getattr(args, "keep_bytes", False)
    if args.command == "rm":
        if args.item:
            target = Target("delete_data", "item", data_id=args.item, dataset=args.dataset)
        else:
            target = Target("empty_dataset", "dataset", dataset=args.dataset)
    elif args.command == "forget":
        if args.query is not None:
            found = await mem.forget(query=args.query, dataset=args.dataset, limit=args.limit)
            rows = [[f"{h.score:.3f}", h.data_id, h.snippet[:60]] for h in found.candidates]
            _print(found, args.json, _table(rows, ["score", "id", "snippet"]) + "\n" + in_cli_words(found.message))
            return 0
        items = args.item or []
        target = forget_target(
            items[0] if len(items) == 1 else None, args.dataset, args.everything, args.memory_only, args.entity,
            items if len(items) > 1 else None,
        )  # fmt: skip
    else:
        target = prune_target(args.files, args.graph, args.vector, args.metadata, args.cache)
    preview = await mem.run(target, dry_run=True)
    nothing = preview.message.startswith("Nothing")
    if args.dry_run or nothing:
        _print(preview, args.json, preview.message)
        return 0
    if not args.yes:
        print(preview.message, file=sys.stderr)
        print("Delete? [y/N] ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in {"y", "yes"}:
            print("Nothing was deleted.", file=sys.stderr)
            return 1
    report = await mem.run(
        target, erase=erase, expected_fingerprint=preview.fingerprint, progress=_progress_bar(),
        verify=getattr(args, "verify", False),
    )  # fmt: skip
    _print(report, args.json, report.message)
    return 0


def _progress_bar():  # type: ignore[no-untyped-def]
    """A one-line bar on a terminal (stderr); silent when piped."""
    if not sys.stderr.isatty():
        return None

    async def show(done: int, total: int, what: str) -> None:
        filled = int(20 * done / total)
        end = "\n" if done >= total else ""
        print(
            f"\r[{'#' * filled}{'.' * (20 - filled)}] {done}/{total} {what:<45}", end=end, file=sys.stderr, flush=True
        )

    return show
