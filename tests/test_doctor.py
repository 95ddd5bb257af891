"""doctor finds every inconsistency made on purpose behind the engine's back, and --repair fixes it."""

import numpy as np
import pytest
from memsweep.api import Memory
from memsweep.config import Settings
from memsweep.storage.stores.graph import GraphAdd, GraphDelete
from memsweep.storage.stores.vectors import VectorRow

pytestmark = pytest.mark.anyio
U = "123e4567-e89b-12d3-a456-426614174000"


async def _store(mem: Memory):  # type: ignore[no-untyped-def]
    a = await mem.add("notes", text="Alice moved to New York.", entities=[{"name": "Alice"}, {"name": "New York"}],
                      relations=[{"source": "Alice", "relation": "moved_to", "target": "New York"}])  # fmt: skip
    b = await mem.add("notes", text="Bob flew to Paris.")
    return a, b


def _vector_orphan(mem: Memory, a, b) -> None:  # type: ignore[no-untyped-def]
    mem.engine.vectors.add([VectorRow(U, U, a.dataset_id, np.ones(mem.engine.embedder.dim))])


def _vector_missing(mem: Memory, a, b) -> None:  # type: ignore[no-untyped-def]
    mem.engine.vectors.delete_data([b.data_id])


def _node_orphan(mem: Memory, a, b) -> None:  # type: ignore[no-untyped-def]
    mem.engine.graph.add(GraphAdd(entities=["stray-entity"], items=[(U, a.dataset_id)]))


def _node_missing(mem: Memory, a, b) -> None:  # type: ignore[no-untyped-def]
    mem.engine.graph.delete(GraphDelete(data_ids=[b.data_id]))


def _phantom_edge(mem: Memory, a, b) -> None:  # type: ignore[no-untyped-def]
    # A duplicate relation edge, as the Kuzu crash bug (kuzudb/kuzu#5954) leaves edges the metadata never had.
    g = mem.engine.graph
    rel = g.snapshot().relates[0]
    g._rows("MATCH (x:Entity)-[r:RELATES]->(y:Entity) WITH x, y, r LIMIT 1 CREATE (x)-[:RELATES {id: $id, data_id: r.data_id}]->(y)",
            {"id": rel})  # fmt: skip


def _file_stray(mem: Memory, a, b) -> None:  # type: ignore[no-untyped-def]
    mem.engine.files.put(b"nobody owns these bytes")
    tmp = mem.engine.files.root / "ab" / ".tmp-left-behind"
    tmp.parent.mkdir(exist_ok=True)
    tmp.write_bytes(b"half a write")


def _cache_orphan(mem: Memory, a, b) -> None:  # type: ignore[no-untyped-def]
    mem.engine.cache.put_many({"hashing-ngram-256-v1:" + "0" * 64: np.ones(4, dtype=np.float32)})


CASES = {
    "orphan_vector": _vector_orphan,
    "missing_vector": _vector_missing,
    "orphan_node": _node_orphan,
    "missing_node": _node_missing,
    "edge_mismatch": _phantom_edge,
    "unreferenced_file": _file_stray,
    "orphan_cache": _cache_orphan,
}


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_doctor_finds_and_repairs(mem: Memory, kind: str) -> None:
    a, b = await _store(mem)
    async with mem.engine.exclusive():
        CASES[kind](mem, a, b)
    found = await mem.doctor()
    assert not found.consistent and kind in {f.kind for f in found.findings}
    repaired = await mem.doctor(repair=True)
    assert repaired.consistent and repaired.repaired, repaired.findings
    assert (await mem.doctor()).consistent
    assert {i.id for i in await mem.datasets.list_data("notes")} == {a.data_id, b.data_id}
    assert (await mem.search("Paris"))[0].data_id == b.data_id


async def test_missing_file_is_reported_not_invented(mem: Memory) -> None:
    await _store(mem)
    h = next(iter(mem.engine.files.hashes()))
    mem.engine.files.path_for(h).unlink()
    report = await mem.doctor(repair=True)
    assert "missing_file" in {f.kind for f in report.findings} and not report.consistent


async def test_lost_graph_is_rebuilt_on_open(settings: Settings) -> None:
    async with Memory(settings) as mem:
        await _store(mem)
    for f in (settings.data_dir / "graph").iterdir():
        f.unlink()
    async with Memory(settings) as mem:
        assert (await mem.doctor()).consistent
        assert (await mem.doctor()).checked["graph_nodes"] > 0


async def test_store_after_many_adds_and_deletes_is_consistent(mem: Memory) -> None:
    items = [await mem.add(f"ds{i % 3}", text=f"Note {i}: Alice and Bob{i % 4} in Rome.") for i in range(24)]
    for item in items[::3]:
        await mem.datasets.delete_data(dataset_id=item.dataset_id, data_id=item.data_id)
    await mem.datasets.empty_dataset(dataset_id="ds1")
    await mem.forget(dataset="ds2", memory_only=True)
    report = await mem.doctor()
    assert report.consistent and report.checked["items"] == 8  # ds0 lost all 8 one by one, ds1 emptied
