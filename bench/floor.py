"""The floor: the minimal raw operations for the same deletes, directly on SQLite, Kuzu and LanceDB.

    python bench/floor.py N        # prints JSON: delete one item's rows/vector/nodes (p50 over 100), the
                                   # same plus the raw erasure steps, and one dataset's (N/10 items)
Same layout as memsweep's store (indexed ids, one vector row per item in fragments of 1,024 rows, one
graph node per item), each engine driven the fastest way we know (a single-key Kuzu MATCH uses the
primary-key index, where UNWIND scans the node table), and no planning, journal, permissions or reference
counting. `delete_data_erase_p50_ms` adds what erasure needs at minimum (ENGINES.md): SQLite with
secure_delete and a TRUNCATE checkpoint, and LanceDB's forced compaction of the touched fragment plus
the cleanup of old versions.
"""

import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np

DIM = 256


def main(n: int) -> dict:
    import kuzu
    import lance
    import pyarrow as pa

    tmp = Path(tempfile.mkdtemp(prefix="floor-"))
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

    victims = random.Random(1).sample(range(n), min(200, n))
    times, erase_times = [], []
    for j, v in enumerate(victims):
        erase = j % 2 == 1
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM data WHERE id = ?", (ids[v],))
        db.execute("COMMIT")
        lance.dataset(uri, session=session).delete(f"data_id = '{ids[v]}'")
        k.execute("MATCH (d:Item {id: $id}) DETACH DELETE d", {"id": ids[v]})
        if erase:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            lds = lance.dataset(uri)
            lds.optimize.compact_files(
                materialize_deletions_threshold=0.0, target_rows_per_fragment=1024, defer_index_remap=True
            )
            lance.dataset(uri).cleanup_old_versions(older_than=timedelta(0), delete_unverified=True)
        (erase_times if erase else times).append(time.perf_counter() - t)
    victims_set = set(victims)
    t = time.perf_counter()
    gone = [ids[i] for i in range(n) if ds[i] == "ds3" and i not in victims_set]
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM data WHERE dataset_id = 'ds3'")
    db.execute("COMMIT")
    lance.dataset(uri, session=session).delete("dataset_id = 'ds3'")
    k.execute("UNWIND $ids AS i MATCH (d:Item {id: i}) DETACH DELETE d", {"ids": gone})
    empty_ms = (time.perf_counter() - t) * 1000
    return {
        "n": n,
        "delete_data_p50_ms": round(statistics.median(times) * 1000, 2),
        "delete_data_erase_p50_ms": round(statistics.median(erase_times) * 1000, 2),
        "empty_dataset_ms": round(empty_ms, 2),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
