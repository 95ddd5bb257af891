"""Concurrent calls in one process and two `memsweep serve` processes on one data directory."""

import fcntl
import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from memsweep.api import Memory
from memsweep.config import Settings
from memsweep.errors import NotFound
from memsweep.server.app import create_server

pytestmark = pytest.mark.anyio


async def test_two_deletes_of_one_item_exactly_one_succeeds(mem: Memory) -> None:
    for _ in range(3):
        item = await mem.add("notes", text="Alice moved to New York.")
        outcomes: list[str] = []

        async def delete(item=item, outcomes=outcomes) -> None:  # type: ignore[no-untyped-def]
            try:
                await mem.datasets.delete_data(dataset_id=item.dataset_id, data_id=item.data_id)
                outcomes.append("ok")
            except NotFound:
                outcomes.append("not-found")

        async with anyio.create_task_group() as tg:
            tg.start_soon(delete)
            tg.start_soon(delete)
        assert sorted(outcomes) == ["not-found", "ok"]
    assert (await mem.doctor()).consistent


async def test_adds_racing_deletes_of_one_dataset(mem: Memory) -> None:
    seed = [await mem.add("busy", text=f"Seed memory {i} about Oslo.") for i in range(10)]
    added: list[str] = []

    async def adder() -> None:
        for i in range(15):
            added.append((await mem.add("busy", text=f"Racing memory {i} about Oslo.")).data_id)

    async def deleter() -> None:
        for item in seed:
            await mem.datasets.delete_data(dataset_id=item.dataset_id, data_id=item.data_id)

    async def reader() -> None:
        for _ in range(15):
            await mem.search("Oslo")
            await mem.datasets.list_datasets()

    async with anyio.create_task_group() as tg:
        tg.start_soon(adder)
        tg.start_soon(deleter)
        tg.start_soon(reader)
    left = {i.id for i in await mem.datasets.list_data("busy")}
    assert left == set(added)
    assert (await mem.doctor()).consistent


async def test_preview_token_racing_an_add_is_refused(settings: Settings) -> None:
    async with Client(create_server(settings), mode="legacy") as c:
        await c.call_tool("add", {"dataset": "notes", "text": "Alice moved to New York."})
        tok = (await c.call_tool("empty_dataset", {"dataset_id": "notes", "dry_run": True})).structured_content
        async with anyio.create_task_group() as tg:
            tg.start_soon(c.call_tool, "add", {"dataset": "notes", "text": "Bob arrived meanwhile."})
        r = await c.call_tool("empty_dataset", {"dataset_id": "notes", "confirm_token": tok["confirm_token"]})
        assert not r.structured_content["executed"] and r.structured_content["items"] == 2
        listed = (await c.call_tool("list_datasets", {})).structured_content["datasets"]
        assert listed[0]["items"] == 2


async def test_two_serve_processes_share_one_data_directory(tmp_path: Path) -> None:
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(tmp_path / "d"))
    params = StdioServerParameters(command=sys.executable, args=["-m", "memsweep", "serve"], env=env)
    async with Client(params, mode="legacy") as desktop, Client(params, mode="legacy") as ide:
        ids: dict[str, list[str]] = {"desktop": [], "ide": []}

        async def work(name: str, client: Client) -> None:
            for i in range(8):
                r = await client.call_tool("add", {"dataset": name, "text": f"{name} memory {i} about Lisbon."})
                assert not r.is_error, r.content[0].text
                ids[name].append(r.structured_content["data_id"])
            for data_id in ids[name][:4]:
                r = await client.call_tool("delete_data", {"dataset_id": name, "data_id": data_id})
                assert not r.is_error, r.content[0].text

        async with anyio.create_task_group() as tg:
            tg.start_soon(work, "desktop", desktop)
            tg.start_soon(work, "ide", ide)
        for client in (desktop, ide):
            listed = (await client.call_tool("list_datasets", {})).structured_content["datasets"]
            assert sorted((d["name"], d["items"]) for d in listed) == [("desktop", 4), ("ide", 4)]
        # the other process sees this one's adds in search, too
        hits = (await ide.call_tool("search", {"query": "desktop memory Lisbon"})).structured_content["hits"]
        assert {h["data_id"] for h in hits} & set(ids["desktop"][4:])
    async with Memory(Settings(data_dir=tmp_path / "d")) as mem:
        report = await mem.doctor()
        assert report.consistent, report.findings


