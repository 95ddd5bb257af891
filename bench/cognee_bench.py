"""Cognee 1.6.5 side by side (run with the Python of a separate venv: `bench/run.py --cognee-python`).

    /path/to/cognee-venv/bin/python bench/cognee_bench.py N
Offline set-up (facts from issue 5): telemetry off, connection test skipped, a dummy LLM key, mock
embeddings, roots under a temp dir, and `tiktoken.get_encoding` replaced by a local byte-level encoding
(Cognee's delete path builds an embedding engine that would download one). The texts are added with
`cognee.add`; then, since `cognify` needs an LLM, each item gets its graph and vector nodes through
Cognee's `add_data_points` task with the item as its pipeline context: one chunk node holding the text and
the item's entity nodes, whose ids derive from their names so items share them as in memsweep's store.
Prints one JSON object.
"""

import asyncio
import atexit
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = tempfile.mkdtemp(prefix="cognee-bench-")
atexit.register(shutil.rmtree, ROOT, ignore_errors=True)  # Cognee's store for this run only
os.environ.update(
    TELEMETRY_DISABLED="1", COGNEE_SKIP_CONNECTION_TEST="true", LLM_API_KEY="dummy", MOCK_EMBEDDING="true",
    SYSTEM_ROOT_DIRECTORY=f"{ROOT}/system", DATA_ROOT_DIRECTORY=f"{ROOT}/data", LOG_LEVEL="ERROR",
)  # fmt: skip

import tiktoken  # noqa: E402


class _ByteEncoding:
    name = "bytes"

    def encode(self, text: str, **_: object) -> list[int]:
        return list(text.encode())

    def decode(self, tokens: list[int], **_: object) -> str:
        return bytes(tokens).decode(errors="ignore")


tiktoken.get_encoding = lambda name: _ByteEncoding()
tiktoken.encoding_for_model = lambda name: _ByteEncoding()

import cognee  # noqa: E402
from cognee.infrastructure.engine import DataPoint  # noqa: E402
from cognee.modules.pipelines.models.PipelineContext import PipelineContext  # noqa: E402
from cognee.modules.users.methods import get_default_user  # noqa: E402
from cognee.tasks.storage import add_data_points  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from workload import DATASETS, item, ms  # noqa: E402

# add_data_points costs ~270 ms per item here (45 minutes for 10,000): above this size the texts are
# added without nodes, "graph_nodes": false says so, and Cognee's delete times are then a lower bound.
NODES_MAX = int(os.environ.get("COGNEE_NODES_MAX", "2000"))
NS = uuid.UUID("6a1d2c52-4f0e-4f61-9d5e-1a0f3c2b7e11")


class MemEntity(DataPoint):
    name: str
    metadata: dict = {"index_fields": ["name"]}  # noqa: RUF012 (a pydantic field, copied per instance)


class MemChunk(DataPoint):
    text: str
    mentions: list[MemEntity] = []  # noqa: RUF012
    metadata: dict = {"index_fields": ["text"]}  # noqa: RUF012


async def attach_nodes(by_text: dict[str, list[str]]) -> int:
    """Give every stored item its chunk and (shared) entity nodes, owned by that item in Cognee's ledger."""
    user = await get_default_user()
    n = 0
    for ds in await cognee.datasets.list_datasets():
        for d in await cognee.datasets.list_data(ds.id):
            path = d.raw_data_location.removeprefix("file://")
            text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
            ents = [MemEntity(id=uuid.uuid5(NS, name), name=name) for name in by_text.get(text, [])]
            chunk = MemChunk(id=uuid.uuid5(NS, f"{ds.id}:{d.id}"), text=text, mentions=ents)
            await add_data_points([chunk], ctx=PipelineContext(user=user, dataset=ds, data_item=d))
            n += 1
    return n


async def timed(coro) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    await coro
    return time.perf_counter() - t


