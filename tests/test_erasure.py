"""True erasure, proved by reading every byte of the data directory after each deleting call returns.

Positive controls: the kept item's marker must still be found (LanceDB compresses strings, so finding
nothing proves nothing without one) and so must its vector bytes; the deleted item's marker and the exact
float32 bytes of its vectors must be found nowhere.
"""

import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from memsweep.api import Memory
from memsweep.config import Settings

pytestmark = pytest.mark.anyio

# Under `--metadata=postgres` the metadata (chunk texts among it) lives in the PostgreSQL server's data
# directory, so every scan also reads that: all of PGDATA, WAL included. Markers carry a per-run suffix,
# since PGDATA is shared by every test of the session. (Other test modules import `_scan` too.)


def _mark(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8].upper()}"


def _scan(root: Path, needle: bytes) -> list[str]:
    from tests import pgserver

    hits = []
    for base in [root, *([pgserver.ACTIVE.data_dir] if pgserver.ACTIVE else [])]:
        for f in base.rglob("*"):
            try:
                if f.is_file() and needle in f.read_bytes():
                    hits.append(str(f))
            except FileNotFoundError:  # PostgreSQL removed it while we walked (a retired WAL segment)
                continue
    return hits


async def _vector_bytes(mem: Memory, data_id: str) -> list[bytes]:
    from memsweep.storage.stores.schema import chunks
    from sqlalchemy import select

    async with mem.engine.meta.read() as conn:
        ids = [r[0] for r in await conn.execute(select(chunks.c.id).where(chunks.c.data_id == data_id))]
    rows = mem.engine.vectors.rows_for(ids)
    return [np.asarray(v, dtype=np.float32).tobytes() for v in rows.values()]


@pytest.mark.parametrize("how", ["delete_data", "forget", "empty_dataset", "delete_all"])
async def test_deleted_bytes_are_gone(settings: Settings, how: str) -> None:
    gone_marker, kept_marker = _mark("QXGONEMARKER"), _mark("QXKEPTMARKER")
    async with Memory(settings) as mem:
        for i in range(30):  # enough rows that a lone deletion would not trigger LanceDB's own rewrite
            await mem.add("filler", text=f"Filler memory number {i} about Zurich.")
        gone = await mem.add("victim", text=f"The secret is {gone_marker}. Alice knows it.")
        keep_ds = "keeper" if how != "delete_all" else "readonly"
        kept = await (mem if how != "delete_all" else mem.as_user("bob")).add(
            keep_ds, text=f"Keep {kept_marker} safe, Bob."
        )
        if how == "delete_all":
            await mem.as_user("bob").grant("alice", kept.dataset_id, "read")
        gone_vectors = await _vector_bytes(mem, gone.data_id)
        assert gone_vectors and _scan(settings.data_dir, gone_marker.encode())
        if settings.metadata_url:
            # What autovacuum may do at any moment, done now: ANALYZE samples rows into pg_statistic.
            async with mem.engine.meta.write() as conn:
                from sqlalchemy import text

                await conn.execute(text("ANALYZE"))
        if how == "delete_data":
            await mem.datasets.delete_data(dataset_id=gone.dataset_id, data_id=gone.data_id)
        elif how == "forget":
            await mem.forget(data_id=gone.data_id)
        elif how == "empty_dataset":
            await mem.datasets.empty_dataset(dataset_id=gone.dataset_id)
        else:
            await mem.datasets.delete_all()
        assert _scan(settings.data_dir, gone_marker.encode()) == []
        for vec in gone_vectors:
            assert _scan(settings.data_dir, vec) == []
        # positive controls: what was not deleted is still readable in the raw bytes
        assert _scan(settings.data_dir, kept_marker.encode())
        for vec in await _vector_bytes(mem, kept.data_id):
            assert _scan(settings.data_dir, vec)


async def test_erase_false_defers_to_close(settings: Settings) -> None:
    marker = _mark("QXDEFERREDMARKER")
    async with Memory(settings) as mem:
        for i in range(30):
            await mem.add("filler", text=f"Filler memory number {i}.")
        gone = await mem.add("victim", text=f"Deferred {marker}.")
        vectors = await _vector_bytes(mem, gone.data_id)
        await mem.datasets.delete_data(dataset_id=gone.dataset_id, data_id=gone.data_id, erase=False)
        assert any(_scan(settings.data_dir, v) for v in vectors)  # still on disk: erase was deferred
    for v in vectors:  # the sweep ran at close
        assert _scan(settings.data_dir, v) == []


