"""What the process's heap hands out and gives back: zeroed blocks for the graph engine, so nothing the
process freed reaches the graph's files (erasure), freed native memory given back to the system (issue 12:
memory that stays flat), and the objects made at start-up kept out of the garbage collector's full passes
(a stall of the event loop).

Kuzu 0.11.3 and ladybug 0.22 write uninitialised heap memory into their database files: blocks filled
with a marker and freed before a store's adds left 505–508 copies of the marker in `graph/graph.kuzu`
(and `graph.lbug`), and the erasure test once found a deleted item's vector there after its erase had been
verified (4 of 400 runs on a loaded machine): the vector had passed through the heap (the embedding, the
erase's rewrite), and Kuzu wrote the freed block out when the graph was next created or checkpointed. Any
text or vector the process ever held, another user's included, can land in the graph's files that way,
after the delete that was to remove it. So every call into the graph engine runs with glibc's allocator
zeroing each block it hands out (`zeroed_allocations`), on a thread of its own (stores/graph.py); the
marker test then finds no copy, with either backend.

Lance, Kuzu and SQLite allocate through glibc's malloc from several threads. glibc keeps what they free in
per-thread arenas and seldom returns it, so a long-lived server's RSS only grew: after 1,000 single adds in
one process, `malloc_trim(0)` gave back 37–40 MB that nothing used any more, and capping the arenas at two
took 22 MB off the same run; fixed mmap and trim thresholds (below) return large freed blocks at once.
The malloc calls are glibc's, through ctypes; elsewhere (musl, macOS) they are skipped.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_PERTURB, M_ARENA_MAX = -1, -3, -6, -8  # glibc's mallopt parameters
# M_PERTURB's byte: while it is set, freed blocks are filled with it and blocks handed out with its
# complement, zero.
FREED_FILL = 0xFF
# glibc's per-thread cache of freed blocks (up to 7 of each size up to 1 KiB per thread, refilled from the
# shared bins) hands blocks out without the zeroing, and only this tunable, read at a process's start,
# turns it off: the engine process memsweep starts gets it.
NO_THREAD_CACHE = "glibc.malloc.tcache_count=0"
# Blocks of at least MMAP_THRESHOLD are mapped on their own and go back to the system when freed. glibc
# starts at 128 KB but raises its threshold (up to 32 MB) each time such a block is freed, and from then on
# the engines' large buffers came from the arenas and stayed there after they were freed. Fixed thresholds
# (setting them also stops that adjustment), measured in one process over 2,500 single adds with searches
# and deletes: anonymous memory at 2,000 adds 146-147 MB with glibc's moving thresholds, 137 MB with 1 MB,
# 134-135 MB with 256 KB; but at 256 KB searches and deletes were 12-17% slower (every large buffer on
# fresh pages), at 1 MB no slower than glibc's within the runs' spread.
MMAP_THRESHOLD = 1024 * 1024
TRIM_THRESHOLD = 4 * MMAP_THRESHOLD
_zeroing = 0  # callers inside zeroed_allocations()
_zeroing_lock = threading.Lock()


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The process's own symbols, glibc's among them: `ctypes.util.find_library` runs `ldconfig -p` in a
        # subprocess (~23 ms, more from a large process), at the start of each of serve's two processes.
        libc = ctypes.CDLL(None)
        libc.malloc_trim  # noqa: B018 (glibc only: musl has no malloc_trim)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def tune_for_server(arenas: int = 2) -> bool:
    """Cap malloc's arenas and fix its thresholds (call it before the engines start their threads). For the
    server process only: a library must not change the allocator of the program that embeds it."""
    libc = _libc()
    if libc is None:
        return False
    settings = ((M_ARENA_MAX, arenas), (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return all([bool(libc.mallopt(param, value)) for param, value in settings])


@contextmanager
def zeroed_allocations() -> Iterator[None]:
    """While any caller is inside, glibc zeroes every block it hands out and overwrites every block freed
    (mallopt's M_PERTURB), in every thread: a graph engine that writes a buffer it never filled writes
    zeros, not a memory. Not for the whole process: that made adds and deletes 30–45% slower. Blocks from
    a thread's own cache are handed out as they are (NO_THREAD_CACHE): the graph's calls run on a thread
    that handles nothing else, so its cache holds what the graph freed, except small blocks glibc moves
    into it from the shared bins, which only the tunable rules out."""
    global _zeroing
    libc = _libc()
    if libc is None:
        yield
        return
    with _zeroing_lock:
        _zeroing += 1
        if _zeroing == 1:
            libc.mallopt(M_PERTURB, FREED_FILL)
    try:
        yield
    finally:
        with _zeroing_lock:
            _zeroing -= 1
            if _zeroing == 0:
                libc.mallopt(M_PERTURB, 0)


def thread_cache_on(environ: Mapping[str, str]) -> bool:
    """Whether a glibc process started with `environ` has the per-thread cache (NO_THREAD_CACHE not set)."""
    return _libc() is not None and NO_THREAD_CACHE not in environ.get("GLIBC_TUNABLES", "").split(":")


def without_thread_cache(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` for a process memsweep starts, with NO_THREAD_CACHE added to any GLIBC_TUNABLES it has (the
    caller's other tunables are kept; a cache size of its own is replaced)."""
    name = NO_THREAD_CACHE.split("=")[0]
    kept = [t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t and t.split("=")[0] != name]
    return {**environ, "GLIBC_TUNABLES": ":".join([NO_THREAD_CACHE, *kept])}


def trim() -> bool:
    """Return every arena's free pages to the system. ctypes releases the GIL for the call; run it in a
    worker thread (3–130 ms measured, more on a fragmented heap)."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def freeze_startup_objects() -> None:
    """Take every object alive now (modules, the MCP SDK, the engines, an opened store) out of the garbage
    collector's full collections, which scanned them all while holding the GIL: ~50 ms over the engine
    process's ~93,000 objects after a store opened, a stall of its event loop every few thousand adds (the
    agent day measured 70 ms). Objects made later are collected as before. For the server processes only,
    once their start-up is done."""
    gc.freeze()
