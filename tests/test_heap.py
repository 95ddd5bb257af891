"""The server's malloc settings (storage/heap.py), in fresh processes: the test process's allocator is not
ours to change."""

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
keep = libc.malloc(64)  # a live block above them: the heap's top cannot simply be trimmed
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
