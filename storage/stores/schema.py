"""Relational schema of the metadata store: the source of truth (DESIGN.md, "The model").

Core tables rather than ORM classes: every hot path is a bulk statement over ids, and the delete path needs
to say exactly which rows it touches.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back time-zone aware: SQLite keeps no offset, and a naive
    `created_at` broke every client that checks `format: date-time` (RFC 3339 needs the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


metadata = MetaData()
ID = String(36)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("owner_id", ID, ForeignKey("users.id"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Retention set by the operator (`memsweep retention`): new items expire this many days after their add.
    Column("retention_days", Integer, nullable=True),
    # On hold (`memsweep hold`): nothing of it expires and no delete touches it until `memsweep release`.
    Column("hold", Boolean, nullable=True),
    UniqueConstraint("owner_id", "name", name="uq_dataset_owner_name"),
)

acl = Table(
    "acl",
    metadata,
    Column("dataset_id", ID, ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("permission", String(8), primary_key=True),
    Index("ix_acl_user", "user_id", "permission"),
)

# status: ingesting -> active -> deleting (rows leave in the journal's purge step).
# file_state: stored (owned file under files/), reference (copy=false: a path we never touch), pruned.
# graph_ok / vectors_ok: false after a prune of that layer, until `rebuild`.
data = Table(
    "data",
    metadata,
    Column("id", ID, primary_key=True),
    Column("dataset_id", ID, ForeignKey("datasets.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("mime_type", String(127), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    # Where the owned bytes live in the file store: a hash of (owner, content), so identical content is
    # shared between one owner's items only and nothing one owner sees depends on another's data.
    Column("file_key", String(64), nullable=True),
    Column("owned", Boolean, nullable=False),
    Column("source_path", Text, nullable=True),
    Column("status", String(10), nullable=False),
    Column("file_state", String(10), nullable=False),
    Column("graph_ok", Boolean, nullable=False, default=True),
    Column("vectors_ok", Boolean, nullable=False, default=True),
    Column("journal_id", ID, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # Invisible to every read from this moment, and swept (deleted with erase) by the expiry sweep.
    Column("expires_at", UTCDateTime(), nullable=True),
    Index("ix_data_dataset", "dataset_id", "status", "created_at", "id"),
    Index("ix_data_expires", "expires_at"),
    Index("ix_data_hash", "content_hash"),
    Index("ix_data_file_key", "file_key"),
    Index("ix_data_journal", "journal_id"),
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("data_id", ID, ForeignKey("data.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Index("ix_chunks_data", "data_id", "seq"),
    Index("ix_chunks_hash", "text_hash"),
)

# One node per (owner, normalised name): the id is derived from both (storage/ids.py).
entities = Table(
    "entities",
    metadata,
    Column("id", ID, primary_key=True),
    Column("owner_id", ID, nullable=False),
    Column("name", String(255), nullable=False),
    Column("norm", String(255), nullable=False),
    Column("type", String(64), nullable=True),
    Column("description", Text, nullable=True),
    Index("ix_entities_owner_norm", "owner_id", "norm"),
    # forget(entity=…) finds the entity by name across owners (datasets shared with the caller), which the
    # index above, led by the owner, does not serve: every statement of its plan read the whole table
    # (7 ms per statement at 100,000 entities, ~10 statements per plan, in the preview and the delete alike).
    Index("ix_entities_norm", "norm"),
)

# These rows are the reference counts of graph nodes: a node is shared iff a live item outside a plan
# still has a row here. Never decided from graph aggregates (ENGINES.md: Kuzu miscounts after a crash).
data_entities = Table(
    "data_entities",
    metadata,
    Column("data_id", ID, ForeignKey("data.id"), primary_key=True),
    Column("entity_id", ID, primary_key=True),
    # What this item said about the entity. The entity row shows what its oldest live item said, and is
    # recomputed when items go, so a deleted item's spelling, type and description leave with it.
    Column("name", String(255), nullable=True),
    Column("type", String(64), nullable=True),
    Column("description", Text, nullable=True),
    # The item's `created_at`, copied: "the oldest live item that says something" is then one probe of the
    # partial indexes below per entity and field, not a join and sort of every item that mentions it
    # (re-deriving 500 shared entities took 2.0 s of emptying 10,000 items from a 100k store).
    Column("created_at", UTCDateTime(), nullable=True),
    Index("ix_data_entities_entity", "entity_id"),
    *(
        Index(
            f"ix_data_entities_first_{field}",
            "entity_id",
            "created_at",
            "data_id",
            # PostgreSQL gets the same WHERE when a store on it opens (postgres.declare_partial_indexes):
            # naming `postgresql_where` here imported SQLAlchemy's PostgreSQL dialect into every process.
            sqlite_where=text(f"{field} IS NOT NULL"),
        )
        for field in ("name", "type", "description")
    ),
)

chunk_entities = Table(
    "chunk_entities",
    metadata,
    Column("chunk_id", ID, ForeignKey("chunks.id"), primary_key=True),
    Column("entity_id", ID, primary_key=True),
    Index("ix_chunk_entities_entity", "entity_id"),
)

relations = Table(
    "relations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("data_id", ID, ForeignKey("data.id"), nullable=False),
    Column("source_id", ID, nullable=False),
    Column("target_id", ID, nullable=False),
    Column("relation", String(255), nullable=False),
    Index("ix_relations_data", "data_id"),
    Index("ix_relations_source", "source_id"),
    Index("ix_relations_target", "target_id"),
)

# The deletion journal: the plan as ids only (never content), so a crash can be resumed.
journal = Table(
    "journal",
    metadata,
    Column("id", ID, primary_key=True),
    Column("op", String(32), nullable=False),
    Column("user_name", String(255), nullable=False),
    Column("status", String(8), nullable=False),
    Column("erase", Boolean, nullable=False),
    Column("plan", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Index("ix_journal_status", "status"),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("user_name", String(255), nullable=False),
    Column("op", String(32), nullable=False),
    Column("journal_id", ID, nullable=True),
    Column("counts", Text, nullable=False),
    Column("data_ids", Text, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_name", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

# Receipts: what an executed delete certifies, per store (ids of the journal, counts, when the bytes were
# erased, and the result of a verification scan when one was asked for). Ids, counts and times only.
receipts = Table(
    "receipts",
    metadata,
    Column("id", ID, primary_key=True),  # the journal record's id
    Column("at", UTCDateTime(), nullable=False),
    Column("user_name", String(255), nullable=False),
    Column("op", String(32), nullable=False),
    Column("counts", Text, nullable=False),
    Column("erase", Boolean, nullable=False),
    Column("erased_at", UTCDateTime(), nullable=True),
    Column("verified", Boolean, nullable=True),
    Column("files_scanned", Integer, nullable=True),
    Column("bytes_scanned", Integer, nullable=True),
    Column("hits", Integer, nullable=True),
    # The receipts an erase still has to certify: every erase marks them (`receipts.mark_erased`), and
    # without this index that UPDATE read every receipt the store ever wrote (1 ms per erase at 10,000
    # deletes, 8–11 ms at 50,000–100,000: a long-lived store's deletes grew slower with its history).
    Index("ix_receipts_pending", "erased_at", sqlite_where=text("erased_at IS NULL")),
)

# Confirmation tokens (hashed) with their binding: a preview in one server process can be confirmed in
# another, or after a restart; single use is enforced here (INTERFACE.md, "The guard").
confirm_tokens = Table(
    "confirm_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_name", String(255), nullable=False),
    Column("tool", String(32), nullable=False),
    Column("args", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Index("ix_confirm_tokens_expires", "expires_at"),
)

# Columns added after a store was first created: (table, column, DDL type, backfill statement or None).
# `create_all` makes new tables but never alters old ones; `MetadataStore.open` adds what is missing.
ADDED_COLUMNS: tuple[tuple[str, str, str, str | None], ...] = (
    ("data", "expires_at", "DATETIME", None),
    ("datasets", "retention_days", "INTEGER", None),
    ("datasets", "hold", "BOOLEAN", None),
    ("data", "file_key", "VARCHAR(64)", "UPDATE data SET file_key = content_hash WHERE owned"),
    (
        "data_entities",
        "name",
        "VARCHAR(255)",
        "UPDATE data_entities SET name = (SELECT e.name FROM entities e WHERE e.id = data_entities.entity_id)",
    ),
    (
        "data_entities",
        "type",
        "VARCHAR(64)",
        "UPDATE data_entities SET type = (SELECT e.type FROM entities e WHERE e.id = data_entities.entity_id)",
    ),
    (
        "data_entities",
        "description",
        "TEXT",
        "UPDATE data_entities SET description = "
        "(SELECT e.description FROM entities e WHERE e.id = data_entities.entity_id)",
    ),
    (
        "data_entities",
        "created_at",
        "TIMESTAMP",
        "UPDATE data_entities SET created_at = (SELECT d.created_at FROM data d WHERE d.id = data_entities.data_id)",
    ),
)

state = Table(
    "state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
