"""The server's engine process (server/engine_process.py): it ends when the server is idle and a call starts
another; a kill of either process loses nothing confirmed. Real processes, real stores, the real client."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from memsweep.api import Memory
from memsweep.config import Settings
from memsweep.server.app import create_server
from memsweep.server.engine_process import EngineProcess
from memsweep.storage import heap
from memsweep.storage.stores.metadata import MetadataStore, get_state, sqlite_url

pytestmark = pytest.mark.anyio


async def call(c: Client, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await c.call_tool(tool, args or {})
    assert not r.is_error, r.content[0].text
    return r.structured_content


def engine_of(server: Any) -> EngineProcess:
    (state,) = server.app_states
    assert state.engine is not None
    return state.engine


async def until(condition: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def environ_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/environ").read_text().split("\0")


async def test_an_idle_server_ends_its_engine_process_and_the_next_call_starts_one(settings: Settings) -> None:
    server = create_server(settings.with_(engine_idle_seconds=0.5))
    async with Client(server, mode="legacy") as c:
        engine = engine_of(server)
        added = await call(c, "add", {"dataset": "notes", "text": "Alice moved to Lisbon in May."})
        first = engine.pid
        assert first is not None and running(first)
        # no per-thread cache of freed blocks: the graph's calls get zeroed blocks only (storage/heap.py)
        assert f"GLIBC_TUNABLES={heap.NO_THREAD_CACHE}" in environ_of(first)
        await until(lambda: engine.pid is None)
        await until(lambda: not running(first))

        # a new process, the same store: what was added is listed and found
        page = await call(c, "list_data", {"dataset_id": "notes"})
        assert [i["id"] for i in page["items"]] == [added["data_id"]]
        assert engine.pid not in (None, first) and engine.starts == 2
        hits = await call(c, "search", {"query": "Lisbon"})
        assert [h["data_id"] for h in hits["hits"]] == [added["data_id"]]

        # an erase=false delete: the sweep it leaves runs when the idle process closes
        gone = await call(c, "delete_data", {"dataset_id": "notes", "data_id": added["data_id"], "erase": False})
        assert gone["executed"] and gone["items"] == 1
        second = engine.pid
        assert second is not None
        await until(lambda: engine.pid is None)
    meta = await MetadataStore.open(settings.metadata_url or sqlite_url(settings.data_dir / "metadata.db"))
    try:
        assert await meta.call(get_state, "erase_pending") is None  # erased before that process ended
    finally:
        await meta.close()


async def test_a_killed_engine_process_is_replaced_and_its_delete_finishes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Memory(settings) as mem:
        kept = await mem.add("notes", text="Bob keeps bees in Porto.", entities=[{"name": "Porto"}])
        doomed = await mem.add("notes", text="Carol left Porto for Oslo.", entities=[{"name": "Porto"}])
    monkeypatch.setenv("MEMSWEEP_CRASH_AT", "after_graph")  # the engine process dies inside the delete
    server = create_server(settings)
    async with Client(server, mode="legacy") as c:
        engine = engine_of(server)
        r = await c.call_tool("delete_data", {"dataset_id": "notes", "data_id": doomed.data_id})
        assert r.is_error
        assert "engine process ended" in r.content[0].text and "list_data" in r.content[0].text
        monkeypatch.delenv("MEMSWEEP_CRASH_AT")
        # the next call starts a fresh process, whose open finishes the journalled delete
        page = await call(c, "list_data", {"dataset_id": "notes"})
        assert [i["id"] for i in page["items"]] == [kept.data_id]
        assert engine.starts == 2
        hits = await call(c, "search", {"query": "Oslo"})
        assert doomed.data_id not in [h["data_id"] for h in hits["hits"]]
    async with Memory(settings) as mem:
        report = await mem.doctor()
        assert report.consistent, report


async def test_an_expiry_wakes_the_engine_process_to_sweep(settings: Settings) -> None:
    async with Memory(settings) as mem:
        soon = datetime.now(UTC) + timedelta(seconds=2)
        item = await mem.add("notes", text="A code valid for two seconds.", expires_at=soon)
    server = create_server(settings.with_(engine_idle_seconds=0.3))
    async with Client(server, mode="legacy"):
        engine = engine_of(server)
        await until(lambda: engine.starts == 1 and engine.pid is None)  # idle before the expiry
        await until(lambda: engine.starts == 2, seconds=30)  # woken for the expiry, which its open sweeps
        await until(lambda: engine.pid is None)
    async with Memory(settings) as mem:
        (event,) = await mem.audit(1)
        assert event.op == "expired" and event.data_ids == [item.data_id]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _engine_processes() -> list[int]:
    """This test process's engine processes (an in-memory server's engine is this process's child)."""
    found = []
    for pid in _children(os.getpid()):
        try:
            if b"memsweep.server.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except FileNotFoundError:  # it ended meanwhile
            continue
    return found


