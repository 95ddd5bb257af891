"""Giving freed native memory back to the system (issue 12: memory that stays flat).

Lance, Kuzu and SQLite allocate through glibc's malloc from several threads. glibc keeps what they free in
per-thread arenas and seldom returns it, so a long-lived server's RSS only grew: after 1,000 single adds in
one process, `malloc_trim(0)` gave back 37–40 MB that nothing used any more, and capping the arenas at two
took 22 MB off the same run. Both are glibc calls through ctypes; elsewhere (musl, macOS) they are skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameter number


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


def limit_arenas(count: int = 2) -> bool:
    """Cap malloc's arenas (call it before the engines start their threads). For the server process only:
    a library must not change the allocator of the program that embeds it."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, count))


def trim() -> bool:
    """Return every arena's free pages to the system. ctypes releases the GIL for the call; run it in a
    worker thread (3–130 ms measured, more on a fragmented heap)."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))
