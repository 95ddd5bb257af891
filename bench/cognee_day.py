"""Cognee's side of the agent's day (bench/agent_day.py --cognee-python), run in Cognee's own venv: one
long-lived process that keeps Cognee's databases open, as a session would, and carries out the day's calls
it reads from stdin, one JSON object per line; each answer is one line on stdout starting with `@@ ` (Cognee
writes its own log lines there too).

    {"op": "add", "dataset": "ds3", "text": "...", "entities": ["Alice", "Oslo"]}
        -> {"dataset_id": ..., "data_id": ...}   cognee.add, then the item's chunk node and its (shared)
           entity nodes through add_data_points with the item as pipeline context, as bench/cognee_bench.py
           does (the layout cognify would give it, without an LLM)
    {"op": "delete", "dataset_id": ..., "data_id": ...}   cognee.datasets.delete_data
    {"op": "empty", "dataset_id": ...}                     cognee.datasets.empty_dataset
    {"op": "quit"}

Searches are not sent: offline (mock embeddings, no LLM) Cognee's chunk search returned no hits on these
nodes and its graph searches need an LLM, so there is no like-for-like search to time.
"""

import asyncio
import json
import sys
import uuid

import cognee_bench as cb  # Cognee's offline settings, its store in a temporary directory, the node types
from cognee.modules.data.methods import get_data, get_dataset
from cognee.modules.pipelines.models.PipelineContext import PipelineContext
from cognee.modules.users.methods import get_default_user
from cognee.tasks.storage import add_data_points


async def add(user: object, dataset: str, text: str, names: list[str]) -> dict:
    run = await cb.cognee.add(text, dataset_name=dataset)
    data_id, dataset_id = run.data_ingestion_info[0]["data_id"], run.dataset_id
    ds, item = await get_dataset(user.id, dataset_id), await get_data(user.id, data_id)  # type: ignore[attr-defined]
    entities = [cb.MemEntity(id=uuid.uuid5(cb.NS, name), name=name) for name in names]
    chunk = cb.MemChunk(id=uuid.uuid5(cb.NS, f"{dataset_id}:{data_id}"), text=text, mentions=entities)
    await add_data_points([chunk], ctx=PipelineContext(user=user, dataset=ds, data_item=item))
    return {"dataset_id": str(dataset_id), "data_id": str(data_id)}


async def main() -> None:
    await cb.cognee.add("A first note, so that Cognee's databases exist.", dataset_name="warm-up")
    user = await get_default_user()
    print("@@ " + json.dumps({"ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        call = json.loads(line)
        op = call["op"]
        if op == "quit":
            break
        if op == "add":
            out = await add(user, call["dataset"], call["text"], call["entities"])
        elif op == "delete":
            await cb.cognee.datasets.delete_data(
                dataset_id=uuid.UUID(call["dataset_id"]), data_id=uuid.UUID(call["data_id"])
            )
            out = {}
        elif op == "empty":
            await cb.cognee.datasets.empty_dataset(dataset_id=uuid.UUID(call["dataset_id"]))
            out = {}
        else:
            raise SystemExit(f"unknown op {op!r}")
        print("@@ " + json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
