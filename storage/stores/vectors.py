"""The vector store: one Lance table of chunk rows (`chunk_id`, `data_id`, `dataset_id`, `vector`).

No text is kept here, only ids and vectors, so erasure means removing the vectors' bytes. ENGINES.md:
`delete()` only writes a deletion file and a new version, and old versions and unrewritten fragments keep
the bytes; `erase()` forces the rewrite and the cleanup with pylance. Filters are built only from ids that
went through `parse_uuid`, never from caller text.
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from memsweep.storage.faults import crash_point
from memsweep.storage.ids import is_uuid

if TYPE_CHECKING:  # numpy, like lance and pyarrow, is imported by the calls that need it
    import numpy as np

T = TypeVar("T")

TABLE = "chunks"
BATCH = 500
# Ids per filtered delete (one commit each). Deleting 10,000 items' vectors from the 100k table took 399 ms
# in batches of 500, 161 ms in batches of 2,000 and 99 ms in one: each commit rewrites the deletion files
# of every fragment it touches. 2,000 keeps the filter text near 80 KB.
DELETE_BATCH = 2000
# Small fragments keep the forced rewrite of an erase cheap (ENGINES.md: only touched fragments rewrite).
TARGET_ROWS_PER_FRAGMENT = 1024
SEARCH_ATTEMPTS = 3
# Rows added since the indexes last covered them; past this many, an add folds them in (~0.1 s at 100k rows).
INDEX_REFRESH_ROWS = 4096
# Each of the session's two caches (index pages, manifests). The three BTREE indexes of a 100k-row table
# take a few MB; unbounded, the caches kept growing with every version single adds made.
SESSION_CACHE_BYTES = 32 * 2**20
# The id columns are stored uncompressed. Lance compresses a string page with FSST once it holds more than
# 32 KiB, which 36-character UUIDs reach at ~910 rows: every rewrite of a full fragment (each erase's forced
# compaction) then trained FSST on three columns. Measured with pylance 14.0.2, one 1,000-row fragment,
# delete + compaction: 13.1–14.2 ms with compression, 4.7–5.6 ms without (1,000 and 10,000 rows), the data
# files 4% larger (random UUIDs hardly compress). The vectors themselves were never compressed.
ID_COLUMNS = ("chunk_id", "data_id", "dataset_id")
PLAIN = {"lance-encoding:compression": "none"}


@dataclass(frozen=True)
class VectorRow:
    chunk_id: str
    data_id: str
    dataset_id: str
    vector: np.ndarray


@dataclass(frozen=True)
class VectorHit:
    chunk_id: str
    data_id: str
    distance: float


class VectorStore(Protocol):
    def add(self, rows: Sequence[VectorRow]) -> None: ...
    def delete_data(self, data_ids: Sequence[str]) -> None: ...
    def delete_erasing(self, data_ids: Sequence[str]) -> None: ...
    def search(self, vector: np.ndarray, limit: int, dataset_ids: Sequence[str] | None) -> list[VectorHit]: ...
    def chunk_ids(self) -> set[str]: ...
    def count(self) -> int: ...
    def erase(self) -> None: ...
    def compact(self) -> None: ...
    def drop(self) -> None: ...


def _in_list(column: str, ids: Iterable[str]) -> str:
    checked = []
    for value in ids:
        if not is_uuid(value):  # defence in depth: callers already validated
            raise ValueError("refusing to build a vector filter from a non-UUID value")
        checked.append(f"'{value}'")
    return f"{column} IN ({', '.join(checked)})"


def _plain_ids(ds: Any) -> None:
    """A table made before the id columns were stored uncompressed gets the setting before its first
    rewrite (one metadata commit, `ds` moves to it; the rewrite then writes them plain, and so does every
    later write)."""
    stale = {
        name: PLAIN
        for name in ID_COLUMNS
        if (ds.schema.field(name).metadata or {}).get(b"lance-encoding:compression") != b"none"
    }
    if stale:
        ds.update_field_metadata(stale)


def _with_deletions(ds: Any) -> list[Any]:
    """The fragments that still hold rows a delete only marked (a deletion file beside the data)."""
    return [f for f in ds.get_fragments() if f.metadata.deletion_file is not None]


def _index_coverage(ds: Any, fragments: list[Any]) -> tuple[bool, list[Any]]:
    """Whether the three id indexes exist, and which of `fragments` (the table's) the `data_id` index does
    not cover (added since its last fold, or rewritten by an erase whose remap was deferred)."""
    covered = {i["fields"][0]: set(i["fragment_ids"]) for i in ds.list_indices() if i["fields"]}
    outside = [f for f in fragments if f.fragment_id not in covered.get("data_id", set())]
    return all(name in covered for name in ID_COLUMNS), outside


def _committing(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def locked(self: LanceVectorStore, *args: Any, **kwargs: Any) -> T:
        with self._commit_lock:
            return method(self, *args, **kwargs)

    return locked


class LanceVectorStore:
    """Lance's own Python package (pylance) for every operation. LanceDB's `lancedb` wrapper was used for
    adds, deletes and searches until issue 12 measured it: a second copy of the Lance engine in the process
    (its library alone 67 MB resident beside pylance's 81 MB; a test process 175 MB smaller without it),
    ~0.8 s of import before the first vector call, and two Lance versions committing to one table."""

    def __init__(self, root: Path, dim: int) -> None:
        self.root = root
        self.dim = dim
        root.mkdir(parents=True, exist_ok=True)
        self._session: Any = None  # caches of index pages and manifests, bounded; made on first use
        self._indexed = False  # this process has seen the three indexes exist
        self._unindexed = 0
        self.commits_since_compact = 0  # each add commits a fragment and a version (Engine folds them)
        self.index_fold_due = False  # a rewrite deferred the indexes' remap (Engine folds it when idle)
        self.cleanup_due = False  # a merge left the versions before it (Engine's pause or close drops them)
        # Every commit to the table goes through this lock. The engine serialises its writes, but a fold
        # whose task was cancelled (a stop arriving mid-fold) keeps running in its worker thread, and the
        # close's erase then committed beside it: "Retryable commit conflict … preempted by concurrent
        # transaction CreateIndex" (seen in tests/test_stop.py). Reentrant: compact() calls ensure_indexes().
        self._commit_lock = threading.RLock()

    @property
    def uri(self) -> Path:
        return self.root / f"{TABLE}.lance"

    def _schema(self) -> Any:
        import pyarrow as pa

        ids = [pa.field(name, pa.string(), metadata=PLAIN) for name in ID_COLUMNS]
        return pa.schema([*ids, pa.field("vector", pa.list_(pa.float32(), self.dim))])

    def _open(self) -> Any:
        """The table at its newest version, or None before the first add. Opened for every call: another
        process's writes and cleanups must be seen (a table object kept across calls read files that a
        cleanup had removed: "Not found …lance"); with the session's caches an open is cheap."""
        import lance

        if not self.uri.exists():
            return None
        if self._session is None:
            self._session = lance.Session(  # type: ignore[attr-defined]  # re-exported without __all__
                index_cache_size_bytes=SESSION_CACHE_BYTES, metadata_cache_size_bytes=SESSION_CACHE_BYTES
            )
        return lance.dataset(str(self.uri), session=self._session)

    @_committing
    def add(self, rows: Sequence[VectorRow]) -> None:
        import lance
        import numpy as np
        import pyarrow as pa

        if not rows:
            return
        batch = pa.table(
            {
                "chunk_id": [r.chunk_id for r in rows],
                "data_id": [r.data_id for r in rows],
                "dataset_id": [r.dataset_id for r in rows],
                "vector": pa.array(
                    [np.asarray(r.vector, dtype=np.float32) for r in rows],
                    type=pa.list_(pa.float32(), self.dim),
                ),
            },
            schema=self._schema(),
        )
        mode = "append" if self.uri.exists() else "create"
        lance.write_dataset(batch, str(self.uri), mode=mode, max_rows_per_file=TARGET_ROWS_PER_FRAGMENT)
        self.commits_since_compact += 1
        # A store built by adds had no index until its first erase, so its first deletes scanned every row
        # (5.9 vs 3.3 ms per delete at 10k). Create them at once; fold new rows in every few thousand.
        self._unindexed += len(rows)
        if not self._indexed:
            # A new process finds the indexes made by an earlier one: it counts the rows they miss instead of
            # folding them in at its first add (32-46 ms of a fresh process's first add at 1,000 items, paid
            # by every call of a client that starts a server per call).
            ds = self._open()
            present, outside = _index_coverage(ds, ds.get_fragments())
            if present:
                self._indexed, self._unindexed = True, sum(f.metadata.physical_rows for f in outside)
        if not self._indexed or self._unindexed >= INDEX_REFRESH_ROWS:
            self.ensure_indexes()

    @_committing
    def delete_data(self, data_ids: Sequence[str]) -> None:
        """One filtered delete per DELETE_BATCH ids (never one commit per row); idempotent."""
        ds = self._open()
        if ds is None:
            return
        ids = sorted(set(data_ids))
        for start in range(0, len(ids), DELETE_BATCH):
            ds.delete(_in_list("data_id", ids[start : start + DELETE_BATCH]))

    @_committing
    def delete_erasing(self, data_ids: Sequence[str]) -> None:
        """`delete_data` and the rewrite of `erase` in one commit, for at most DELETE_BATCH ids: every fragment
        that holds one of their rows, or rows an earlier delete only marked, is written anew without them and
        swapped in by Lance's Rewrite operation (the commit a compaction makes). The old versions, which
        still hold the bytes, stay until `erase` cleans them. Measured against `delete_data` + the forced
        compaction + the cleanup, interleaved on copies of one table, one item per call: 14.3 → 10.0 ms at
        1,000 rows, 22.0 → 15.1 ms at 5,000. The rewritten fragments are outside the id indexes until the
        next fold (`index_fold_due`); filters scan them meanwhile, and the fold drops the replaced rows'
        index entries. Idempotent."""
        import lance

        ids = sorted(set(data_ids))
        if len(ids) > DELETE_BATCH:
            raise ValueError(f"delete_erasing takes at most {DELETE_BATCH} ids; use delete_data and erase")
        ds = self._open()
        if ds is None or not ids:
            return
        where = _in_list("data_id", ids)
        hit = ds.to_table(columns=[], filter=where, with_row_address=True)
        holding = {address >> 32 for address in hit["_rowaddr"].to_pylist()}  # a row address is (fragment, row)
        fragments = {f.fragment_id: f for f in _with_deletions(ds)}
        fragments.update((i, ds.get_fragment(i)) for i in holding)
        if not fragments:
            return
        _plain_ids(ds)
        groups = []
        for fragment in fragments.values():
            kept = fragment.to_table(filter=f"NOT ({where})")  # a marked row is not read at all
            new = []
            if kept.num_rows:
                new = lance.fragment.write_fragments(
                    kept, str(self.uri), schema=ds.schema, max_rows_per_file=TARGET_ROWS_PER_FRAGMENT,
                    data_storage_version=ds.data_storage_version,
                )  # fmt: skip
            groups.append(lance.LanceOperation.RewriteGroup(old_fragments=[fragment.metadata], new_fragments=new))
        # A crash here leaves new data files no version refers to (and none of the deleted rows): the resumed
        # delete writes them again, and the erase's cleanup removes these.
        crash_point("mid_vector_rewrite")
        operation = lance.LanceOperation.Rewrite(groups=groups, rewritten_indices=[])
        lance.LanceDataset.commit(str(self.uri), operation, read_version=ds.version)
        self.index_fold_due = True

    def search(self, vector: np.ndarray, limit: int, dataset_ids: Sequence[str] | None) -> list[VectorHit]:
        if dataset_ids is not None and not dataset_ids:
            return []
        import numpy as np

        query = np.asarray(vector, dtype=np.float32)
        where = None if dataset_ids is None else _in_list("dataset_id", dataset_ids)
        for attempt in range(SEARCH_ATTEMPTS):
            ds = self._open()
            if ds is None:
                return []
            try:
                # Exact (flat) search by squared L2: the metric and the results of LanceDB's `search()`.
                result = ds.to_table(
                    columns=["chunk_id", "data_id", "_distance"],
                    nearest={"column": "vector", "q": query, "k": limit},
                    filter=where,
                    prefilter=True,
                )
                break
            except (RuntimeError, OSError, ValueError):
                # Searches do not wait for writers: an erase (this process's or another's) can remove the
                # data files of the version a running search reads ("Not found …lance"). The next attempt
                # reads the newest version; a persistent failure is raised.
                if attempt == SEARCH_ATTEMPTS - 1:
                    raise
        return [
            VectorHit(c, d, float(x))
            for c, d, x in zip(
                result["chunk_id"].to_pylist(),
                result["data_id"].to_pylist(),
                result["_distance"].to_pylist(),
                strict=True,
            )
        ]

    def chunk_ids(self) -> set[str]:
        ds = self._open()
        if ds is None:
            return set()
        return set(ds.to_table(columns=["chunk_id"])["chunk_id"].to_pylist())

    def rows_for(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        ds = self._open()
        if ds is None or not chunk_ids:
            return {}
        import numpy as np

        out: dict[str, np.ndarray] = {}
        ids = list(chunk_ids)
        for start in range(0, len(ids), BATCH):
            part = ds.to_table(columns=["chunk_id", "vector"], filter=_in_list("chunk_id", ids[start : start + BATCH]))
            for cid, vec in zip(part["chunk_id"].to_pylist(), part["vector"].to_pylist(), strict=True):
                out[cid] = np.asarray(vec, dtype=np.float32)
        return out

    def count(self) -> int:
        ds = self._open()
        return 0 if ds is None else int(ds.count_rows())

    @_committing
    def ensure_indexes(self) -> None:
        """BTREE scalar indexes on the id columns used in filters (ENGINES.md: 5–11 ms vs up to 83 ms)."""
        ds = self._open()
        if ds is None or ds.count_rows() == 0:
            self.index_fold_due = False  # nothing indexed, nothing to fold
            return
        present = {name for idx in ds.describe_indices() for name in idx.field_names}
        for column in ("data_id", "dataset_id", "chunk_id"):
            if column not in present:
                ds.create_scalar_index(column, index_type="BTREE", replace=True)
        ds.optimize.optimize_indices()
        self._indexed, self._unindexed = True, 0
        self.index_fold_due = False

    @_committing
    def read_housekeeping(self) -> None:
        """Raise the two counters above to what the table itself shows is due. They live in this process,
        so fragments and a deferred remap that an earlier process left (a client that starts a server per
        call exits before any idle fold; a kill) were folded by no later process that did not add: a
        per-call client kept one fragment per add for good (41 after 40 calls). Reads the manifest only:
        fragments beyond what a compacted table of this many rows has (compaction leaves a partial
        fragment or two), and fragments outside the id index."""
        ds = self._open()
        if ds is None:
            return
        fragments = ds.get_fragments()
        rows = sum(f.metadata.physical_rows for f in fragments)
        extra = len(fragments) - (rows // TARGET_ROWS_PER_FRAGMENT + 2)
        self.commits_since_compact = max(self.commits_since_compact, extra)
        present, outside = _index_coverage(ds, fragments)
        if outside or not present:
            self.index_fold_due = True

    @_committing
    def erase(self) -> None:
        """Make deleted rows unrecoverable: rewrite every fragment with a deletion, drop old versions. After
        `delete_erasing` no fragment has one, and only the cleanup is left."""
        ds = self._open()
        if ds is None:
            return
        if _with_deletions(ds):
            self._rewrite()
        self._cleanup()

    @_committing
    def compact(self, indexes: bool = True) -> None:
        """Fold the small fragments single adds leave (the same rewrite as `erase`, which never brings a
        deleted row back), fold the deferred index remap in, then drop every older version: the replaced
        fragments and the replaced index files (cleaning before the fold left the previous index files on
        disk until the next erase; at 100k items 115 MB of vectors after one fold instead of 109).

        Without `indexes`, only the merge: the remap stays deferred (`index_fold_due`), and with it the
        cleanup, which `fold_indexes` does; the session is kept. The index fold costs 30–43 ms at 1k–10k
        rows whatever was added, the cleanup 6–7 ms, the merge of 16 one-row fragments 15–18 ms: a server
        that never pauses merges often and does the rest when it pauses. The versions a merge leaves hold
        only bytes that were on disk before it (rows an `erase=false` delete marked among them), and the
        pending erase drops every old version as before."""
        if not self.uri.exists():
            return
        self._rewrite()
        crash_point("mid_compact")
        if indexes:
            self._session = None  # before the fold, so the fresh session caches the new indexes for searches
            self.ensure_indexes()
            self._drop_old_versions()
        else:
            self.cleanup_due = True

    @_committing
    def clean_after_merge(self) -> None:
        """Drop the versions a merge left (its replaced fragments: ~1 MB per merge at 1,024 rows), for a
        process that stops before the pause that would have: a client starting a server per call merges
        what earlier calls left and exits."""
        if self.cleanup_due and self.uri.exists():
            self._drop_old_versions()

    @_committing
    def fold_indexes(self) -> None:
        """What an erase's rewrite deferred (the index remap), then the replaced index files go. The session
        is kept: it has just cached the new indexes, which the next searches would otherwise read again; the
        replaced entries it still holds are few, and its caches are bounded."""
        self.ensure_indexes()
        if self.uri.exists():
            self._drop_old_versions()

    def _rewrite(self) -> None:
        import lance

        # defer_index_remap: the rewrite records a fragment-reuse mapping instead of remapping the three
        # BTREE indexes over every row (84 → 16–34 ms per erase at 100k rows); compact() folds it in at
        # once, an erase leaves it to the engine's idle housekeeping (index_fold_due). The erasure test
        # checks no deleted vector byte survives.
        ds = lance.dataset(str(self.uri))
        _plain_ids(ds)
        ds.optimize.compact_files(
            materialize_deletions_threshold=0.0,
            target_rows_per_fragment=TARGET_ROWS_PER_FRAGMENT,
            defer_index_remap=True,
        )
        self.index_fold_due = True
        self.commits_since_compact = 0  # the small fragments of single adds were merged too

    def _cleanup(self) -> None:
        self._drop_old_versions()
        # A fresh session too: cached manifests and index pages of versions that no longer exist are dead
        # weight (with LanceDB's connection, per-version state grew the process ~0.085 MB per single add).
        self._session = None

    def _drop_old_versions(self) -> None:
        import lance

        lance.dataset(str(self.uri)).cleanup_old_versions(older_than=timedelta(0), delete_unverified=True)
        self.cleanup_due = False

    @_committing
    def drop(self) -> None:
        self._session = None
        self._indexed, self._unindexed = False, 0
        # the dropped table's housekeeping
        self.commits_since_compact, self.index_fold_due, self.cleanup_due = 0, False, False
        if self.uri.exists():
            shutil.rmtree(self.uri)
