"""Pydantic models returned by the engine's Python API and by the MCP tools (their output schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class DatasetInfo(_Result):
    id: str
    name: str
    owner: str
    items: int
    created_at: datetime
    can_delete: bool
    can_read: bool = Field(default=True, description="False when you hold only other permissions (e.g. delete) on it.")
    retention_days: int | None = None
    on_hold: bool = False


class DatasetList(_Result):
    datasets: list[DatasetInfo]


class DataItem(_Result):
    id: str
    name: str
    mime_type: str
    size_bytes: int
    content_hash: str
    created_at: datetime
    chunks: int
    entities: int
    owned_file: bool
    expires_at: datetime | None = None


class DataPage(_Result):
    dataset_id: str
    items: list[DataItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class AddResult(_Result):
    data_id: str
    dataset_id: str
    dataset_name: str
    chunks: int
    entities: int
    deduplicated: bool = Field(description="True when identical content was already stored and is shared.")


class SearchHit(_Result):
    data_id: str
    dataset_id: str
    name: str
    snippet: str
    score: float


class SearchResult(_Result):
    hits: list[SearchHit]


class DeletionCounts(_Result):
    datasets: int = 0
    items: int = 0
    chunks: int = 0
    vectors: int = 0
    nodes_deleted: int = 0
    nodes_kept_shared: int = 0
    edges_deleted: int = 0
    files_deleted: int = 0
    files_kept: int = 0
    bytes_freed: int = 0
    cache_entries: int = 0


class Candidate(_Result):
    data_id: str
    dataset_id: str
    name: str
    snippet: str
    score: float | None = Field(default=None, description="forget(query) only")


class Receipt(_Result):
    """What an executed delete certifies (`memsweep audit --receipt ID`): ids, counts, times; never content."""

    receipt_id: str
    at: datetime
    user: str
    op: str
    removed: dict[str, int] = Field(
        description="Per store: metadata rows, vector rows, graph nodes and edges, files, cache entries."
    )
    erase: bool
    erased_at: datetime | None = Field(default=None, description="When the deleted bytes were erased (null: pending).")
    verified: bool | None = Field(
        default=None, description="A scan of the data directory was made before the call returned."
    )
    files_scanned: int | None = None
    bytes_scanned: int | None = None
    hits: int | None = Field(default=None, description="Deleted texts or vectors found by the scan (must be 0).")


class DeletionReport(DeletionCounts):
    dry_run: bool
    executed: bool = Field(description="True when this call carried out its plan (even an empty one).")
    confirmation_required: bool = False
    confirm_token: str | None = None
    expires_at: datetime | None = None
    kept_shared: list[str] = Field(
        default_factory=list,
        description="Up to 20 graph nodes kept because other items still reference them.",
    )
    message: str = ""
    fingerprint: str = Field(default="", description="Identifies the exact plan; a confirmation is bound to it.")
    receipt_id: str | None = None
    verified: bool | None = Field(default=None, description="verify=true: data directory scanned")
    files_scanned: int | None = None
    bytes_scanned: int | None = None
    hits: int | None = Field(default=None, description="verify=true: files holding deleted bytes (0: none)")


# `forget`'s (and expiry's) report: the deletion report plus the items it lists. Only these calls list
# items, so only their output schema carries the two fields (issue 11.5: they cost the other four deleting
# tools ~260 characters of `tools/list` each, for fields that were always empty there). A comment, not a
# docstring: pydantic would publish a docstring as the output schema's description.
class ForgetReport(DeletionReport):
    candidates: list[Candidate] = Field(
        default_factory=list,
        description="Up to 20 items it deletes; with query, the matches (nothing deleted).",
    )
    items_not_deletable: int = Field(default=0, description="entity: items in datasets you may not delete (kept)")

    @classmethod
    def of(cls, report: DeletionReport) -> ForgetReport:
        """`report` as a ForgetReport: a forget whose plan lists nothing (one item, a dataset) has empty lists."""
        return report if isinstance(report, ForgetReport) else cls(**report.model_dump())


class PruneReport(DeletionReport):
    # Published as "per layer, integer counts" rather than a second copy of the eleven counters the report
    # itself lists (~330 characters of `tools/list`, issue 11.5); the model still validates each layer.
    layers: Annotated[
        dict[str, DeletionCounts],
        WithJsonSchema(
            {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}}}
        ),
    ] = Field(default_factory=dict)


class RebuildReport(_Result):
    items: int
    chunks: int
    vectors: int
    nodes: int
    message: str


class DoctorFinding(_Result):
    kind: str
    count: int
    detail: str
    repaired: bool = False


class DoctorReport(_Result):
    consistent: bool
    findings: list[DoctorFinding]
    checked: dict[str, int]
    repaired: bool = False


class AuditEntry(_Result):
    seq: int
    at: datetime
    user: str
    op: str
    counts: dict[str, int]
    data_ids: list[str]
