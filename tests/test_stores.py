"""Each store on its real engine in a temp dir, against its small Protocol."""

import os
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from memsweep.errors import InvalidInput
from memsweep.storage.stores.cache import SqliteEmbeddingCache
from memsweep.storage.stores.files import LocalFileStore, sha256_bytes
from memsweep.storage.stores.graph import PER_KEY_MAX, EmbeddedGraphStore, GraphAdd, GraphDelete
from memsweep.storage.stores.metadata import MetadataStore, get_state, set_state, sqlite_url
from memsweep.storage.stores.vectors import DELETE_BATCH, LanceVectorStore, VectorRow

BACKEND = os.environ.get("MEMSWEEP_GRAPH_BACKEND", "kuzu")


def u() -> str:
    return str(uuid.uuid4())


def test_file_store_is_content_addressed_and_atomic(tmp_path: Path) -> None:
    fs = LocalFileStore(tmp_path / "files")
    h = fs.put(b"hello")
    assert h == sha256_bytes(b"hello") and fs.path_for(h).parent.name == h[:2]
    assert fs.put(b"hello") == h and list(fs.hashes()) == [h]
    assert fs.remove(h) and not fs.remove(h)  # a missing file counts as done
    assert list(fs.hashes()) == [] and fs.stray_temp_files() == []
    with pytest.raises(ValueError):
        fs.path_for("../../etc/passwd")


def test_graph_contract(tmp_path: Path) -> None:
    g = EmbeddedGraphStore(tmp_path / "graph", BACKEND)
    g.open()
    assert g.created
    add = GraphAdd(
        items=[("d1", "ds")], chunks=[("c1", "d1")], entities=["e1", "e2"],
        mentions=[("c1", "e1"), ("c1", "e2")], relations=[("r1", "d1", "e1", "e2")],
    )  # fmt: skip
    g.add(add)
    g.add(add)  # idempotent: MERGE everywhere
    snap = g.snapshot()
    assert snap.items == {"d1"} and snap.entities == {"e1", "e2"} and snap.relates == ["r1"]
    assert snap.relates_counted == 1 and snap.mentions == {("c1", "e1"), ("c1", "e2")}
    assert g.neighbours(["e1"]) == {"e2"}
    change = GraphDelete(data_ids=["d1"], chunk_ids=["c1"], entity_ids=["e1"], relations=[("r1", "e1", "e2")])
    g.delete(change)
    g.delete(change)  # re-runnable
    snap = g.snapshot()
    assert (snap.items, snap.chunks, snap.entities, snap.relates) == (set(), set(), {"e2"}, [])
    g.close()
    g.open()  # survives a reopen
    assert not g.created and g.snapshot().entities == {"e2"}
    g.wipe()
    assert g.snapshot().entities == set()
    g.close()


def test_graph_bulk_changes_match_small_ones(tmp_path: Path) -> None:
    """Above PER_KEY_MAX keys a change is one UNWIND statement instead of one statement per key: both
    forms must add and delete exactly the same nodes and edges."""
    g = EmbeddedGraphStore(tmp_path / "graph", BACKEND)
    n = PER_KEY_MAX * 3
    items = [(f"d{i}", "ds") for i in range(n)]
    chunks = [(f"c{i}", f"d{i}") for i in range(n)]
    ents = [f"e{i}" for i in range(n)]
    mentions = [(f"c{i}", f"e{i}") for i in range(n)] + [(f"c{i}", "e0") for i in range(1, n)]
    rels = [(f"r{i}", f"d{i}", f"e{i}", f"e{(i + 1) % n}") for i in range(n)]
    g.add(GraphAdd(items, chunks, ents, mentions, rels))
    snap = g.snapshot()
    assert len(snap.items) == len(snap.chunks) == len(snap.entities) == n
    assert len(snap.mentions) == 2 * n - 1 and sorted(snap.relates) == sorted(r[0] for r in rels)
    # delete the first half in bulk (UNWIND) and one more item by key; the rest must be untouched
    half = n // 2
    g.delete(GraphDelete(
        data_ids=[d for d, _ in items[:half]], chunk_ids=[c for c, _ in chunks[:half]],
        entity_ids=ents[1:half], relations=[(r, s, t) for r, _, s, t in rels[:half]],
    ))  # fmt: skip
    r_id, _, source, target = rels[half]
    g.delete(GraphDelete(data_ids=[items[half][0]], chunk_ids=[chunks[half][0]], relations=[(r_id, source, target)]))
    snap = g.snapshot()
    assert snap.items == {d for d, _ in items[half + 1 :]} and snap.chunks == {c for c, _ in chunks[half + 1 :]}
    assert snap.entities == {"e0", *ents[half:]}
    assert sorted(snap.relates) == sorted(r[0] for r in rels[half + 1 :])
    assert snap.mentions == {(f"c{i}", f"e{i}") for i in range(half + 1, n)} | {
        (f"c{i}", "e0") for i in range(half + 1, n)
    }
    g.close()


