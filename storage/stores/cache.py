"""The cache: embeddings keyed by (embedder, chunk text hash), in its own SQLite file.

Safe to drop (prune cache=true). Its vectors are derived from content, so the delete path removes the
entries of deleted chunks that no live chunk shares, with `secure_delete` so the bytes do not linger.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # imported where vectors are read or written: opening the cache needs no numpy
    import numpy as np


class EmbeddingCache(Protocol):
    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]: ...
    def put_many(self, items: dict[str, np.ndarray]) -> None: ...
    def delete_many(self, keys: Iterable[str]) -> int: ...
    def count(self) -> int: ...
    def clear(self) -> int: ...


class SqliteEmbeddingCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.execute("PRAGMA journal_mode=DELETE")
        self._conn.execute("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        import numpy as np

        out: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                marks = ",".join("?" * len(part))
                for key, blob in self._conn.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", part):
                    out[key] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        if not items:
            return
        import numpy as np

        rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def delete_many(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        removed = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(keys), 500):
                    part = keys[start : start + 500]
                    marks = ",".join("?" * len(part))
                    cur = self._conn.execute(f"DELETE FROM embeddings WHERE key IN ({marks})", part)
                    removed += cur.rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return removed

    def keys(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._conn.execute("SELECT key FROM embeddings")}

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])

    def clear(self) -> int:
        with self._lock:
            n = int(self._conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])
            self._conn.execute("DELETE FROM embeddings")
            self._conn.execute("VACUUM")
            return n

    def close(self) -> None:
        with self._lock:
            self._conn.close()
