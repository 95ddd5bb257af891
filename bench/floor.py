"""The floor: the minimal raw operations for the same deletes, directly on SQLite, Kuzu and LanceDB.

    python bench/floor.py N           # prints JSON: delete one item's rows/vector/nodes (p50 over 100), the
                                      # same plus the raw erasure steps, and one dataset's (N/10 items)
    python bench/floor.py N --layout  # the same deletes on memsweep's layout (see `layout`)
Same layout as memsweep's store (indexed ids, one vector row per item in fragments of 1,024 rows, one
graph node per item), each engine driven the fastest way we know (a single-key Kuzu MATCH uses the
primary-key index, where UNWIND scans the node table), and no planning, journal, permissions or reference
counting. `delete_data_erase_p50_ms` adds what erasure needs at minimum (ENGINES.md): SQLite with
secure_delete and a TRUNCATE checkpoint, and the vector delete done as a rewrite of the touched fragment
plus the cleanup of old versions (`delete_erasing`).
"""

import json
import random
import sqlite3
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
from workload import item, scratch  # bench/ is the script's folder, on sys.path

DIM = 256


def delete_erasing(uri: str, session: object, where: str) -> None:
    """The fastest erasing vector delete we know (memsweep's `delete_erasing`): every fragment holding a
    matching row, or rows an earlier delete only marked, written anew without them in one Rewrite commit,
    then the old versions cleaned. Until issue 12's fourth session: a delete, a forced compaction and the
    cleanup (14.3 vs 10.0 ms at 1,000 rows)."""
    import lance

    ds = lance.dataset(uri, session=session)
    hit = ds.to_table(columns=[], filter=where, with_row_address=True)
    holding = {a >> 32 for a in hit["_rowaddr"].to_pylist()}
    groups = []
    for f in ds.get_fragments():
        if f.fragment_id in holding or f.metadata.deletion_file is not None:
            kept = f.to_table(filter=f"NOT ({where})")
            new = []
            if kept.num_rows:
                new = lance.fragment.write_fragments(
                    kept, uri, schema=ds.schema, max_rows_per_file=1024, data_storage_version=ds.data_storage_version
                )
            groups.append(lance.LanceOperation.RewriteGroup(old_fragments=[f.metadata], new_fragments=new))
    op = lance.LanceOperation.Rewrite(groups=groups, rewritten_indices=[])
    lance.LanceDataset.commit(uri, op, read_version=ds.version).cleanup_old_versions(
        older_than=timedelta(0), delete_unverified=True
    )


def main(n: int) -> dict:
    """Keeping and erasing deletes each on a store of its own (see `layout`), the dataset delete after the
    keeping ones."""
    with scratch("floor-") as tmp:
        keep, empty_ms = _plain_deletes(n, tmp, erase=False)
    with scratch("floor-") as tmp:
        erase, _ = _plain_deletes(n, tmp, erase=True)
    return {
        "n": n,
        "delete_data_p50_ms": round(statistics.median(keep) * 1000, 2),
        "delete_data_erase_p50_ms": round(statistics.median(erase) * 1000, 2),
        "empty_dataset_ms": round(empty_ms, 2),
    }


def _plain_deletes(n: int, tmp: Path, erase: bool) -> tuple[list[float], float]:
    import kuzu
    import lance
    import pyarrow as pa

    ids = [str(uuid.uuid4()) for _ in range(n)]
    ds = [f"ds{i % 10}" for i in range(n)]
    db = sqlite3.connect(tmp / "m.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA secure_delete=ON")
    db.execute("CREATE TABLE data (id TEXT PRIMARY KEY, dataset_id TEXT, text TEXT)")
    db.execute("CREATE INDEX ix ON data(dataset_id)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO data VALUES (?,?,?)", [(i, d, "x" * 100) for i, d in zip(ids, ds, strict=True)])
    db.execute("COMMIT")
    rng = np.random.default_rng(0)
    uri = str(tmp / "v" / "chunks.lance")
    lance.write_dataset(pa.table({
        "data_id": ids, "dataset_id": ds,
        "vector": pa.array(list(rng.random((n, DIM), dtype=np.float32)), type=pa.list_(pa.float32(), DIM)),
    }), uri, max_rows_per_file=1024)  # fmt: skip
    lance.dataset(uri).create_scalar_index("data_id", index_type="BTREE")
    lance.dataset(uri).create_scalar_index("dataset_id", index_type="BTREE")
    session = lance.Session()  # as memsweep's vector store: the table opened at its newest version per call
    kdb = kuzu.Database(str(tmp / "g.kuzu"))
    k = kuzu.Connection(kdb)
    k.execute("CREATE NODE TABLE Item(id STRING, PRIMARY KEY(id))")
    k.execute("UNWIND $ids AS i CREATE (:Item {id: i})", {"ids": ids})

    victims = random.Random(1).sample(range(n), min(100, n))
    times = []
    for v in victims:
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM data WHERE id = ?", (ids[v],))
        db.execute("COMMIT")
        if erase:
            delete_erasing(uri, session, f"data_id = '{ids[v]}'")
        else:
            lance.dataset(uri, session=session).delete(f"data_id = '{ids[v]}'")
        k.execute("MATCH (d:Item {id: $id}) DETACH DELETE d", {"id": ids[v]})
        if erase:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        times.append(time.perf_counter() - t)
    victims_set = set(victims)
    t = time.perf_counter()
    gone = [ids[i] for i in range(n) if ds[i] == "ds3" and i not in victims_set]
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM data WHERE dataset_id = 'ds3'")
    db.execute("COMMIT")
    lance.dataset(uri, session=session).delete("dataset_id = 'ds3'")
    k.execute("UNWIND $ids AS i MATCH (d:Item {id: i}) DETACH DELETE d", {"ids": gone})
    return times, (time.perf_counter() - t) * 1000


