"""Giving freed native memory back to the system (issue 12: memory that stays flat), and keeping the
objects made at start-up out of the garbage collector's full passes (a stall of the event loop otherwise).

Lance, Kuzu and SQLite allocate through glibc's malloc from several threads. glibc keeps what they free in
per-thread arenas and seldom returns it, so a long-lived server's RSS only grew: after 1,000 single adds in
one process, `malloc_trim(0)` gave back 37–40 MB that nothing used any more, and capping the arenas at two
took 22 MB off the same run; fixed mmap and trim thresholds (below) return large freed blocks at once.
The malloc calls are glibc's, through ctypes; elsewhere (musl, macOS) they are skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import cache
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's mallopt parameter numbers
# Blocks of at least MMAP_THRESHOLD are mapped on their own and go back to the system when freed. glibc
# starts at 128 KB but raises its threshold (up to 32 MB) each time such a block is freed, and from then on
# the engines' large buffers came from the arenas and stayed there after they were freed. Fixed thresholds
# (setting them also stops that adjustment), measured in one process over 2,500 single adds with searches
# and deletes: anonymous memory at 2,000 adds 146-147 MB with glibc's moving thresholds, 137 MB with 1 MB,
# 134-135 MB with 256 KB; but at 256 KB searches and deletes were 12-17% slower (every large buffer on
# fresh pages), at 1 MB no slower than glibc's within the runs' spread.
MMAP_THRESHOLD = 1024 * 1024
TRIM_THRESHOLD = 4 * MMAP_THRESHOLD


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
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