async def main(n: int) -> dict:
    out: dict = {"n": n}
    by_ds: dict[str, list[str]] = {}
    by_text: dict[str, list[str]] = {}
    for i in range(n):
        it = item(i)
        by_ds.setdefault(it["dataset"], []).append(it["text"])
        by_text[it["text"]] = [e["name"] for e in it["entities"]]
    t = time.perf_counter()
    for name, texts in by_ds.items():
        await cognee.add(texts, dataset_name=name)
    out["add_batched_per_item_ms"] = round((time.perf_counter() - t) / n * 1000, 2)
    out["graph_nodes"] = n <= NODES_MAX
    if out["graph_nodes"]:
        t = time.perf_counter()
        out["items_with_nodes"] = await attach_nodes(by_text)
        out["add_data_points_per_item_ms"] = round((time.perf_counter() - t) / max(1, n) * 1000, 2)
    out["add_single"] = ms([await timed(cognee.add(item(n + i)["text"], dataset_name="ds0")) for i in range(10)])
    out["list_datasets"] = ms([await timed(cognee.datasets.list_datasets()) for _ in range(10)])
    datasets = {d.name: d.id for d in await cognee.datasets.list_datasets()}
    out["list_data"] = ms([await timed(cognee.datasets.list_data(datasets["ds1"])) for _ in range(10)])
    # Cognee keeps the engines of DATABASE_MAX_LRU_CACHE_SIZE datasets open (6 by default); a delete in
    # another dataset first closes one and opens its own. A session deleting in a few datasets meets the
    # warm case; the two are measured apart (issue 12.6: victims spread over 9 datasets made most timed
    # deletes measure Cognee reopening engines, and that was quoted as its delete cost).
    from cognee.shared.lru_cache import DATABASE_MAX_LRU_CACHE_SIZE as cached

    names = [name for name in sorted(datasets) if name != "ds3"]
    pool = {name: [d.id for d in (await cognee.datasets.list_data(datasets[name]))[:12]] for name in names}
    warm = names[:cached]
    for name in warm:  # open each warm dataset's engines (untimed)
        await cognee.datasets.delete_data(dataset_id=datasets[name], data_id=pool[name].pop())
    victims = random.Random(1).sample([(name, i) for name in warm for i in pool[name][:4]], min(20, 4 * len(warm)))
    for name, i in victims:
        pool[name].remove(i)
    out["delete_data"] = ms(
        [await timed(cognee.datasets.delete_data(dataset_id=datasets[n_], data_id=i)) for n_, i in victims]
    )
    out["delete_data"]["case"] = f"warm: victims in {len(warm)} datasets, the {cached} whose engines Cognee keeps open"
    # Cold: round robin over every dataset but ds3 (more than the cache holds), so each delete reopens.
    cold = [(name, pool[name].pop()) for _ in range(2) for name in names if pool[name]]
    out["delete_data_cold"] = ms(
        [await timed(cognee.datasets.delete_data(dataset_id=datasets[n_], data_id=i)) for n_, i in cold]
    )
    out["delete_data_cold"]["case"] = f"cold: round robin over {len(names)} datasets, more than the {cached} cached"
    items_ds3 = len(await cognee.datasets.list_data(datasets["ds3"]))
    out["empty_dataset"] = {
        "p50_ms": round(await timed(cognee.datasets.empty_dataset(dataset_id=datasets["ds3"])) * 1000, 2),
        "items": items_ds3,
    }
    if n <= 2000:  # at 200 items it took ~21 s; beyond a few thousand it would dominate the whole run
        out["delete_all"] = {"p50_ms": round(await timed(cognee.datasets.delete_all()) * 1000, 2)}
    out["prune_files"] = {"p50_ms": round(await timed(cognee.prune.prune_data()) * 1000, 2)}
    out["prune_system"] = {"p50_ms": round(await timed(cognee.prune.prune_system(metadata=True)) * 1000, 2)}
    _ = DATASETS
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1])))))
