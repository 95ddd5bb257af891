"""The real server through the SDK's Client, in memory on both protocol versions, and over stdio."""

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp_types import ElicitResult
from memsweep.config import Settings
from memsweep.server.app import create_server

pytestmark = pytest.mark.anyio
MODES = ["legacy", "auto"]  # legacy = 2025-11-25 handshake; auto = the newest (2026-07-28)

EXPECTED_TOOLS = {
    # name: (readOnly, destructive, idempotent)
    "add": (False, False, False),
    "search": (True, False, True),
    "list_datasets": (True, False, True),
    "list_data": (True, False, True),
    "delete_data": (False, True, False),
    "empty_dataset": (False, True, False),
    "delete_all": (False, True, False),
    "forget": (False, True, False),
    "prune": (False, True, False),
}
EXPECTED_PARAMS = {
    "add": ["copy", "dataset", "entities", "expires_at", "name", "path", "relations", "text", "ttl_days"],
    "search": ["dataset", "limit", "query"],
    "list_datasets": [],
    "list_data": ["cursor", "dataset_id", "limit"],
    "delete_data": ["data_id", "dataset_id", "dry_run", "erase", "verify"],
    "empty_dataset": ["confirm_token", "dataset_id", "dry_run", "erase", "verify"],
    "delete_all": ["confirm_token", "dry_run", "erase", "verify"],
    "forget": [
        "confirm_token",
        "data_id",
        "data_ids",
        "dataset",
        "dry_run",
        "entity",
        "erase",
        "everything",
        "limit",
        "memory_only",
        "query",
        "verify",
    ],
    "prune": ["cache", "confirm_token", "dry_run", "files", "graph", "metadata", "vector"],
}


def _client(settings: Settings, mode: str, **kw: Any) -> Client:
    return Client(create_server(settings), mode=mode, **kw)


async def call(c: Client, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await c.call_tool(tool, args or {})
    assert not r.is_error, r.content[0].text
    return r.structured_content


async def error(c: Client, tool: str, args: dict[str, Any]) -> str:
    r = await c.call_tool(tool, args)
    assert r.is_error, r.structured_content
    return r.content[0].text


@pytest.mark.parametrize("mode", MODES)
async def test_tool_contract(settings: Settings, mode: str) -> None:
    async with _client(settings, mode) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == set(EXPECTED_TOOLS)
    for name, (ro, destructive, idem) in EXPECTED_TOOLS.items():
        a = tools[name].annotations
        assert (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint) == (
            ro,
            destructive,
            idem,
            False,
        )
        assert sorted(tools[name].input_schema.get("properties", {})) == EXPECTED_PARAMS[name]
        assert tools[name].output_schema is not None and tools[name].description


@pytest.mark.parametrize("mode", MODES)
async def test_every_tool_and_token_flow(settings: Settings, mode: str) -> None:
    async with _client(settings, mode) as c:
        a = await call(c, "add", {"dataset": "notes", "text": "Alice moved to New York.",
                                  "entities": [{"name": "Alice"}, {"name": "New York"}]})  # fmt: skip
        b = await call(c, "add", {"dataset": "trips", "text": "Bob flew to New York."})
        assert (await call(c, "search", {"query": "Alice"}))["hits"][0]["data_id"] == a["data_id"]
        listed = await call(c, "list_datasets")
        assert {d["name"] for d in listed["datasets"]} == {"notes", "trips"}
        page = await call(c, "list_data", {"dataset_id": a["dataset_id"], "limit": 1})
        assert page["items"][0]["id"] == a["data_id"] and page["next_cursor"] is None

        # a dry run returns a token and changes nothing
        dry = await call(c, "empty_dataset", {"dataset_id": "notes", "dry_run": True})
        assert dry["dry_run"] and not dry["executed"] and dry["confirm_token"] and dry["items"] == 1
        assert dry["kept_shared"] == ["New York"]
        # without a token: nothing deleted, a token returned
        first = await call(c, "empty_dataset", {"dataset_id": "notes"})
        assert first["confirmation_required"] and not first["executed"]
        assert (await call(c, "list_datasets"))["datasets"][0]["items"] == 1
        # a token for other arguments is refused
        msg = await error(c, "empty_dataset", {"dataset_id": "trips", "confirm_token": first["confirm_token"]})
        assert "different dataset" in msg
        # a token after the data changed: refused, fresh preview with a new token
        await call(c, "add", {"dataset": "notes", "text": "Alice likes tea."})
        changed = await call(c, "empty_dataset", {"dataset_id": "notes", "confirm_token": first["confirm_token"]})
        assert not changed["executed"] and changed["confirm_token"] and "changed" in changed["message"]
        assert changed["items"] == 2
        # the fresh token works once, not twice
        done = await call(c, "empty_dataset", {"dataset_id": "notes", "confirm_token": changed["confirm_token"]})
        assert done["executed"] and done["items"] == 2 and done["datasets"] == 1
        assert "Not found" in await error(
            c, "empty_dataset", {"dataset_id": "notes", "confirm_token": changed["confirm_token"]}
        )

        # delete_data: dry run, real, twice is an error, hostile ids
        await call(c, "delete_data", {"dataset_id": b["dataset_id"], "data_id": b["data_id"], "dry_run": True})
        for bad in ["x' OR '1'='1", "*", "../..", "\x00"]:
            assert "Invalid input" in await error(c, "delete_data", {"dataset_id": b["dataset_id"], "data_id": bad})
        gone = await call(c, "delete_data", {"dataset_id": b["dataset_id"], "data_id": b["data_id"]})
        assert gone["executed"] and gone["items"] == 1
        assert "Not found" in await error(c, "delete_data", {"dataset_id": b["dataset_id"], "data_id": b["data_id"]})

        # forget an item runs at once; forget everything / delete_all are guarded; an empty plan runs at once
        c1 = await call(c, "add", {"dataset": "x", "text": "Carol likes Paris."})
        assert (await call(c, "forget", {"data_id": c1["data_id"]}))["executed"]
        await call(c, "add", {"dataset": "x", "text": "Dave likes Rome."})
        f = await call(c, "forget", {"everything": True})
        assert f["confirmation_required"]
        assert (await call(c, "forget", {"everything": True, "confirm_token": f["confirm_token"]}))["executed"]
        empty = await call(c, "delete_all")
        assert empty["executed"] and empty["items"] == 0 and empty["datasets"] == 0  # forget took "trips" too


@pytest.mark.parametrize("mode", MODES)
async def test_token_expiry_and_forgery(settings: Settings, mode: str) -> None:
    server = create_server(settings.with_(token_ttl_seconds=0))
    async with Client(server, mode=mode) as c:
        await call(c, "add", {"dataset": "notes", "text": "Alice moved to New York."})
        tok = (await call(c, "delete_all", {"dry_run": True}))["confirm_token"]
        assert "expired" in await error(c, "delete_all", {"confirm_token": tok})
        assert "unknown" in await error(c, "delete_all", {"confirm_token": "ms_forged"})
        assert (await call(c, "list_datasets"))["datasets"][0]["items"] == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ["accept", "decline", "cancel", "accept-false"])
