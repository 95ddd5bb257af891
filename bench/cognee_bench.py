"""Cognee 1.6.5 side by side (run with the Python of a separate venv: `bench/run.py --cognee-python`).

    /path/to/cognee-venv/bin/python bench/cognee_bench.py N
Offline set-up (facts from issue 5): telemetry off, connection test skipped, a dummy LLM key, mock
embeddings, roots under a temp dir, and `tiktoken.get_encoding` replaced by a local byte-level encoding
(Cognee's delete path builds an embedding engine that would download one). The texts are added with
`cognee.add`; no graph nodes are created through `add_data_points`, so Cognee's delete times here are a
lower bound (with entity nodes it has more to delete). Prints one JSON object.
"""

import asyncio
import json
import os
import random
import sys
import tempfile
import time

ROOT = tempfile.mkdtemp(prefix="cognee-bench-")
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

sys.path.insert(0, os.path.dirname(__file__))
from workload import DATASETS, item, ms  # noqa: E402


async def timed(coro) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    await coro
    return time.perf_counter() - t


async def main(n: int) -> dict:
    out: dict = {"n": n}
    by_ds: dict[str, list[str]] = {}
    for i in range(n):
        it = item(i)
        by_ds.setdefault(it["dataset"], []).append(it["text"])
    t = time.perf_counter()
    for name, texts in by_ds.items():
        await cognee.add(texts, dataset_name=name)
    out["add_batched_per_item_ms"] = round((time.perf_counter() - t) / n * 1000, 2)
    out["add_single"] = ms([await timed(cognee.add(item(n + i)["text"], dataset_name="ds0")) for i in range(10)])
    out["list_datasets"] = ms([await timed(cognee.datasets.list_datasets()) for _ in range(10)])
    datasets = {d.name: d.id for d in await cognee.datasets.list_datasets()}
    out["list_data"] = ms([await timed(cognee.datasets.list_data(datasets["ds1"])) for _ in range(10)])
    victims = []
    for name in sorted(datasets):
        if name != "ds3":
            victims += [(datasets[name], d.id) for d in (await cognee.datasets.list_data(datasets[name]))[:5]]
    victims = random.Random(1).sample(victims, min(20, len(victims)))
    out["delete_data"] = ms([await timed(cognee.datasets.delete_data(dataset_id=d, data_id=i)) for d, i in victims])
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