def layout(n: int) -> dict:
    """`delete_data` on memsweep's layout, keeping and erasing, each on a store of its own (as memsweep's
    scenarios run them: until issue 12's fourth session they alternated in one store, and every erase's
    deferred index remap made the next plain delete 2-3 ms slower, a floor that flattered memsweep's
    erase=false ratio)."""
    with scratch("floor-layout-") as tmp:
        keep = _layout_deletes(n, tmp, erase=False)
    with scratch("floor-layout-") as tmp:
        erase = _layout_deletes(n, tmp, erase=True)
    return {
        "n": n,
        "layout": "memsweep",
        "delete_data_p50_ms": round(statistics.median(keep) * 1000, 2),
        "delete_data_erase_p50_ms": round(statistics.median(erase) * 1000, 2),
    }


def _layout_deletes(n: int, tmp: Path, erase: bool) -> list[float]:
    """The floor on memsweep's layout (issue 12.6), with bench/workload.py's items: SQLite tables for items,
    chunks, entities and the item→entity and chunk→entity references (the reference counts live there, as
    in memsweep: DESIGN.md), one vector row per chunk with BTREE indexes on chunk_id, data_id and
    dataset_id, Item, Chunk and Entity nodes with HAS_CHUNK and MENTIONS edges, the text as a file, its
    embedding in a cache database. Deleting an item: one SQLite transaction that finds the entities only it
    referenced and removes its rows and theirs, one filtered vector delete, single-key Kuzu deletes of its
    chunk, its node and those entities, the file, the cache row. What memsweep
    adds on top (the plan read, the journal and tombstone transaction, permissions, audit, receipt, the
    report) is left out; that is the difference this floor measures."""
    import kuzu
    import lance
    import pyarrow as pa

    ns = uuid.UUID("0b5a1e7c-59a4-4d58-9a6f-0c8b7e9b5d21")
    items = [item(i) for i in range(n)]
    ids = [str(uuid.uuid4()) for _ in range(n)]
    chunk_ids = [str(uuid.uuid4()) for _ in range(n)]
    ents = [[str(uuid.uuid5(ns, e["name"])) for e in it["entities"]] for it in items]
    db = sqlite3.connect(tmp / "m.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "secure_delete=ON"):
        db.execute("PRAGMA " + pragma)
    db.executescript("""
        CREATE TABLE data (id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, name TEXT NOT NULL);
        CREATE INDEX ix_data_dataset ON data (dataset_id);
        CREATE TABLE chunks (id TEXT PRIMARY KEY, data_id TEXT NOT NULL REFERENCES data (id), text TEXT NOT NULL);
        CREATE INDEX ix_chunks_data ON chunks (data_id);
        CREATE TABLE entities (id TEXT PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE data_entities (data_id TEXT NOT NULL REFERENCES data (id), entity_id TEXT NOT NULL,
                                    PRIMARY KEY (data_id, entity_id));
        CREATE INDEX ix_de_entity ON data_entities (entity_id);
        CREATE TABLE chunk_entities (chunk_id TEXT NOT NULL REFERENCES chunks (id), entity_id TEXT NOT NULL,
                                     PRIMARY KEY (chunk_id, entity_id));
        CREATE INDEX ix_ce_entity ON chunk_entities (entity_id);
    """)
    db.execute("BEGIN")
    names = {
        e: it_e["name"] for it, es in zip(items, ents, strict=True) for e, it_e in zip(es, it["entities"], strict=True)
    }
    db.executemany("INSERT INTO entities VALUES (?, ?)", list(names.items()))
    db.executemany(
        "INSERT INTO data VALUES (?, ?, ?)", [(i, it["dataset"], "note") for i, it in zip(ids, items, strict=True)]
    )
    db.executemany(
        "INSERT INTO chunks VALUES (?, ?, ?)",
        [(c, i, it["text"]) for c, i, it in zip(chunk_ids, ids, items, strict=True)],
    )
    db.executemany(
        "INSERT OR IGNORE INTO data_entities VALUES (?, ?)",
        [(i, e) for i, es in zip(ids, ents, strict=True) for e in es],
    )
    db.executemany(
        "INSERT OR IGNORE INTO chunk_entities VALUES (?, ?)",
        [(c, e) for c, es in zip(chunk_ids, ents, strict=True) for e in es],
    )
    db.execute("COMMIT")  # fmt: skip
    files = tmp / "files"
    files.mkdir()
    for i, it in zip(ids, items, strict=True):
        (files / i).write_text(it["text"])
    cache = sqlite3.connect(tmp / "cache.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "secure_delete=ON"):
        cache.execute("PRAGMA " + pragma)
    cache.execute("CREATE TABLE emb (hash TEXT PRIMARY KEY, vector BLOB NOT NULL)")
    rng = np.random.default_rng(0)
    cache.execute("BEGIN")
    cache.executemany(
        "INSERT INTO emb VALUES (?, ?)", [(c, rng.random(DIM, dtype=np.float32).tobytes()) for c in chunk_ids]
    )
    cache.execute("COMMIT")  # fmt: skip
    uri = str(tmp / "v" / "chunks.lance")
    # The id columns uncompressed, as memsweep stores them (vectors.py: FSST on full fragments made each
    # erase's rewrite 2.5x slower); the floor must not pay a cost memsweep no longer pays, nor the reverse.
    plain = {"lance-encoding:compression": "none"}
    schema = pa.schema(
        [pa.field(c, pa.string(), metadata=plain) for c in ("chunk_id", "data_id", "dataset_id")]
        + [pa.field("vector", pa.list_(pa.float32(), DIM))]
    )
    lance.write_dataset(pa.table({
        "chunk_id": chunk_ids, "data_id": ids, "dataset_id": [it["dataset"] for it in items],
        "vector": pa.array(list(rng.random((n, DIM), dtype=np.float32)), type=pa.list_(pa.float32(), DIM)),
    }, schema=schema), uri, max_rows_per_file=1024)  # fmt: skip
    for column in ("chunk_id", "data_id", "dataset_id"):
        lance.dataset(uri).create_scalar_index(column, index_type="BTREE")
    session = lance.Session()
    kdb = kuzu.Database(str(tmp / "g.kuzu"))
    k = kuzu.Connection(kdb)
    for ddl in (
        "CREATE NODE TABLE Item(id STRING, dataset_id STRING, PRIMARY KEY(id))",
        "CREATE NODE TABLE Chunk(id STRING, data_id STRING, PRIMARY KEY(id))",
        "CREATE NODE TABLE Entity(id STRING, PRIMARY KEY(id))",
        "CREATE REL TABLE HAS_CHUNK(FROM Item TO Chunk)",
        "CREATE REL TABLE MENTIONS(FROM Chunk TO Entity)",
    ):
        k.execute(ddl)  # fmt: skip
    k.execute("UNWIND $ids AS i CREATE (:Entity {id: i})", {"ids": list(names)})
    k.execute("UNWIND $rows AS r CREATE (:Item {id: r.d})-[:HAS_CHUNK]->(:Chunk {id: r.c, data_id: r.d})",
              {"rows": [{"d": i, "c": c} for i, c in zip(ids, chunk_ids, strict=True)]})  # fmt: skip
    k.execute("UNWIND $rows AS r MATCH (c:Chunk {id: r.c}), (e:Entity {id: r.e}) CREATE (c)-[:MENTIONS]->(e)",
              {"rows": [{"c": c, "e": e} for c, es in zip(chunk_ids, ents, strict=True) for e in set(es)]})  # fmt: skip

    def delete(v: int, erase: bool) -> None:
        d, c = ids[v], chunk_ids[v]
        db.execute("BEGIN IMMEDIATE")
        orphans = [r[0] for r in db.execute(
            "SELECT de.entity_id FROM data_entities de WHERE de.data_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM data_entities o WHERE o.entity_id = de.entity_id AND o.data_id != ?)", (d, d))]  # fmt: skip
        db.execute("DELETE FROM chunk_entities WHERE chunk_id = ?", (c,))
        db.execute("DELETE FROM chunks WHERE data_id = ?", (d,))
        db.execute("DELETE FROM data_entities WHERE data_id = ?", (d,))
        db.execute("DELETE FROM data WHERE id = ?", (d,))
        db.executemany("DELETE FROM entities WHERE id = ?", [(e,) for e in orphans])
        db.execute("COMMIT")
        if erase:
            delete_erasing(uri, session, f"data_id = '{d}'")
        else:
            lance.dataset(uri, session=session).delete(f"data_id = '{d}'")
        k.execute("MATCH (x:Chunk {id: $id}) DETACH DELETE x", {"id": c})
        k.execute("MATCH (x:Item {id: $id}) DETACH DELETE x", {"id": d})
        for e in orphans:
            k.execute("MATCH (x:Entity {id: $id}) DETACH DELETE x", {"id": e})
        (files / d).unlink()
        cache.execute("DELETE FROM emb WHERE hash = ?", (c,))
        if erase:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cache.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    times = []
    for v in random.Random(1).sample(range(n), min(100, n)):
        t = time.perf_counter()
        delete(v, erase)
        times.append(time.perf_counter() - t)
    return times


if __name__ == "__main__":
    size = int(sys.argv[1])
    print(json.dumps(layout(size) if "--layout" in sys.argv[2:] else main(size)))