@pytest.mark.anyio
async def test_metadata_call_commits_or_rolls_back(tmp_path: Path) -> None:
    meta = await MetadataStore.open(sqlite_url(tmp_path / "m.db"))
    await meta.call(set_state, "k", "1", write=True)
    assert await meta.call(get_state, "k") == "1"

    def change_then_fail(conn) -> None:  # type: ignore[no-untyped-def]
        set_state(conn, "k", "2")
        raise InvalidInput("refused")

    with pytest.raises(InvalidInput):
        await meta.call(change_then_fail, write=True)
    assert await meta.call(get_state, "k") == "1"  # the failed transaction left nothing behind
    async with meta.read() as conn:  # the async engine sees what the worker-thread engine wrote
        assert await conn.run_sync(get_state, "k") == "1"
    await meta.close()


def test_graph_writer_is_serialised(tmp_path: Path) -> None:
    g = EmbeddedGraphStore(tmp_path / "graph", BACKEND)
    g.open()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(20):
                g.add(GraphAdd(entities=[f"e{k}-{i}"]))
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(g.snapshot().entities) == 80
    g.close()


def test_vector_store_deletes_by_validated_ids_and_erases(tmp_path: Path) -> None:
    vs = LanceVectorStore(tmp_path / "vectors", 8)
    ds = u()
    rows = [VectorRow(u(), u(), ds, np.random.default_rng(i).random(8)) for i in range(40)]
    vs.add(rows[:20])
    vs.add(rows[20:])
    vs.ensure_indexes()
    assert vs.count() == 40
    hit = vs.search(rows[3].vector, 1, [ds])[0]
    assert hit.chunk_id == rows[3].chunk_id
    assert vs.search(rows[3].vector, 1, [u()]) == []
    with pytest.raises(ValueError):
        vs.delete_data(["x' OR '1'='1"])
    vs.delete_data([rows[0].data_id, rows[0].data_id, u()])
    assert vs.count() == 39 and rows[0].chunk_id not in vs.chunk_ids()
    gone = np.asarray(rows[0].vector, dtype=np.float32).tobytes()
    vs.erase()
    for f in (tmp_path / "vectors").rglob("*"):
        assert not f.is_file() or gone not in f.read_bytes()
    assert vs.count() == 39
    vs.drop()
    assert vs.count() == 0


def test_delete_erasing_rewrites_only_what_held_deleted_rows(tmp_path: Path) -> None:
    """The erasing delete (one Rewrite commit instead of a delete and a compaction): the rows of its ids go,
    and so do the rows an earlier erase=false delete only marked; a fragment left empty goes whole; every
    kept row stays findable through the id filters, before and after the indexes are folded; the deleted
    vectors are in no file once `erase` has cleaned the old versions; a second call changes nothing."""
    import lance

    vs = LanceVectorStore(tmp_path / "vectors", 8)
    rows = [VectorRow(u(), u(), u(), np.random.default_rng(i).random(8)) for i in range(61)]
    vs.add(rows[:30])
    vs.add(rows[30:60])
    vs.add(rows[60:])  # a fragment of one row
    vs.ensure_indexes()
    marked = rows[45]
    vs.delete_data([marked.data_id])  # erase=false: only a deletion file
    gone = [rows[3], rows[60], marked]
    vs.delete_erasing([rows[3].data_id, rows[60].data_id, u()])
    assert vs.index_fold_due
    ds = lance.dataset(str(vs.uri))
    assert len(ds.get_fragments()) == 2 and not any(f.metadata.deletion_file for f in ds.get_fragments())
    kept = [r for r in rows if r not in gone]

    def findable() -> None:
        assert vs.chunk_ids() == {r.chunk_id for r in kept}
        for r in (kept[0], kept[29], kept[-1]):
            assert vs.rows_for([r.chunk_id]).keys() == {r.chunk_id}
            assert vs.search(r.vector, 1, [r.dataset_id])[0].chunk_id == r.chunk_id

    findable()
    version = lance.dataset(str(vs.uri)).version
    vs.delete_erasing([rows[3].data_id])  # idempotent: nothing left to rewrite, no commit
    assert lance.dataset(str(vs.uri)).version == version
    vs.erase()  # only the cleanup is left
    files = b"".join(p.read_bytes() for p in vs.uri.rglob("*") if p.is_file())
    for r in gone:
        assert np.asarray(r.vector, dtype=np.float32).tobytes() not in files
    assert np.asarray(kept[10].vector, dtype=np.float32).tobytes() in files  # positive control
    vs.fold_indexes()
    findable()
    vs.delete_data([kept[5].data_id])  # an id filter after the fold finds a rewritten fragment's row
    assert vs.count() == len(kept) - 1
    with pytest.raises(ValueError, match="at most"):
        vs.delete_erasing([u() for _ in range(DELETE_BATCH + 1)])


