"""The file store: content-addressed raw bytes under `files/ab/<sha256>`, written atomically.

Only owned content lives here. A file added by reference (`copy=false`) is recorded in metadata with its
path and is never deleted, moved or written by this store: nothing here takes a caller's path.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

_HASH = re.compile(r"^[0-9a-f]{64}$")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def owner_key(owner_id: str, content_hash: str) -> str:
    """The file-store key of one owner's content. Identical bytes of two owners are two files: sharing a blob
    across owners let one user learn, from `deduplicated` or `files_kept`, whether another stored a text."""
    return hashlib.sha256(f"{owner_id}\x00{content_hash}".encode()).hexdigest()


class FileStore(Protocol):
    def put(self, data: bytes, key: str | None = None) -> str: ...
    def get(self, content_hash: str) -> bytes: ...
    def exists(self, content_hash: str) -> bool: ...
    def size(self, content_hash: str) -> int: ...
    def remove(self, content_hash: str) -> bool: ...
    def hashes(self) -> Iterator[str]: ...


class LocalFileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, content_hash: str) -> Path:
        if not _HASH.match(content_hash):
            raise ValueError("content hash must be 64 lowercase hex characters")
        return self.root / content_hash[:2] / content_hash

    def put(self, data: bytes, key: str | None = None) -> str:
        """Store bytes under `key` (default: their SHA-256), idempotently; temp file + fsync + rename, so
        never half a file."""
        digest = key or sha256_bytes(data)
        target = self.path_for(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, content_hash: str) -> bytes:
        return self.path_for(content_hash).read_bytes()

    def exists(self, content_hash: str) -> bool:
        return self.path_for(content_hash).is_file()

    def size(self, content_hash: str) -> int:
        try:
            return self.path_for(content_hash).stat().st_size
        except FileNotFoundError:
            return 0

    def remove(self, content_hash: str) -> bool:
        """Unlink one owned file; a missing file counts as done (the step is re-runnable)."""
        path = self.path_for(content_hash)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        try:
            path.parent.rmdir()
        except OSError:
            pass  # not empty: other content shares the prefix
        return True

    def hashes(self) -> Iterator[str]:
        for sub in sorted(self.root.iterdir()) if self.root.exists() else []:
            if sub.is_dir():
                for f in sorted(sub.iterdir()):
                    if _HASH.match(f.name):
                        yield f.name

    def stray_temp_files(self) -> list[Path]:
        """Temp files left by a write killed before its rename."""
        return sorted(self.root.glob("*/.tmp-*"))

    def remove_stray_temp_files(self) -> int:
        """Half-written files are never referenced: remove them (at start-up and by doctor --repair)."""
        stray = self.stray_temp_files()
        for tmp in stray:
            tmp.unlink(missing_ok=True)
        return len(stray)
