"""The graph store: entity, item and chunk nodes with provenance edges, in Kuzu or ladybug.

The graph is a derived index (DESIGN.md): it holds ids only, never names or text, so deleted content
cannot linger in its files (ENGINES.md: `DETACH DELETE` + `CHECKPOINT` left node text on disk) and the
metadata store can rebuild it at any time. Decisions (is this node shared?) are never read from here.

One `Database` per path per process and one connection, and every call into it (open, statements, close)
runs on one thread, the graph thread, one call at a time: Kuzu allows one write transaction at a time,
and a failed `BEGIN` poisons the connection (the next statement segfaults), so after any transaction
error the connection is thrown away and reopened.

On that thread glibc zeroes every block it hands out (storage/heap.py): Kuzu and ladybug write blocks they
never filled into their files, and a block freed after holding a deleted text or vector was found in
`graph.kuzu` after its erase. The thread does nothing else, so its own cache of freed blocks, which the
zeroing does not reach, holds only what the graph freed.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import shutil
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from memsweep.errors import StoreUnavailable
from memsweep.storage import heap

SCHEMA = (
    "CREATE NODE TABLE IF NOT EXISTS Item(id STRING, dataset_id STRING, PRIMARY KEY(id))",
    "CREATE NODE TABLE IF NOT EXISTS Chunk(id STRING, data_id STRING, PRIMARY KEY(id))",
    "CREATE NODE TABLE IF NOT EXISTS Entity(id STRING, PRIMARY KEY(id))",
    "CREATE REL TABLE IF NOT EXISTS HAS_CHUNK(FROM Item TO Chunk)",
    "CREATE REL TABLE IF NOT EXISTS MENTIONS(FROM Chunk TO Entity)",
    "CREATE REL TABLE IF NOT EXISTS RELATES(FROM Entity TO Entity, id STRING, data_id STRING)",
)

# Up to this many keys, one statement per key; beyond, one `UNWIND`. Measured on the 100k-item store:
# `UNWIND $rows AS r MATCH (c:Chunk {id: r.id})` plans a hash join over a scan of the whole node table
# (11–18 ms for one key, growing with the store), while `MATCH (c:Chunk {id: $id})` uses the primary-key
# index (0.8–1.5 ms); for thousands of keys one scan beats thousands of statements. ENGINES.md measured
# `WHERE id IN $ids` slower still (475–616 ms for 1k keys).
PER_KEY_MAX = 8
_ROW_FIELD = re.compile(r"\br\.(\w+)")

BACKENDS = {"kuzu": ("kuzu", "graph.kuzu"), "ladybug": ("ladybug", "graph.lbug")}


@dataclass(frozen=True)
class GraphAdd:
    items: Sequence[tuple[str, str]] = ()  # (data_id, dataset_id)
    chunks: Sequence[tuple[str, str]] = ()  # (chunk_id, data_id)
    entities: Sequence[str] = ()
    mentions: Sequence[tuple[str, str]] = ()  # (chunk_id, entity_id)
    relations: Sequence[tuple[str, str, str, str]] = ()  # (rel_id, data_id, source_id, target_id)
    # True when no item or chunk of this change can be in the graph yet (a new add: fresh ids, and a crash
    # mid-add is rolled back, never re-run). Items and chunks are then created with their edges in one
    # statement instead of merged and matched by key (see FRESH). A rebuild, which may re-run, merges.
    fresh: bool = False


# Items, their chunks and the chunks' mentions in one statement. Measured with 1,000 items into Kuzu graphs
# of 10,000 and 100,000 items (bench/README.md, "Adds at scale"): the MERGE + `UNWIND … MATCH` path took
# 1,056 ms at 10k and grew with the store (each MATCH by a key from UNWIND scans the Item and Chunk tables);
# this took 36 ms at 10k and 45 ms at 100k, and one item 1.8–1.9 ms. Only the Entity table is matched.
FRESH = (
    "UNWIND $rows AS r CREATE (d:Item {id: r.id, dataset_id: r.ds}) "
    "WITH d, r UNWIND r.chunks AS ch CREATE (d)-[:HAS_CHUNK]->(c:Chunk {id: ch.id, data_id: r.id}) "
    "WITH c, ch UNWIND ch.ents AS eid MATCH (e:Entity {id: eid}) CREATE (c)-[:MENTIONS]->(e)"
)
# A chunk that mentions nothing gets this id, which no entity has: an empty list gives the parameter no
# element type ("Binder exception: … has data type ANY but LIST was expected").
NO_ENTITY = ""
# FRESH runs unprepared: a prepared statement types its parameters without seeing them, and a list nested in
# a struct then stays ANY (the binder error above, for every input). Unprepared, Kuzu 0.11.3 leaks ~0.16 MB
# per call (see `_execute`), so FRESH serves only changes that would otherwise `UNWIND` (more than
# PER_KEY_MAX items, chunks or mentions: a batch, or a long text); a short single add keeps its per-key
# prepared statements, which look keys up in the primary-key index and do not slow down as the store grows.
UNPREPARED = frozenset({FRESH})


@dataclass(frozen=True)
class GraphDelete:
    data_ids: Sequence[str] = ()
    chunk_ids: Sequence[str] = ()
    entity_ids: Sequence[str] = ()
    relations: Sequence[tuple[str, str, str]] = ()  # (rel_id, source_id, target_id)


@dataclass(frozen=True)
class GraphSnapshot:
    items: set[str]
    chunks: set[str]
    entities: set[str]
    has_chunk: set[tuple[str, str]]
    mentions: set[tuple[str, str]]
    relates: list[str]  # relation ids, one per enumerated edge (duplicates are phantoms)
    relates_counted: int  # what `count(r)` says; differs from len(relates) after the Kuzu crash bug


class GraphStore(Protocol):
    def add(self, change: GraphAdd) -> None: ...
    def delete(self, change: GraphDelete) -> None: ...
    def neighbours(self, entity_ids: Sequence[str]) -> set[str]: ...
    def snapshot(self) -> GraphSnapshot: ...
    def wipe(self) -> None: ...
    def close(self) -> None: ...


T = TypeVar("T")
_thread: ThreadPoolExecutor | None = None  # the graph thread, one per process, started at the first call
_thread_start = threading.Lock()
_on_thread = threading.local()


def _forget_thread_in_child() -> None:
    global _thread
    _thread = None  # a forked child has no graph thread: its calls would wait for one forever


os.register_at_fork(after_in_child=_forget_thread_in_child)


def _mark_graph_thread() -> None:
    _on_thread.active = True


def _graph_thread(method: Callable[..., T]) -> Callable[..., T]:
    """Run the method on the graph thread, with allocations zeroed (see the module's docstring); a call
    made there already (`wipe` closing and opening) runs in place. The caller's thread waits for it."""

    def inside(store: EmbeddedGraphStore, *args: Any, **kwargs: Any) -> T:
        with heap.zeroed_allocations():
            return method(store, *args, **kwargs)

    @functools.wraps(method)
    def call(store: EmbeddedGraphStore, *args: Any, **kwargs: Any) -> T:
        global _thread
        if getattr(_on_thread, "active", False):
            return method(store, *args, **kwargs)
        with _thread_start:
            if _thread is None:
                _thread = ThreadPoolExecutor(1, "memsweep-graph", initializer=_mark_graph_thread)
        return _thread.submit(inside, store, *args, **kwargs).result()

    return call


class EmbeddedGraphStore:
    """Kuzu or ladybug (same API, incompatible files, and they cannot share one process)."""

    def __init__(self, root: Path, backend: str = "kuzu", buffer_mb: int = 1024) -> None:
        if backend not in BACKENDS:
            raise StoreUnavailable(
                f"Unknown graph backend {backend!r}; set MEMSWEEP_GRAPH_BACKEND to 'kuzu' or 'ladybug'."
            )
        module_name, filename = BACKENDS[backend]
        # Imported at the first open, not here: a clean store's first read needs no graph (issue 12.5), and
        # the import is ~50 ms of a fresh server's first answer. Whether it is installed is checked now.
        if importlib.util.find_spec(module_name) is None:
            raise StoreUnavailable(
                f"The graph backend {backend!r} is not installed; `pip install memsweep[{backend}]`."
            )
        self._module_name = module_name
        self._mod: Any = None
        self.backend = backend
        self.root = root
        self.path = root / filename
        self._db: Any = None
        self._conn: Any = None
        self._prepared: dict[str, Any] = {}  # query text → prepared statement of `_conn`
        self.buffer_mb = buffer_mb
        self.created = False  # true when open() found no graph file (the graph must be rebuilt)

    # -- lifecycle -------------------------------------------------------------------------------------
    @_graph_thread
    def open(self) -> None:
        if self._db is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.created = not self.path.exists()
        kwargs: dict[str, Any] = {"buffer_pool_size": self.buffer_mb * 2**20}
        if self.backend == "ladybug":
            # ENGINES.md: ladybug's WAL replay can fail on a torn tail after a crash; this recovers
            # every acknowledged write.
            kwargs["throw_on_wal_replay_failure"] = False
        try:
            self.load_module()
            self._db = self._mod.Database(str(self.path), **kwargs)
            self._conn = self._mod.Connection(self._db)
            self._prepared.clear()
            for stmt in SCHEMA:
                self._conn.execute(stmt)
        except Exception as exc:
            self._db = self._conn = None
            raise StoreUnavailable(
                f"Cannot open the graph at {self.path}: {exc}. Metadata, files and vectors were not "
                "touched; if the graph is damaged, `memsweep doctor --repair` rebuilds it from metadata."
            ) from exc

    @_graph_thread
    def load_module(self) -> None:
        """Import the backend (blocking, ~50 ms; a server's engine process imports it before it serves)."""
        if self._mod is None:
            self._mod = importlib.import_module(self._module_name)

    @_graph_thread
    def close(self) -> None:
        self._prepared.clear()
        if self._conn is not None:
            self._conn.close()
        if self._db is not None:
            self._db.close()
        self._db = self._conn = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def _reset_connection(self) -> None:
        try:
            self._conn.close()
        except Exception:
            pass
        self._prepared.clear()
        self._conn = self._mod.Connection(self._db)

    def _execute(self, query: str, params: dict[str, Any]) -> Any:
        """Run one parameterised statement through a prepared statement kept per query text.

        Kuzu 0.11.3 leaks ~0.16 MB of native memory on every `execute(text, params)` (it prepares anew each
        time): 2,000 small transactions took a bare process from 49 to 390 MB, and memsweep grew ~0.8 MB per
        single add (issue 12). Reusing the prepared statement kept it flat at 65 MB. ladybug does not leak,
        and the same path serves it. `prepare` is deprecated upstream but Kuzu is archived at 0.11.3."""
        if query in UNPREPARED:
            return self._conn.execute(query, params)
        statement = self._prepared.get(query)
        if statement is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                statement = self._conn.prepare(query)
            self._prepared[query] = statement
        return self._conn.execute(statement, params)

    @_graph_thread
    def _run(self, statements: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Run parameterised statements in one write transaction."""
        if not statements:
            return
        self.open()
        try:
            self._conn.execute("BEGIN TRANSACTION")
        except Exception as exc:
            self._reset_connection()
            raise StoreUnavailable(f"The graph refused a transaction: {exc}") from exc
        try:
            for query, params in statements:
                self._execute(query, params)
            self._conn.execute("COMMIT")
        except Exception:
            try:
                self._conn.execute("ROLLBACK")
            except Exception:
                pass  # a failed statement can end the transaction itself; the first error is the one to tell
            finally:
                self._reset_connection()
            raise

    @_graph_thread
    def _rows(self, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        self.open()
        if params:
            return cast(list[list[Any]], self._execute(query, params).get_all())
        return cast(list[list[Any]], self._conn.execute(query).get_all())

    # -- writes (MERGE and MATCH-by-key: every step can be re-run) --------------------------------------
    @_graph_thread
    def add(self, change: GraphAdd) -> None:
        entities = _keyed("MERGE (:Entity {id: r.id})", [{"id": e} for e in dict.fromkeys(change.entities)])
        # A new add's relation ids are new too: CREATE (MERGE searched the entity's edges, see below).
        relations = _keyed(
            "MATCH (a:Entity {id: r.s}), (b:Entity {id: r.t}) "
            + ("CREATE" if change.fresh else "MERGE")
            + " (a)-[:RELATES {id: r.id, data_id: r.d}]->(b)",
            [{"id": i, "d": d, "s": s, "t": t} for i, d, s, t in dict.fromkeys(change.relations)],
        )
        if change.fresh:
            if max(len(change.items), len(change.chunks), len(change.mentions)) > PER_KEY_MAX:
                self._run([*entities, *_fresh(change), *relations])
                return
            # A short new add: one prepared statement per key, each finding its nodes by primary key. CREATE,
            # not MERGE, for the new edges: a MERGE of (chunk)-[:MENTIONS]->(entity) searched the entity's
            # edges, 19.8 ms per mention at 100k items (60 of a single add's 73 ms); CREATE takes 0.3 ms.
            self._run(
                entities
                + [("CREATE (d:Item {id: $id, dataset_id: $ds})", {"id": d, "ds": ds}) for d, ds in change.items]
                + [
                    (
                        "MATCH (d:Item {id: $d}) CREATE (d)-[:HAS_CHUNK]->(:Chunk {id: $c, data_id: $d})",
                        {"c": c, "d": d},
                    )
                    for c, d in change.chunks
                ]
                + [
                    ("MATCH (c:Chunk {id: $c}), (e:Entity {id: $e}) CREATE (c)-[:MENTIONS]->(e)", {"c": c, "e": e})
                    for c, e in dict.fromkeys(change.mentions)
                ]
                + relations
            )
            return
        self._run(
            entities
            + _keyed(
                "MERGE (d:Item {id: r.id}) SET d.dataset_id = r.ds", [{"id": d, "ds": ds} for d, ds in change.items]
            )
            + _keyed("MERGE (c:Chunk {id: r.id}) SET c.data_id = r.d", [{"id": c, "d": d} for c, d in change.chunks])
            + _keyed(
                "MATCH (d:Item {id: r.d}), (c:Chunk {id: r.c}) MERGE (d)-[:HAS_CHUNK]->(c)",
                [{"c": c, "d": d} for c, d in change.chunks],
            )
            + _keyed(
                "MATCH (c:Chunk {id: r.c}), (e:Entity {id: r.e}) MERGE (c)-[:MENTIONS]->(e)",
                [{"c": c, "e": e} for c, e in change.mentions],
            )
            + relations
        )

    @_graph_thread
    def delete(self, change: GraphDelete) -> None:
        # Dependency order: relation edges, chunks, items, entities (DETACH takes the provenance edges).
        self._run(
            _keyed(
                "MATCH (a:Entity {id: r.s})-[x:RELATES]->(b:Entity {id: r.t}) WHERE x.id = r.id DELETE x",
                [{"id": i, "s": s, "t": t} for i, s, t in change.relations],
            )
            + _keyed("MATCH (c:Chunk {id: r.id}) DETACH DELETE c", [{"id": i} for i in change.chunk_ids])
            + _keyed("MATCH (d:Item {id: r.id}) DETACH DELETE d", [{"id": i} for i in change.data_ids])
            + _keyed("MATCH (e:Entity {id: r.id}) DETACH DELETE e", [{"id": i} for i in change.entity_ids])
        )

    @_graph_thread
    def wipe(self) -> None:
        """Remove the graph's files (main file and WAL together: a lone `.wal` breaks the next open)."""
        self.close()
        for path in self.root.glob(self.path.name + "*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        self.open()

    # -- reads -----------------------------------------------------------------------------------------
    @_graph_thread
    def neighbours(self, entity_ids: Sequence[str]) -> set[str]:
        if not entity_ids:
            return set()
        rows = self._rows(
            "UNWIND $ids AS i MATCH (a:Entity {id: i})-[:RELATES]-(b:Entity) RETURN DISTINCT b.id",
            {"ids": list(entity_ids)},
        )
        return {r[0] for r in rows}

    @_graph_thread
    def snapshot(self) -> GraphSnapshot:
        return GraphSnapshot(
            items={r[0] for r in self._rows("MATCH (d:Item) RETURN d.id")},
            chunks={r[0] for r in self._rows("MATCH (c:Chunk) RETURN c.id")},
            entities={r[0] for r in self._rows("MATCH (e:Entity) RETURN e.id")},
            has_chunk={(r[0], r[1]) for r in self._rows("MATCH (d:Item)-[:HAS_CHUNK]->(c:Chunk) RETURN d.id, c.id")},
            mentions={(r[0], r[1]) for r in self._rows("MATCH (c:Chunk)-[:MENTIONS]->(e:Entity) RETURN c.id, e.id")},
            relates=[r[0] for r in self._rows("MATCH (:Entity)-[x:RELATES]->(:Entity) RETURN x.id")],
            relates_counted=int(self._rows("MATCH (:Entity)-[x:RELATES]->(:Entity) RETURN count(x)")[0][0]),
        )


def _fresh(change: GraphAdd) -> list[tuple[str, dict[str, Any]]]:
    """The FRESH statement's rows: items with their chunks, each chunk with the entities it mentions."""
    ents: dict[str, list[str]] = {}
    for chunk_id, entity in dict.fromkeys(change.mentions):
        ents.setdefault(chunk_id, []).append(entity)
    chunks: dict[str, list[dict[str, Any]]] = {}
    for chunk_id, data_id in change.chunks:
        chunks.setdefault(data_id, []).append({"id": chunk_id, "ents": ents.get(chunk_id) or [NO_ENTITY]})
    rows = [{"id": d, "ds": ds, "chunks": chunks.get(d, [])} for d, ds in change.items]
    return [(FRESH, {"rows": rows})] if rows else []


def _keyed(body: str, rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Statements applying `body` (written against a row `r`) to every row, with the keys passed as
    parameters, never spliced into the text: one statement per row for a few rows, else one `UNWIND`."""
    if not rows:
        return []
    if len(rows) <= PER_KEY_MAX:
        single = _ROW_FIELD.sub(r"$\1", body)
        return [(single, row) for row in rows]
    if set(_ROW_FIELD.findall(body)) == {"id"}:
        # One key: a list of strings, not of one-field structs. `UNWIND $rows AS r MATCH (c:Chunk {id: r.id})`
        # took 740–860 ms per 2,000 keys on the 100k store (a struct field defeats the join on the primary
        # key); `UNWIND $ids AS i MATCH (c:Chunk {id: i})` 20–90 ms (emptying 10,000 items: graph 7.4 s -> 0.7 s).
        return [("UNWIND $ids AS i " + _ROW_FIELD.sub("i", body), {"ids": [row["id"] for row in rows]})]
    return [("UNWIND $rows AS r " + body, {"rows": rows})]
