"""Plan → the report every deleting call returns (INTERFACE.md, "Deletion results")."""

from __future__ import annotations

from datetime import datetime

from memsweep.results import Candidate, DeletionReport, ForgetReport, PruneReport
from memsweep.storage.deletion.targets import Plan

_LABELS = {
    "datasets": "dataset", "items": "item", "chunks": "chunk", "vectors": "vector", "nodes_deleted": "graph node",
    "nodes_kept_shared": "shared node kept", "edges_deleted": "edge", "files_deleted": "file",
    "files_kept": "shared file kept", "bytes_freed": "byte", "cache_entries": "cache entry",
}  # fmt: skip


def _n(count: int, word: str) -> str:
    return f"{count:,} {word if count == 1 else _plural(word)}"


def describe(plan: Plan) -> str:
    """One or two sentences: what goes, what stays because shared."""
    c = plan.counts()
    if plan.op == "prune":
        parts = []
        for layer, counts in plan.layers.items():
            done = [_n(v, _LABELS[k]) for k, v in counts.model_dump().items() if v]
            parts.append(f"{layer} layer: {', '.join(done) or 'nothing'}")
        return ("; ".join(parts) or "nothing in those layers") + "."
    names = ""
    if plan.dataset_names:
        more = plan.datasets_touched - len(plan.dataset_names)
        names = ", ".join(repr(n) for n in plan.dataset_names) + (f" and {more:,} more" if more > 0 else "")
    where = f" from {'dataset' if plan.datasets_touched == 1 else 'datasets'} {names}" if names else ""
    if plan.memory_only:
        what = (
            f"the graph and vectors of {_n(len(plan.data_ids), 'item')}{where} ({_n(c.vectors, 'vector')}, "
            f"{_n(c.nodes_deleted, 'graph node')}); metadata and files are kept for rebuild"
        )
    else:
        what = (
            f"{_n(c.items, 'item')} ({_n(c.chunks, 'chunk')}, {_n(c.vectors, 'vector')}, "
            f"{_n(c.nodes_deleted, 'graph node')}, {_n(c.edges_deleted, 'edge')}, {_n(c.files_deleted, 'file')}, "
            f"{c.bytes_freed:,} bytes)"
        )
        if c.datasets == 1 and names:
            what += f" and the dataset {names}"
        elif c.datasets:
            what += f" and {_n(c.datasets, 'dataset')}" + (f" ({names})" if names else "")
        else:
            what += where
    kept = []
    if c.nodes_kept_shared:
        names = ", ".join(plan.kept_names[:5]) + (" …" if c.nodes_kept_shared > 5 else "")
        kept.append(f"{_n(c.nodes_kept_shared, 'shared node')} ({names})")
    if c.files_kept:
        kept.append(f"{_n(c.files_kept, 'shared file')}")
    tail = f" Kept because other items still use them: {', '.join(kept)}." if kept else ""
    if plan.items_not_deletable == 1:
        tail += " 1 more item that mentions it is in a dataset you may read but not delete: it, and the entity, stay."
    elif plan.items_not_deletable:
        tail += (
            f" {plan.items_not_deletable:,} more items that mention it are in datasets you may read but not "
            "delete: they, and the entity, stay."
        )
    return what + "." + tail


# The ops whose previews list the items they delete (scopes.annotate): their report is a ForgetReport.
LISTING_OPS = ("forget", "expired")


def build_report(
    plan: Plan,
    *,
    dry_run: bool,
    executed: bool,
    message: str,
    confirmation_required: bool = False,
    confirm_token: str | None = None,
    expires_at: datetime | None = None,
) -> DeletionReport:
    fields = dict(
        plan.counts().model_dump(),
        dry_run=dry_run,
        executed=executed,
        confirmation_required=confirmation_required,
        confirm_token=confirm_token,
        expires_at=expires_at,
        kept_shared=list(plan.kept_names),
        message=message,
        fingerprint=plan.fingerprint,
    )
    if plan.op == "prune":
        return PruneReport(**fields, layers=dict(plan.layers))
    if plan.op in LISTING_OPS:
        listed = [Candidate(data_id=d, dataset_id=ds, name=n, snippet=t) for d, ds, n, t in plan.listed]
        return ForgetReport(**fields, candidates=listed, items_not_deletable=plan.items_not_deletable)
    return DeletionReport(**fields)


def done_message(plan: Plan, erase: bool, erased: bool, limits: str | None = None) -> str:
    """`limits`: what an erase cannot reach on this metadata database (PostgreSQL settings), quoted as is."""
    if plan.empty:
        return "Nothing to delete: the plan was empty."
    if erased:
        tail = " Erased from disk." + (f" {limits}" if limits else "")
    elif erase:
        tail = (
            " The erase is pending: another process was reading the store, so the old bytes could not be "
            "overwritten yet; the background sweep retries (at the latest when the server stops or next starts)."
        )
    else:
        tail = " Bytes will be erased by the background sweep."
    return "Deleted " + describe(plan) + tail


def preview_message(plan: Plan) -> str:
    if plan.empty:
        return "Nothing to delete."
    return "Would delete " + describe(plan)


def _plural(word: str) -> str:
    if word.endswith("entry"):
        return word[:-1] + "ies"
    if word.endswith(" kept"):
        return word[:-5] + "s kept"
    return word + "s"