async def test_elicitation(settings: Settings, mode: str, action: str) -> None:
    asked: list[str] = []

    async def answer(_ctx: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        if action == "accept":
            return ElicitResult(action="accept", content={"confirm": True})
        if action == "accept-false":
            return ElicitResult(action="accept", content={"confirm": False})
        return ElicitResult(action=action)

    async with _client(settings, mode, elicitation_callback=answer) as c:
        await call(c, "add", {"dataset": "notes", "text": "Alice moved to New York."})
        r = await call(c, "empty_dataset", {"dataset_id": "notes"})
        assert len(asked) == 1 and "1 item" in asked[0]
        left = (await call(c, "list_datasets"))["datasets"]
        if action == "accept":
            assert r["executed"] and left == []
        else:
            assert not r["executed"] and not r["confirm_token"] and left[0]["items"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_prune_disabled_and_enabled(settings: Settings, mode: str) -> None:
    async with _client(settings, mode) as c:
        await call(c, "add", {"dataset": "notes", "text": "Alice moved to New York."})
        dry = await call(c, "prune", {"vector": True, "dry_run": True})
        assert dry["confirm_token"] is None and "MEMSWEEP_ALLOW_PRUNE" in dry["message"] and dry["vectors"] == 1
        assert "disabled" in await error(c, "prune", {"vector": True})
    async with _client(settings.with_(allow_prune=True), mode) as c:
        tok = (await call(c, "prune", {"vector": True, "graph": True}))["confirm_token"]
        done = await call(c, "prune", {"vector": True, "graph": True, "confirm_token": tok})
        assert done["executed"] and done["layers"]["vector"]["vectors"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_stdio_subprocess(tmp_path: Path, mode: str) -> None:
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(tmp_path / "d"), MEMSWEEP_USER="stdio-user")
    params = StdioServerParameters(command=sys.executable, args=["-m", "memsweep", "serve"], env=env)
    async with Client(params, mode=mode) as c:
        assert len((await c.list_tools()).tools) == 9
        a = await call(c, "add", {"dataset": "notes", "text": "Alice moved to New York."})
        progress: list[float] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(done)

        r = await c.call_tool(
            "delete_data", {"dataset_id": "notes", "data_id": a["data_id"]}, progress_callback=on_progress
        )
        assert not r.is_error and r.structured_content["executed"]
        assert (await call(c, "list_datasets"))["datasets"][0]["owner"] == "stdio-user"
    # the engine process sends the first and the last step, and those between when 50 ms have passed
    assert progress == sorted(progress) and progress[0] == 1 and progress[-1] == 6


FIRST_READ = """
import asyncio, json, sys
from pathlib import Path
from mcp import Client
from memsweep.config import Settings
from memsweep.server.app import create_server

def native(pid):
    names = {Path(line.split()[-1]).name for line in Path(f"/proc/{pid}/maps").read_text().splitlines()}
    return sorted(n for n in names if n.endswith(".so") or ".so." in n)

async def main():
    settings = Settings(data_dir=Path(sys.argv[1]), user=sys.argv[2], graph_backend=sys.argv[3])
    server = create_server(settings)
    async with Client(server, mode="legacy") as c:
        r = await c.call_tool("list_datasets", {})
        assert not r.is_error, r.content[0].text
        r = await c.call_tool("list_data", {"dataset_id": "notes"})
        assert not r.is_error, r.content[0].text
        out = {"items": len(r.structured_content["items"]), "server_modules": sorted(sys.modules),
               "engine_libraries": native(server.app_states[0].engine.pid)}
    # the Python API (and the CLI) in this same fresh process: a read alone
    from memsweep.api import Memory
    async with Memory(settings) as mem:
        out["api_items"] = len(await mem.datasets.list_data("notes"))
    out["api_modules"] = sorted(sys.modules)  # after the close too: a read-only close takes no lease
    print(json.dumps(out))

asyncio.run(main())
"""


async def test_a_fresh_process_loads_the_engines_where_they_are_used(
    settings: Settings, metadata_backend: str | None
) -> None:
    """Clients that start a server per call pay its start at every call (issue 12.5). The server's side loads
    no storage engine and not SQLAlchemy (it answers the handshake while its engine process loads them on the
    other core); the engine process has loaded every engine before it serves, so no import stalls its calls
    later; a read through the Python API or the CLI loads no vector or graph engine, no numpy, and on SQLite
    not SQLAlchemy's PostgreSQL dialect; neither process loads SQLAlchemy's asyncio layer for these reads."""
    import json
    import subprocess

    import anyio.to_thread
    from memsweep.api import Memory

    async with Memory(settings) as mem:
        for i in range(3):
            await mem.add("notes", text=f"Alice met Bob in Oslo, note {i}.", entities=[{"name": "Alice"}])
    argv = [sys.executable, "-c", FIRST_READ, str(settings.data_dir), settings.user, settings.graph_backend]
    proc = await anyio.to_thread.run_sync(lambda: subprocess.run(argv, capture_output=True, text=True, timeout=120))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["items"] == out["api_items"] == 3
    heavy = {"numpy", "lance", "pyarrow", "kuzu", "ladybug"}
    assert (heavy | {"sqlalchemy"}).isdisjoint(out["server_modules"]), sorted(heavy & set(out["server_modules"]))
    graph = "_kuzu" if settings.graph_backend == "kuzu" else "_lbug"
    for lib in ("_multiarray_umath", "lance", "libarrow", graph):
        assert any(name.startswith(lib) for name in out["engine_libraries"]), (lib, out["engine_libraries"])
    assert not any(name.startswith("_greenlet") for name in out["engine_libraries"])  # no asyncio layer (below)
    if metadata_backend is None:
        heavy.add("sqlalchemy.dialects.postgresql")
    # Reads run on the plain driver (MetadataStore.call): SQLAlchemy's asyncio layer, its ORM and aiosqlite
    # are made and imported only by the rare calls that need them (8 MB, ~30 ms of every fresh process).
    heavy |= {"sqlalchemy.ext.asyncio", "sqlalchemy.orm", "aiosqlite", "greenlet"}
    assert heavy.isdisjoint(out["api_modules"]), sorted(heavy & set(out["api_modules"]))
    assert "sqlalchemy" in out["api_modules"]  # the control: the API's read did run here


async def test_token_from_one_process_confirms_in_another(tmp_path: Path) -> None:
    """Clients that start a server per call (the Inspector's CLI, scripts): preview in one `memsweep serve`,
    confirm in a fresh one; the token then stays spent in every process."""
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(tmp_path / "d"))
    params = StdioServerParameters(command=sys.executable, args=["-m", "memsweep", "serve"], env=env)
    async with Client(params, mode="legacy") as first:
        await call(first, "add", {"dataset": "notes", "text": "Alice moved to New York."})
        preview = await call(first, "empty_dataset", {"dataset_id": "notes"})
    assert preview["confirmation_required"] and preview["confirm_token"]
    async with Client(params, mode="legacy") as second, Client(params, mode="legacy") as third:
        done = await call(second, "empty_dataset", {"dataset_id": "notes", "confirm_token": preview["confirm_token"]})
        assert done["executed"] and done["items"] == 1
        await call(third, "add", {"dataset": "notes", "text": "A new note."})
        again = await error(third, "empty_dataset", {"dataset_id": "notes", "confirm_token": preview["confirm_token"]})
        assert "already used" in again
        assert (await call(third, "list_datasets"))["datasets"][0]["items"] == 1