def _server_pid() -> int:
    (pid,) = [p for p in _children(os.getpid()) if b"serve" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return pid


async def test_a_killed_server_leaves_no_engine_process_and_a_consistent_store(tmp_path: Path) -> None:
    """SIGKILL on `memsweep serve` over stdio: its engine process sees its input end, finishes the erase
    that was due and exits; the data directory is free and consistent."""
    data_dir = tmp_path / "store"
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(data_dir))
    params = StdioServerParameters(command=sys.executable, args=["-m", "memsweep", "serve"], env=env)
    async with Client(params, mode="legacy") as c:
        added = await call(c, "add", {"dataset": "notes", "text": "Dora's PIN is 4711."})
        await call(c, "delete_data", {"dataset_id": "notes", "data_id": added["data_id"], "erase": False})
        await call(c, "add", {"dataset": "notes", "text": "Eve likes tea."})
        serve = _server_pid()
        (worker,) = _children(serve)
        os.kill(serve, signal.SIGKILL)
        await until(lambda: not running(worker))
    async with Memory.open(data_dir) as mem:
        report = await mem.doctor()
        assert report.consistent, report
        (ds,) = await mem.datasets.list_datasets()
        assert [i.name for i in await mem.datasets.list_data(ds.id)] != []


async def test_an_engine_process_that_cannot_open_says_why_and_the_next_call_tries_again(
    settings: Settings,
) -> None:
    settings.data_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.data_dir.write_text("not a directory")  # what a mistyped MEMSWEEP_DATA_DIR can point at
    server = create_server(settings)
    async with Client(server, mode="legacy") as c:
        r = await c.call_tool("list_datasets", {})
        assert r.is_error
        assert str(settings.data_dir) in r.content[0].text, r.content[0].text
        settings.data_dir.unlink()
        assert await call(c, "list_datasets") == {"datasets": []}
        assert engine_of(server).starts == 2


async def test_calls_around_the_idle_end_all_land(settings: Settings) -> None:
    """Calls that come just before, during and after the engine process's idle end: each waits for a
    closing process (and its close) and none is lost or refused; one engine process at a time."""
    server = create_server(settings.with_(engine_idle_seconds=0.25))
    added = []
    async with Client(server, mode="legacy") as c:
        engine = engine_of(server)
        for i, pause in enumerate([0.0, 0.2, 0.3, 0.25, 0.5, 0.27, 0.1, 0.35, 0.26, 0.0]):
            await asyncio.sleep(pause)
            added.append((await call(c, "add", {"dataset": "notes", "text": f"Note {i} about Quartz."}))["data_id"])
            assert len(_engine_processes()) <= 1
        assert engine.starts >= 2  # some calls did come after an idle end
        page = await call(c, "list_data", {"dataset_id": "notes", "limit": 50})
        assert sorted(i["id"] for i in page["items"]) == sorted(added)
        hits = await call(c, "search", {"query": "Quartz", "limit": 20})
        assert sorted(h["data_id"] for h in hits["hits"]) == sorted(added)