def _lease_is_free(data_dir: Path) -> bool:
    fd = os.open(data_dir / ".memsweep.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops a lock this test took
    return True


async def test_a_pause_keeps_the_lease_and_a_waiting_process_gets_it(tmp_path: Path) -> None:
    """A session's pause does not close the graph (the next call would pay the reopen), yet another process
    that asks for the directory gets it long before the holder's own release time."""
    from memsweep.storage.stores.lock import IDLE_RELEASE_SECONDS

    data_dir = tmp_path / "d"
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(data_dir))
    params = StdioServerParameters(command=sys.executable, args=["-m", "memsweep", "serve"], env=env)
    async with Client(params, mode="legacy") as desktop:
        r = await desktop.call_tool("add", {"dataset": "desk", "text": "Alice moved to Lisbon."})
        assert not r.is_error, r.content[0].text
        await anyio.sleep(1.5)  # three times the old 0.5 s release
        assert not _lease_is_free(data_dir)  # still held: the next call finds the graph open
        # A second process (here: this one) waits far less than the holder would keep the lease alone.
        assert IDLE_RELEASE_SECONDS > 10
        async with Memory(Settings(data_dir=data_dir, lock_timeout_seconds=5.0)) as ide:
            item = await ide.add("ide", text="Bob moved to Oslo.")
            await ide.datasets.delete_data(dataset_id="ide", data_id=item.data_id)
        # and the desktop gets it back in turn
        r = await desktop.call_tool("add", {"dataset": "desk", "text": "Carol moved to Porto."})
        assert not r.is_error, r.content[0].text
        listed = (await desktop.call_tool("list_datasets", {})).structured_content["datasets"]
        assert sorted((d["name"], d["items"]) for d in listed) == [("desk", 2), ("ide", 0)]


async def test_a_busy_holder_lets_a_waiting_process_in_between_its_calls(tmp_path: Path) -> None:
    """A client that never pauses must not keep another process waiting into its timeout."""
    data_dir = tmp_path / "d"
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(data_dir))
    params = StdioServerParameters(command=sys.executable, args=["-m", "memsweep", "serve"], env=env)
    async with Client(params, mode="legacy") as busy:
        assert not (await busy.call_tool("add", {"dataset": "busy", "text": "warm up"})).is_error
        done = anyio.Event()

        async def hammer() -> None:
            i = 0
            while not done.is_set():
                r = await busy.call_tool("add", {"dataset": "busy", "text": f"note {i} about Lisbon"})
                assert not r.is_error, r.content[0].text
                i += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(hammer)
            await anyio.sleep(0.5)
            try:
                async with Memory(Settings(data_dir=data_dir, lock_timeout_seconds=5.0)) as other:
                    await other.add("other", text="Dave moved to Rome.")
            finally:
                done.set()


async def test_a_clean_store_opens_without_the_lease_or_the_graph(tmp_path: Path) -> None:
    """Opening a store left clean reads metadata only: a fresh server's first read does not wait for Kuzu,
    and another process holding the directory does not delay it. A write then takes the lease as usual."""
    settings = Settings(data_dir=tmp_path / "d")
    async with Memory(settings) as mem:
        await mem.add("notes", text="Alice moved to Lisbon.", entities=[{"name": "Alice"}])
    async with Memory(settings) as mem:
        assert not mem.engine.graph.is_open and not mem.engine.lock.held
        assert [d.items for d in await mem.datasets.list_datasets()] == [1]
        assert not mem.engine.graph.is_open
        await mem.add("notes", text="Bob moved to Oslo.")
        assert mem.engine.graph.is_open and mem.engine.lock.held
    # Left unclean (a graph mark as a killed holder leaves it): the next open recovers under the lease.
    (settings.data_dir / ".graph-open").touch()
    async with Memory(settings) as mem:
        assert mem.engine.lock.held
        assert (await mem.doctor()).consistent
