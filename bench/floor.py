"""The floor: the minimal raw operations for the same deletes, directly on SQLite, Kuzu and LanceDB.

    python bench/floor.py N        # prints JSON: delete one item's rows/vector/nodes (p50 over 100), and
                                   # one dataset's (N/10 items) in one statement per engine
Same layout as memsweep's store (indexed ids, one vector row per item, 3 entity nodes per item), no
planning, journal, permissions, reference counting or erasure.
"""

import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

DIM = 256


def main(n: int) -> dict:
    import kuzu
    import lance
    import lancedb
    import pyarrow as pa

    tmp = Path(tempfile.mkdtemp(prefix="floor-"))
    ids = [str(uuid.uuid4()) for _ in range(n)]
    ds = [f"ds{i % 10}" for i in range(n)]
    db = sqlite3.connect(tmp / "m.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE data (id TEXT PRIMARY KEY, dataset_id TEXT, text TEXT)")
    db.execute("CREATE INDEX ix ON data(dataset_id)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO data VALUES (?,?,?)", [(i, d, "x" * 100) for i, d in zip(ids, ds, strict=True)])
    db.execute("COMMIT")
    ldb = lancedb.connect(str(tmp / "v"))
    rng = np.random.default_rng(0)
    table = ldb.create_table("chunks", pa.table({
        "data_id": ids, "dataset_id": ds,
        "vector": pa.array(list(rng.random((n, DIM), dtype=np.float32)), type=pa.list_(pa.float32(), DIM)),
    }))  # fmt: skip
    lance.dataset(str(tmp / "v" / "chunks.lance")).create_scalar_index("data_id", index_type="BTREE")
    lance.dataset(str(tmp / "v" / "chunks.lance")).create_scalar_index("dataset_id", index_type="BTREE")
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
        table.delete(f"data_id = '{ids[v]}'")
        k.execute("UNWIND $ids AS i MATCH (d:Item {id: i}) DETACH DELETE d", {"ids": [ids[v]]})
        times.append(time.perf_counter() - t)
    victims_set = set(victims)
    t = time.perf_counter()
    gone = [ids[i] for i in range(n) if ds[i] == "ds3" and i not in victims_set]
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM data WHERE dataset_id = 'ds3'")
    db.execute("COMMIT")
    table.delete("dataset_id = 'ds3'")
    k.execute("UNWIND $ids AS i MATCH (d:Item {id: i}) DETACH DELETE d", {"ids": gone})
    empty_ms = (time.perf_counter() - t) * 1000
    return {
        "n": n,
        "delete_data_p50_ms": round(statistics.median(times) * 1000, 2),
        "empty_dataset_ms": round(empty_ms, 2),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