def test_a_table_with_compressed_ids_is_rewritten_plain_by_its_next_erase(tmp_path: Path) -> None:
    """Tables written before the id columns were stored uncompressed (FSST made each erase's rewrite of a
    full fragment 2.5x slower) keep every live row through the switch, lose the deleted one, and are
    written plain from then on: the kept ids are in the data files byte for byte, the deleted one is not."""
    import lance
    import pyarrow as pa

    vs = LanceVectorStore(tmp_path / "vectors", 8)
    rows = [VectorRow(u(), u(), u(), np.random.default_rng(i).random(8)) for i in range(1000)]
    old = pa.schema(
        [(n, pa.string()) for n in ("chunk_id", "data_id", "dataset_id")] + [("vector", pa.list_(pa.float32(), 8))]
    )
    table = {
        "chunk_id": [r.chunk_id for r in rows], "data_id": [r.data_id for r in rows],
        "dataset_id": [r.dataset_id for r in rows],
        "vector": pa.array([np.asarray(r.vector, dtype=np.float32) for r in rows], type=pa.list_(pa.float32(), 8)),
    }  # fmt: skip
    lance.write_dataset(pa.table(table, schema=old), str(vs.uri))
    vs.add([VectorRow(u(), u(), u(), np.random.default_rng(1000).random(8))])
    vs.delete_data([rows[0].data_id])
    vs.erase()
    files = b"".join(p.read_bytes() for p in (vs.uri / "data").iterdir())
    assert rows[1].data_id.encode() in files and rows[999].chunk_id.encode() in files
    assert rows[0].data_id.encode() not in files and np.asarray(rows[0].vector, dtype=np.float32).tobytes() not in files
    assert vs.count() == 1000 and vs.search(rows[500].vector, 1, None)[0].chunk_id == rows[500].chunk_id


def test_the_idle_fold_and_compaction_leave_no_replaced_index_files(tmp_path: Path) -> None:
    """Issue 17: every index fold wrote new index files and left the replaced ones until the next erase's
    cleanup (163 vs 105 MB of vectors at 100k items). After the fold an erase defers, and after a
    compaction of single adds, only the newest version's files remain."""
    import lance

    vs = LanceVectorStore(tmp_path / "vectors", 8)
    rows = [VectorRow(u(), u(), u(), np.random.default_rng(i).random(8)) for i in range(60)]
    vs.add(rows[:40])
    vs.ensure_indexes()
    vs.delete_data([rows[0].data_id])
    vs.erase()
    assert vs.index_fold_due
    vs.fold_indexes()
    for row in rows[40:]:  # single adds: one fragment and one version each
        vs.add([row])
    vs.compact()
    ds = lance.dataset(str(vs.uri))
    assert len(ds.versions()) == 1 and not vs.index_fold_due
    live = {str(idx["uuid"]) for idx in ds.list_indices() if idx["fields"]}  # not the manifest-only remap
    on_disk = {p.name for p in (vs.uri / "_indices").iterdir()}
    assert on_disk == live and len(live) == 3
    assert vs.count() == 59 and vs.search(rows[50].vector, 1, None)[0].chunk_id == rows[50].chunk_id


def test_search_survives_a_concurrent_erase(tmp_path: Path) -> None:
    """An erase removes the data files of old versions; a search running meanwhile must not fail
    (without the retry in `search`, 5 of ~500 searches failed with "Not found …lance" here), whichever way
    the rows were erased."""
    vs = LanceVectorStore(tmp_path / "vectors", 8)
    rows = [VectorRow(u(), u(), u(), np.random.default_rng(i).random(8)) for i in range(2000)]
    for k in range(0, len(rows), 500):
        vs.add(rows[k : k + 500])
    vs.ensure_indexes()
    stop = threading.Event()
    errors: list[BaseException] = []
    searches = 0

    def reader() -> None:
        nonlocal searches
        while not stop.is_set():
            try:
                assert vs.search(rows[0].vector, 3, None)[0].chunk_id == rows[0].chunk_id
                searches += 1
            except BaseException as exc:  # pragma: no cover - the assertion below reports it
                errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i, r in enumerate(rows[1:80]):
            if i % 2:  # both ways an erase goes: marked and compacted, or rewritten in the deleting commit
                vs.delete_erasing([r.data_id])
            else:
                vs.delete_data([r.data_id])
            vs.erase()
    finally:
        stop.set()
        t.join()
    assert errors == [] and searches > 20


