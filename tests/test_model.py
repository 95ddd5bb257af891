"""A Hypothesis state machine drives the engine with random adds (shared entities, identical texts across
datasets), deletes, forgets, prunes and rebuilds against a plain in-memory model, and after every step
checks the model against every store. `MEMSWEEP_MODEL_EXAMPLES` runs more by hand (CI: 120)."""

import asyncio
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from memsweep.api import Memory
from memsweep.config import Settings
from memsweep.errors import NotFound
from memsweep.storage.ids import entity_id, normalise_name
from memsweep.storage.stores.files import owner_key, sha256_bytes

from tests.pgserver import new_store_metadata

DATASETS = ["alpha", "beta", "gamma"]
NAMES = ["Alice", "Bob", "New York", "Paris", "Acme"]
TEXTS = ["Alice met Bob.", "A trip to Paris.", "Acme hired Alice.", "Notes from New York."]


class Store(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="memsweep-model-"))
        new_store_metadata()  # every example is a new store (its own database on PostgreSQL)
        self.loop = asyncio.new_event_loop()
        self.mem = Memory(Settings(data_dir=self.tmp / "d", user="alice", allow_prune=True))
        self.run(self.mem.__aenter__())
        self.now = datetime.now(UTC)
        self.mem.engine.clock = lambda: self.now  # time advances by rule, never by sleeping
        # the model: data_id -> (dataset, text, entity names, has_graph, has_vectors, file_kept)
        self.items: dict[str, dict] = {}
        self.datasets: set[str] = set()

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.mem.close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- rules -----------------------------------------------------------------------------------------
    @rule(ds=st.sampled_from(DATASETS), text=st.sampled_from(TEXTS), names=st.sets(st.sampled_from(NAMES), max_size=3))
    def add(self, ds: str, text: str, names: set[str]) -> None:
        r = self.run(self.mem.add(ds, text=text, entities=[{"name": n} for n in sorted(names)]))
        self.items[r.data_id] = {"ds": ds, "text": text, "names": names, "graph": True, "vectors": True, "file": True}
        self.datasets.add(ds)

    @rule(ds=st.sampled_from(DATASETS), text=st.sampled_from(TEXTS), days=st.integers(1, 3))
    def add_expiring(self, ds: str, text: str, days: int) -> None:
        r = self.run(self.mem.add(ds, text=text, entities=[], ttl_days=days))
        self.items[r.data_id] = {"ds": ds, "text": text, "names": set(), "graph": True, "vectors": True,
                                 "file": True, "expires": self.now + timedelta(days=days)}  # fmt: skip
        self.datasets.add(ds)

    @rule(days=st.integers(1, 3))
    def time_passes_and_the_sweep_runs(self, days: int) -> None:
        self.now += timedelta(days=days)
        due = {k for k, v in self.items.items() if v.get("expires") and v["expires"] <= self.now}
        for k in due:  # invisible at once ...
            assert k not in {i.id for i in self.run(self.mem.datasets.list_data(self.items[k]["ds"]))}
        report = self.run(self.mem.expire())  # ... and gone after the sweep
        assert report.items == len(due)
        for k in due:
            del self.items[k]

    @precondition(lambda self: self.items)
    @rule(data=st.data())
    def delete_data(self, data: st.DataObject) -> None:
        data_id = data.draw(st.sampled_from(sorted(self.items)))
        ds = self.items[data_id]["ds"]
        report = self.run(self.mem.datasets.delete_data(dataset_id=ds, data_id=data_id))
        assert report.items == 1
        del self.items[data_id]

    @precondition(lambda self: self.datasets)
    @rule(data=st.data(), via_forget=st.booleans())
    def empty_dataset(self, data: st.DataObject, via_forget: bool) -> None:
        ds = data.draw(st.sampled_from(sorted(self.datasets)))
        if via_forget:
            self.run(self.mem.forget(dataset=ds))
        else:
            self.run(self.mem.datasets.empty_dataset(dataset_id=ds))
        self.items = {k: v for k, v in self.items.items() if v["ds"] != ds}
        self.datasets.discard(ds)

    @rule(via_forget=st.booleans())
    def delete_all(self, via_forget: bool) -> None:
        if via_forget:
            self.run(self.mem.forget(everything=True))
        else:
            self.run(self.mem.datasets.delete_all())
        self.items.clear()
        self.datasets.clear()

    @precondition(lambda self: self.items)
    @rule(name=st.sampled_from(NAMES))
    def forget_entity(self, name: str) -> None:
        about = {k for k, v in self.items.items() if name in v["names"]}
        if not about:
            with pytest.raises(NotFound):
                self.run(self.mem.forget(entity=name.upper()))
            return
        report = self.run(self.mem.forget(entity=name.upper()))  # identity is the normalised name
        assert report.executed and report.items == len(about)
        for k in about:
            del self.items[k]

    @precondition(lambda self: len(self.items) >= 2)
    @rule(data=st.data())
    def forget_items(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.items)), min_size=2, max_size=4, unique=True))
        report = self.run(self.mem.forget(data_ids=ids))
        assert report.executed and report.items == len(ids)
        for k in ids:
            del self.items[k]

    @precondition(lambda self: self.items)
    @rule(data=st.data())
    def forget_memory_only(self, data: st.DataObject) -> None:
        data_id = data.draw(st.sampled_from(sorted(self.items)))
        self.run(self.mem.forget(data_id=data_id, memory_only=True))
        self.items[data_id].update(graph=False, vectors=False)

    @rule(layers=st.fixed_dictionaries({k: st.booleans() for k in ("files", "graph", "vector", "metadata", "cache")}))
    def prune(self, layers: dict[str, bool]) -> None:
        if not any(layers.values()):
            return
        self.run(self.mem.prune.prune(**layers))
        if layers["metadata"]:
            self.items.clear()
            self.datasets.clear()
        for item in self.items.values():
            item["graph"] &= not layers["graph"]
            item["vectors"] &= not layers["vector"]
            item["file"] &= not layers["files"]
        if layers["metadata"] and not layers["files"]:
            self.run(self.mem.doctor(repair=True))  # prune(metadata) leaves owned files unreferenced by design

    @rule()
    def rebuild(self) -> None:
        self.run(self.mem.rebuild())
        for item in self.items.values():
            item.update(graph=True, vectors=True)

    # -- the model against every store -----------------------------------------------------------------
    @invariant()
    def stores_match_the_model(self) -> None:
        engine = self.mem.engine
        listed = {d.name: d for d in self.run(self.mem.datasets.list_datasets())}
        assert set(listed) == self.datasets
        live = {i.id for ds in listed for i in self.run(self.mem.datasets.list_data(ds))}
        assert live == set(self.items)
        snap = self.run(_graph_snapshot(self.mem))
        owner = self.run(_owner(self.mem))
        want_graph = {i for i, v in self.items.items() if v["graph"]}
        assert snap.items == want_graph
        want_entities = {
            entity_id(owner, normalise_name(n)) for v in self.items.values() if v["graph"] for n in v["names"]
        }
        assert snap.entities == want_entities
        vectors = engine.vectors.count()
        assert vectors == sum(1 for v in self.items.values() if v["vectors"])  # one chunk per short text
        files = set(engine.files.hashes())
        assert files == {owner_key(owner, sha256_bytes(v["text"].encode())) for v in self.items.values() if v["file"]}
        report = self.run(self.mem.doctor())
        assert report.consistent, report.findings


async def _graph_snapshot(mem: Memory):  # type: ignore[no-untyped-def]
    async with mem.engine.exclusive():
        return await mem.engine.run(mem.engine.graph.snapshot)


async def _owner(mem: Memory) -> str:
    from memsweep.storage import access

    async with mem.engine.meta.write() as conn:
        uid = await conn.run_sync(access.user_id, mem.user, create=True)
    assert uid is not None
    return uid


TestStore = Store.TestCase
TestStore.settings = settings(
    max_examples=int(os.environ.get("MEMSWEEP_MODEL_EXAMPLES", "120")),
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
