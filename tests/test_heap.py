"""The malloc settings (storage/heap.py), in fresh processes: the server's tuning, and the zeroed blocks the
graph engine gets (with and without glibc's per-thread cache)."""

import os
import subprocess
import sys

import pytest
from memsweep.storage import heap

pytestmark = pytest.mark.skipif(heap._libc() is None, reason="glibc only")

FREE_LARGE_BLOCKS = """
import ctypes, sys
from memsweep.storage import heap

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]


def anon_mb():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) / 1024


if sys.argv[1] == "tuned":
    assert heap.tune_for_server()
big = libc.malloc(4 << 20)  # freeing a mapped 4 MB block makes glibc raise its mmap threshold to 4 MB
ctypes.memset(big, 1, 4 << 20)
libc.free(big)
blocks = [libc.malloc(2 << 20) for _ in range(40)]
for b in blocks:
    ctypes.memset(b, 1, 2 << 20)
# A live block above them, so the heap's top cannot simply be trimmed: one of their size, which no free chunk
# can serve (a small one came from a free chunk below them or above, depending on what imports left).
keep = libc.malloc(2 << 20)
before = anon_mb()
for b in blocks:
    libc.free(b)
print(before - anon_mb())
"""


def _returned_mb(mode: str) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", FREE_LARGE_BLOCKS, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return float(proc.stdout.strip())


def test_freed_large_blocks_go_back_to_the_system_in_the_server_process() -> None:
    """The engines' large buffers, once freed, leave the process: with glibc's own moving thresholds the
    same 80 MB stay in the heap (the control: the difference is what the server's settings make)."""
    assert _returned_mb("default") < 8
    assert _returned_mb("tuned") > 72


FREED_CONTENT_REUSED = """
import ctypes, sys
from memsweep.storage import heap

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = int(sys.argv[2])
blocks = [libc.malloc(size) for _ in range(5)]
for b in blocks:
    ctypes.memmove(b, b"QXSECRET" * (size // 8), size)
for b in blocks:
    libc.free(b)  # outside: whatever freed a memory did not zero it
if sys.argv[1] == "zeroed":
    with heap.zeroed_allocations():
        again = [libc.malloc(size) for _ in range(5)]  # what a graph engine's call gets
else:
    again = [libc.malloc(size) for _ in range(5)]
print(sum(ctypes.string_at(b, size).count(b"QXSECRET") for b in again))
"""


def _copies_reused(mode: str, size: int, env: dict[str, str]) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", FREED_CONTENT_REUSED, mode, str(size)],
        capture_output=True, text=True, timeout=60, check=True, env=env,
    )  # fmt: skip
    return int(proc.stdout.strip())


def test_blocks_handed_out_inside_zeroed_allocations_hold_nothing_freed_before() -> None:
    """Without it, the blocks malloc hands out hold what was freed in them (the control); inside it, none
    does. Blocks up to 1 KiB come from the thread's own cache, which the zeroing does not reach; the
    tunable the engine process starts with turns that cache off."""
    plain = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    assert _copies_reused("plain", 4096, plain) > 0 and _copies_reused("plain", 512, plain) > 0
    assert _copies_reused("zeroed", 4096, plain) == 0
    assert _copies_reused("zeroed", 512, plain) > 0  # the per-thread cache
    engine_process = heap.without_thread_cache(plain)
    assert _copies_reused("zeroed", 4096, engine_process) == 0 and _copies_reused("zeroed", 512, engine_process) == 0
    assert _copies_reused("plain", 512, engine_process) > 0  # the zeroing is what clears them


def test_the_tunable_keeps_the_callers_own() -> None:
    env = heap.without_thread_cache(
        {"GLIBC_TUNABLES": "glibc.malloc.arena_max=1:glibc.malloc.tcache_count=9", "X": "y"}
    )
    assert env["X"] == "y"
    assert env["GLIBC_TUNABLES"] == f"{heap.NO_THREAD_CACHE}:glibc.malloc.arena_max=1"


GRAPH_FILES_AFTER_FREED_MARKERS = """
import asyncio, contextlib, ctypes, sys, tempfile
from pathlib import Path
from memsweep.api import Memory
from memsweep.config import Settings
from memsweep.storage import heap
from memsweep.storage.stores import graph

if sys.argv[1] == "unzeroed":
    heap.zeroed_allocations = contextlib.nullcontext
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
MARKER = b"QXFREED!"


def freed_markers():
    sizes = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536, 262144] * 20
    blocks = [libc.malloc(s) for s in sizes]
    for b, s in zip(blocks, sizes):
        ctypes.memmove(b, MARKER * (s // 8), s)
    for b in blocks:
        libc.free(b)


async def everywhere():
    freed_markers()
    await asyncio.gather(*[asyncio.to_thread(freed_markers) for _ in range(4)])
    if graph._thread is not None:
        graph._thread.submit(freed_markers).result()  # the graph thread's own heap arena too


async def main():
    data = Path(tempfile.mkdtemp()) / "data"
    await everywhere()
    for _ in range(2):  # created, then opened again
        async with Memory(Settings(data_dir=data, graph_backend=sys.argv[2])) as mem:
            for i in range(15):
                await everywhere()
                item = await mem.add("d", text=f"Memory {i}.", entities=[{"name": f"P{i % 4}"}, {"name": f"Q{i}"}])
            await everywhere()
            await mem.datasets.delete_data(dataset_id="d", data_id=item.data_id)
            await everywhere()
    print(sum(f.read_bytes().count(MARKER) for f in (data / "graph").rglob("*") if f.is_file()))


asyncio.run(main())
"""


def test_the_graph_files_get_no_freed_memory_in_the_engine_process() -> None:
    """Kuzu writes blocks it never filled into its files (storage/heap.py). Blocks holding a marker, freed
    in every thread (the graph's own included) before and between a store's adds, deletes and reopen:
    with the graph's calls unzeroed, 400–800 copies of the marker reach the graph's files (the control);
    as memsweep runs them, none. In a process started as the engine process is. (ladybug wrote its copies
    from the calling thread's heap, 505 of them, which the graph thread now keeps away: there the control
    finds none, so this proves nothing for it; tests/test_erasure.py checks it in the test process.)"""
    backend = "kuzu"
    env = heap.without_thread_cache({k: v for k, v in os.environ.items() if k != "MEMSWEEP_METADATA_URL"})

    def copies(mode: str) -> int:
        proc = subprocess.run(
            [sys.executable, "-c", GRAPH_FILES_AFTER_FREED_MARKERS, mode, backend],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return int(proc.stdout.strip())

    assert copies("unzeroed") > 0
    assert copies("zeroed") == 0