def test_cache_round_trip(tmp_path: Path) -> None:
    c = SqliteEmbeddingCache(tmp_path / "cache.db")
    v = np.arange(4, dtype=np.float32)
    c.put_many({"k1": v, "k2": v + 1})
    assert np.array_equal(c.get_many(["k1", "zz"])["k1"], v) and c.count() == 2
    assert c.delete_many(["k1", "zz"]) == 1 and c.keys() == {"k2"}
    assert c.clear() == 1 and c.count() == 0
    c.close()


@pytest.mark.parametrize(("n", "per_item"), [(1, 1), (1, PER_KEY_MAX + 2), (PER_KEY_MAX * 3, 3)])
def test_graph_fresh_add_equals_the_merging_one(tmp_path: Path, n: int, per_item: int) -> None:
    """A new add creates items, chunks and their edges in one statement (`fresh`); it must leave exactly the
    graph the merging path (used by rebuild) leaves: several chunks per item, chunks without mentions, a
    batch where no chunk mentions anything, entities shared across items, relations. One short item takes the
    per-key statements; a long text (many chunks) and a batch take FRESH."""
    snaps = []
    for fresh in (False, True):
        for mentioning in (True, False):
            g = EmbeddedGraphStore(tmp_path / f"g{fresh}{mentioning}", BACKEND)
            items = [(f"d{i}", f"ds{i % 2}") for i in range(n)]
            chunks = [(f"c{i}.{k}", f"d{i}") for i in range(n) for k in range(1 + (i + per_item - 1) % per_item)]
            ents = ["shared", *(f"e{i}" for i in range(n))]
            mentions = [(c, "shared") for c, _ in chunks[::2]] + [(f"c{i}.0", f"e{i}") for i in range(n)]
            rels = [(f"r{i}", f"d{i}", "shared", f"e{i}") for i in range(n)]
            g.add(GraphAdd(items, chunks, ents, mentions if mentioning else [], rels, fresh=fresh))
            s = g.snapshot()
            snaps.append((fresh, mentioning, s.items, s.chunks, s.entities, s.has_chunk, s.mentions, sorted(s.relates)))
            g.close()
    by = {(f, m): rest for f, m, *rest in snaps}
    assert by[(True, True)] == by[(False, True)] and by[(True, False)] == by[(False, False)]
    assert by[(True, True)][4] and not by[(True, False)][4]  # mentions present / absent as given


def test_a_new_process_reads_what_is_due_from_the_table(tmp_path: Path) -> None:
    """The fold counters live in memory; a store object opened afterwards (a new process) raises them to
    what the table shows: fragments beyond a compacted table's, fragments outside the id index."""
    vs = LanceVectorStore(tmp_path / "vectors", 8)
    rows = [VectorRow(u(), u(), u(), np.random.default_rng(i).random(8)) for i in range(40)]
    vs.add(rows[:20])
    for row in rows[20:]:
        vs.add([row])
    fresh = LanceVectorStore(tmp_path / "vectors", 8)
    fresh.read_housekeeping()
    assert fresh.commits_since_compact == 21 - 2 and fresh.index_fold_due  # 21 fragments, 40 rows
    fresh.compact()
    again = LanceVectorStore(tmp_path / "vectors", 8)
    again.read_housekeeping()
    assert again.commits_since_compact == 0 and not again.index_fold_due
    again.delete_erasing([rows[3].data_id])  # its rewritten fragment is outside the id index
    later = LanceVectorStore(tmp_path / "vectors", 8)
    later.read_housekeeping()
    assert later.commits_since_compact == 0 and later.index_fold_due
    later.fold_indexes()
    last = LanceVectorStore(tmp_path / "vectors", 8)
    last.read_housekeeping()
    assert not last.index_fold_due
    import lance

    version = lance.dataset(str(last.uri)).version
    extra = VectorRow(u(), u(), u(), np.random.default_rng(99).random(8))
    LanceVectorStore(tmp_path / "vectors", 8).add([extra])  # a new process's first add keeps the indexes
    assert lance.dataset(str(last.uri)).version == version + 1  # its own commit only, no index fold
    assert LanceVectorStore(tmp_path / "vectors", 8).search(extra.vector, 1, [extra.dataset_id])[0].chunk_id == (
        extra.chunk_id
    )
    empty = LanceVectorStore(tmp_path / "nothing", 8)
    empty.read_housekeeping()  # no table yet: nothing due
    assert empty.commits_since_compact == 0 and not empty.index_fold_due
