"""Reading a caller's file for `add(path=...)`, safely (DESIGN.md invariant 10).

A remote (HTTP) caller names no server path unless the operator allowed directories
(`MEMSWEEP_ALLOWED_PATHS`); then the path must resolve, after symlinks, inside one of them, and every
refusal reads the same, so the answer does not tell whether a file exists. Every read is bounded by the
size limit whatever `st_size` says (procfs reports 0 for files of any size), only regular files on ordinary
filesystems are read, and the file that was opened is the one that was checked (`O_NOFOLLOW`, then the
open descriptor's real path is checked again).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from memsweep.errors import InvalidInput

# Kernel and device filesystems: their "files" are views of the running system, never memories.
SPECIAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
_READ_CHUNK = 1 << 16

REMOTE_NO_PATHS = (
    "This server takes no file paths from remote callers: send the memory as `text`. Nothing was stored. "
    "(The operator can allow directories with MEMSWEEP_ALLOWED_PATHS.)"
)
REMOTE_REFUSED = (
    "`path` is not a readable regular file inside a directory this server allows. Nothing was stored; "
    "send the memory as `text`, or ask the operator which directories are allowed."
)


@dataclass(frozen=True)
class SourceFile:
    raw: bytes
    real_path: Path


def inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def read_source(path: str, *, max_bytes: int, remote: bool, allowed: tuple[Path, ...], forbidden: Path) -> SourceFile:
    """The bytes of the caller's file at `path` (at most `max_bytes`), or `InvalidInput`.

    `remote`: the caller is not the local user; only files under `allowed` are read, and every refusal
    says the same thing. `forbidden`: memsweep's own data directory, never read back into itself.
    """
    if not isinstance(path, str) or not path.strip() or "\x00" in path or len(path) > 4096:
        raise InvalidInput("`path` must be a file path. Nothing was stored.")
    if remote and not allowed:
        raise InvalidInput(REMOTE_NO_PATHS)
    shown = repr(path[:120])

    def refuse(local_reason: str) -> InvalidInput:
        return InvalidInput(REMOTE_REFUSED if remote else f"Cannot read {shown}: {local_reason}. Nothing was stored.")

    p = Path(path).expanduser()
    if not p.is_absolute():
        raise refuse("`path` must be absolute")
    try:
        resolved = p.resolve(strict=True)
    except (OSError, RuntimeError):
        raise refuse("no such file") from None
    roots = tuple(r.resolve() for r in allowed)
    if remote and not any(inside(resolved, r) for r in roots):
        raise refuse("outside the allowed directories")
    if any(inside(resolved, r) for r in SPECIAL_ROOTS):
        raise refuse("a kernel or device file, not a memory")
    if inside(resolved, forbidden.resolve()):
        raise refuse("it is inside memsweep's own data directory")
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise refuse(exc.strerror or "cannot open it") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refuse("not a regular file")
        real = _real_path(fd, resolved)
        # The path could have been swapped for a symlink between resolve() and open(): check what was opened.
        if remote and not any(inside(real, r) for r in roots):
            raise refuse("outside the allowed directories")
        if any(inside(real, r) for r in SPECIAL_ROOTS) or inside(real, forbidden.resolve()):
            raise refuse("not a file memsweep may read")
        if info.st_size > max_bytes:
            raise InvalidInput(
                f"{real.name} is {info.st_size:,} bytes; the limit is {max_bytes:,}. Nothing was stored; "
                "split it into several files."
            )
        raw = _read_bounded(fd, max_bytes)
    finally:
        os.close(fd)
    if raw is None:
        raise InvalidInput(
            f"{real.name} holds more than {max_bytes:,} bytes (the limit). Nothing was stored; split it into "
            "several files."
        )
    return SourceFile(raw, real)


def _real_path(fd: int, fallback: Path) -> Path:
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return fallback  # no procfs (macOS): O_NOFOLLOW already refused a swapped final component


def _read_bounded(fd: int, max_bytes: int) -> bytes | None:
    """Up to `max_bytes`; None when the file holds more (one byte past the limit is read to know)."""
    parts: list[bytes] = []
    total = 0
    while total <= max_bytes:
        block = os.read(fd, min(_READ_CHUNK, max_bytes + 1 - total))
        if not block:
            break
        parts.append(block)
        total += len(block)
    return None if total > max_bytes else b"".join(parts)