def _reader_program(settings: Settings, metadata_url: str | None) -> str:
    """A second process that opens a read transaction on the metadata and keeps its snapshot."""
    if metadata_url is None:
        return (
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(settings.data_dir / 'metadata.db')!r}, isolation_level=None)\n"
            "c.execute('BEGIN'); c.execute('SELECT count(*) FROM chunks').fetchone()\n"
            "print('reading', flush=True); sys.stdin.readline()\n"
        )
    conninfo = metadata_url.replace("postgresql+psycopg://", "postgresql://")
    return (
        "import psycopg, sys\n"
        f"c = psycopg.connect({conninfo!r})\n"
        "c.execute('BEGIN ISOLATION LEVEL REPEATABLE READ'); c.execute('SELECT count(*) FROM chunks').fetchone()\n"
        "print('reading', flush=True); sys.stdin.readline()\n"
    )


async def test_erase_blocked_by_a_reader_is_reported_pending_not_erased(
    settings: Settings, metadata_backend: str | None
) -> None:
    """Another process holding a read snapshot keeps the erase from completing (SQLite: the WAL checkpoint;
    PostgreSQL: VACUUM cannot remove rows that snapshot sees): the call must not say "Erased from disk";
    once the reader is gone, the sweep erases."""
    import subprocess
    import sys
    import time

    marker = _mark("QXREADERBLOCKS")
    async with Memory(settings) as mem:
        for i in range(5):
            await mem.add("filler", text=f"Filler memory {i}.")
        gone = await mem.add("victim", text=f"Secret {marker} here.")
        reader = subprocess.Popen(  # noqa: ASYNC220 (a real second process, started once)
            [sys.executable, "-c", _reader_program(settings, metadata_backend)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
            started = time.monotonic()
            report = await mem.datasets.delete_data(dataset_id="victim", data_id=gone.data_id)
            assert time.monotonic() - started < 15  # not the 30 s busy timeout
            assert "Erased from disk" not in report.message and "erase is pending" in report.message
            assert _scan(settings.data_dir, marker.encode())  # honestly still there
        finally:
            assert reader.stdin is not None
            reader.stdin.close()
            reader.wait(timeout=30)
            assert reader.stdout is not None
            reader.stdout.close()
    # closing runs the pending erase now that nobody reads
    assert _scan(settings.data_dir, marker.encode()) == []


async def test_background_compaction_keeps_erasure(settings: Settings) -> None:
    """An agent's day: single adds (each one a fragment until the idle fold), deletes with and without erase
    between them; after the folds, no deleted byte is back and the kept ones are all there."""
    import anyio
    from memsweep.storage.engine import COMPACT_MAX_COMMITS

    gone_markers, kept = [], []
    run = _mark("")
    async with Memory(settings) as mem:
        for i in range(COMPACT_MAX_COMMITS + 40):
            item = await mem.add("day", text=f"Turn {i}: QXDAY{i:04d}MARK{run} noted.")
            if i % 10 == 3:
                gone_markers.append((f"QXDAY{i:04d}MARK{run}", await _vector_bytes(mem, item.data_id)))
                await mem.datasets.delete_data(dataset_id="day", data_id=item.data_id, erase=i % 20 == 3)
            else:
                kept.append(item)
            if i % 25 == 0:
                await anyio.sleep(0.4)  # an idle gap: the fold runs
        await anyio.sleep(1.0)
        assert mem.engine.vectors.commits_since_compact == 0  # folded in the background
        import lance

        assert len(lance.dataset(str(mem.engine.vectors.uri)).get_fragments()) <= 2
        for vec in await _vector_bytes(mem, kept[-1].data_id):
            assert _scan(settings.data_dir, vec)  # positive control
    for marker, vectors in gone_markers:
        assert _scan(settings.data_dir, marker.encode()) == [], marker
        for vec in vectors:
            assert _scan(settings.data_dir, vec) == []


@pytest.mark.parametrize("how", ["delete_data", "forget", "empty_dataset", "delete_all", "forget_entity"])
async def test_receipt_with_verify_reports_zero_hits(settings: Settings, how: str) -> None:
    async with Memory(settings) as mem:
        for i in range(20):
            await mem.add("filler", text=f"Filler memory number {i} about Zurich.")
        gone = await mem.add(
            "victim", text="Receipt marker QXRECEIPTGONE is here.", entities=[{"name": "Qxreceiptperson"}]
        )
        needles = [b"Receipt marker QXRECEIPTGONE is here.", *await _vector_bytes(mem, gone.data_id)]
        if how == "delete_data":
            report = await mem.datasets.delete_data(dataset_id="victim", data_id=gone.data_id, verify=True)
        elif how == "forget":
            report = await mem.forget(data_id=gone.data_id, verify=True)
        elif how == "empty_dataset":
            report = await mem.datasets.empty_dataset(dataset_id="victim", verify=True)
        elif how == "forget_entity":
            report = await mem.forget(entity="qxreceiptperson", verify=True)
        else:
            report = await mem.datasets.delete_all(verify=True)
        # A failure names the files that still hold a deleted byte (the report only counts them).
        left = {f for needle in needles for f in _scan(settings.data_dir, needle)} if report.hits else set()
        assert report.verified and report.hits == 0 and report.files_scanned and report.bytes_scanned, left
        assert report.receipt_id and "no deleted text or vector found" in report.message
        receipt = await mem.receipt(report.receipt_id)
        assert receipt.hits == 0 and receipt.erased_at is not None and receipt.removed["vector_rows"] >= 1
        assert "QXRECEIPTGONE" not in receipt.model_dump_json()  # ids, counts and times only


async def test_verify_finds_what_the_erase_left(settings: Settings) -> None:
    """The scan is not a rubber stamp: with the erase deferred (erase=false) the bytes are still on disk, and
    verify says so; once the sweep ran, the receipt records the erase."""
    async with Memory(settings) as mem:
        for i in range(30):
            await mem.add("filler", text=f"Filler memory number {i} about Zurich.")
        gone = await mem.add("victim", text="Deferred receipt marker QXNOTYETGONE.")
        report = await mem.datasets.delete_data(dataset_id="victim", data_id=gone.data_id, erase=False, verify=True)
        assert report.verified and report.hits and report.hits > 0
        assert "deleted bytes found" in report.message
        assert (await mem.receipt(report.receipt_id)).erased_at is None
        rid = report.receipt_id
    async with Memory(settings) as mem:  # the close ran the sweep
        assert (await mem.receipt(rid)).erased_at is not None


def _freed_blocks_with(marker: bytes, smallest: int = 0) -> None:
    """Fill heap blocks of many sizes with `marker` and free them: what a deleted text or vector leaves in
    the process's heap once the code that held it is done with it."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = []
    for size in [s for s in [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536, 262144] if s >= smallest] * 3:
        block = libc.malloc(size)
        ctypes.memmove(block, marker * (size // len(marker)), size)
        blocks.append(block)
    for block in blocks:
        libc.free(block)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
async def test_freed_heap_memory_never_reaches_the_graph_files(settings: Settings) -> None:
    """Kuzu and ladybug write blocks they never filled into their files (storage/heap.py): before the graph's
    calls ran on their own thread with zeroed allocations, blocks freed with a marker in them before and
    between the adds left ~500 copies of it in the graph file, with either backend. Markers freed in every
    thread that runs engine calls, and in the graph thread's heap arena (which other threads can share),
    though not in its own cache of small blocks, where only the graph's frees go (tests/test_heap.py has
    the engine process's case). On ladybug in tests/test_ladybug.py."""
    import anyio
    from memsweep.storage.stores import graph

    marker = _mark("QXFREEDHEAP").encode()[:16]

    async def freed_everywhere() -> None:
        _freed_blocks_with(marker)
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(anyio.to_thread.run_sync, _freed_blocks_with, marker)
        if graph._thread is not None:  # started by the first graph call
            graph._thread.submit(_freed_blocks_with, marker, 2048).result()

    await freed_everywhere()  # before the graph is created
    async with Memory(settings) as mem:
        items = []
        for i in range(40):
            await freed_everywhere()
            relation = {"source": f"Person{i % 7}", "relation": "visited", "target": f"Place{i}"}
            entities = [{"name": f"Person{i % 7}"}, {"name": f"Place{i}"}]
            items.append(await mem.add(f"ds{i % 3}", text=f"Memory {i}.", entities=entities, relations=[relation]))
        assert _scan(settings.data_dir / "graph", marker) == []  # while the graph is open
    await freed_everywhere()  # before it is opened again (a server does that after every idle pause)
    async with Memory(settings) as mem:
        for item in items[:10]:
            await freed_everywhere()
            await mem.datasets.delete_data(dataset_id=item.dataset_id, data_id=item.data_id)
        assert _scan(settings.data_dir / "graph", marker) == []
        await freed_everywhere()
    assert _scan(settings.data_dir / "graph", marker) == []  # and after its close (a checkpoint)
