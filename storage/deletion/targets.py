"""The light half of the delete path: what a call targets and what a plan holds (no database imports, so
the server can register its tools and answer `tools/list` before the storage engines are loaded)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

from memsweep.errors import ConfirmationRequired, InvalidInput
from memsweep.results import DeletionCounts


@dataclass(frozen=True)
class Wipe:
    """Whole-layer resets (prune)."""

    files: bool = False
    graph: bool = False
    vector: bool = False
    metadata: bool = False
    cache: bool = False

    @property
    def any(self) -> bool:
        return any(asdict(self).values())


@dataclass(frozen=True)
class Plan:
    op: str
    memory_only: bool = False
    data_ids: tuple[str, ...] = ()
    dataset_ids: tuple[str, ...] = ()  # datasets removed with their items
    chunk_ids: tuple[str, ...] = ()
    vector_data_ids: tuple[str, ...] = ()  # items whose vector rows exist
    vectors: int = 0
    graph_data_ids: tuple[str, ...] = ()  # items whose graph nodes exist
    graph_chunk_ids: tuple[str, ...] = ()
    graph_entity_ids: tuple[str, ...] = ()  # entity nodes removed (no other item with a graph holds them)
    graph_relations: tuple[tuple[str, str, str], ...] = ()
    edges: int = 0
    meta_entity_ids: tuple[str, ...] = ()  # entity rows removed (no other live item references them)
    nodes_kept_shared: int = 0
    kept_names: tuple[str, ...] = ()  # shown in previews only; never journaled or logged
    dataset_names: tuple[str, ...] = ()  # where the items are (up to MAX_DATASET_NAMES); shown only
    datasets_touched: int = 0
    # Shown only (never journaled, never in the fingerprint): up to 20 of the items, for subject and
    # several-item forgets (data_id, dataset_id, name, first words), and how many items mentioning the
    # subject sit in datasets the caller may read but not delete (they and the entity stay).
    listed: tuple[tuple[str, str, str, str], ...] = ()
    items_not_deletable: int = 0
    files_deleted: tuple[str, ...] = ()
    files_kept: int = 0
    bytes_freed: int = 0
    cache_keys: tuple[str, ...] = ()
    wipe: Wipe = field(default_factory=Wipe)
    layers: dict[str, DeletionCounts] = field(default_factory=dict)
    extra_fingerprint: str = ""

    @property
    def empty(self) -> bool:
        if self.wipe.any:
            return not any(self.counts().model_dump().values())
        return not self.data_ids and not self.dataset_ids

    def counts(self) -> DeletionCounts:
        if self.layers:
            total: dict[str, int] = {}
            for layer in self.layers.values():
                for key, value in layer.model_dump().items():
                    total[key] = total.get(key, 0) + value
            return DeletionCounts(**total)
        graph_nodes = len(self.graph_data_ids) + len(self.graph_chunk_ids) + len(self.graph_entity_ids)
        return DeletionCounts(
            datasets=len(self.dataset_ids),
            items=0 if self.memory_only else len(self.data_ids),
            chunks=0 if self.memory_only else len(self.chunk_ids),
            vectors=self.vectors,
            nodes_deleted=graph_nodes,
            nodes_kept_shared=self.nodes_kept_shared,
            edges_deleted=self.edges,
            files_deleted=len(self.files_deleted),
            files_kept=self.files_kept,
            bytes_freed=self.bytes_freed,
        )

    @property
    def fingerprint(self) -> str:
        """Binds a confirmation to this exact plan: any item added or removed in scope changes it."""
        body = {
            "op": self.op,
            "memory_only": self.memory_only,
            "data": sorted(self.data_ids),
            "datasets": sorted(self.dataset_ids),
            "entities": sorted(self.graph_entity_ids),
            "meta_entities": sorted(self.meta_entity_ids),
            "files": sorted(self.files_deleted),
            "wipe": asdict(self.wipe),
            "extra": self.extra_fingerprint,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Target:
    """What a deleting call names. `kind`: item, items (several ids), entity (every item that mentions a
    subject), dataset, all, prune."""

    op: str
    kind: str
    data_id: str | None = None
    dataset: str | None = None
    memory_only: bool = False
    wipe: Wipe = field(default_factory=Wipe)
    data_ids: tuple[str, ...] = ()
    entity: str | None = None
    until: datetime | None = None  # kind "expired": items whose expiry is at or before this moment

    @property
    def guarded(self) -> bool:
        """Whether running it needs a confirmation: everything but one item."""
        return self.kind in ("dataset", "all", "entity", "prune") or (self.kind == "items" and len(self.data_ids) > 1)


MAX_DATA_IDS = 1000


class PlanChanged(ConfirmationRequired):
    """The data changed between the preview (or the question) and the execution; nothing was deleted."""

    def __init__(self, plan: Plan) -> None:
        super().__init__("The data changed since the preview; nothing was deleted.")
        self.plan = plan

    def __reduce__(self) -> tuple[type[PlanChanged], tuple[Plan]]:
        return (PlanChanged, (self.plan,))  # pickled whole: it crosses into the server process


def forget_target(
    data_id: str | None = None,
    dataset: str | None = None,
    everything: bool = False,
    memory_only: bool = False,
    entity: str | None = None,
    data_ids: Sequence[str] | None = None,
) -> Target:
    """What `forget` names: one of `data_id`, `data_ids`, `entity` (narrowed by `dataset`), `dataset`, or
    `everything=true`. (`query` is a search, never a target: see `Memory.forget`.)"""
    chosen = [n for n, v in (("data_id", data_id), ("data_ids", data_ids), ("entity", entity),
                             ("everything=true", everything)) if v]  # fmt: skip
    if len(chosen) > 1:
        raise InvalidInput(f"Give one of {', '.join(f'`{c}`' for c in chosen)}, not several. Nothing was deleted.")
    if everything and dataset:
        raise InvalidInput("`everything=true` cannot be combined with `data_id` or `dataset`. Nothing was deleted.")
    if data_id:
        return Target("forget", "item", data_id=data_id, dataset=dataset, memory_only=memory_only)
    if data_ids:
        if isinstance(data_ids, str) or len(data_ids) > MAX_DATA_IDS:
            raise InvalidInput(f"`data_ids` takes a list of 1–{MAX_DATA_IDS:,} item ids. Nothing was deleted.")
        return Target("forget", "items", data_ids=tuple(data_ids), dataset=dataset, memory_only=memory_only)
    if entity is not None:
        return Target("forget", "entity", entity=entity, dataset=dataset, memory_only=memory_only)
    if dataset:
        return Target("forget", "dataset", dataset=dataset, memory_only=memory_only)
    if everything:
        return Target("forget", "all", memory_only=memory_only)
    raise InvalidInput(
        "Say what to forget: `data_id`, `data_ids`, `entity`, `dataset`, or `everything=true` (or `query` to "
        "find candidates first). Nothing was deleted."
    )


def prune_target(files: bool, graph: bool, vector: bool, metadata: bool, cache: bool) -> Target:
    wipe = Wipe(files=files, graph=graph, vector=vector, metadata=metadata, cache=cache)
    if not wipe.any:
        raise InvalidInput("Choose at least one layer: files, graph, vector, metadata or cache. Nothing was deleted.")
    return Target("prune", "prune", wipe=wipe)
