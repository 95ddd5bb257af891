"""add and search."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from memsweep.results import AddResult, SearchResult
from memsweep.server.errors import mapped
from memsweep.tools.common import annotations, memory
from pydantic import BaseModel, Field


class EntityIn(BaseModel):
    name: str = Field(max_length=255)
    type: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=2000)


class RelationIn(BaseModel):
    source: str = Field(max_length=255)
    relation: str = Field(max_length=255)
    target: str = Field(max_length=255)


@mapped
async def add(
    ctx: Context,
    dataset: Annotated[str, Field(description="Dataset id or name (created if new).", max_length=255)],
    text: Annotated[str | None, Field(description="The memory (or give path).")] = None,
    path: Annotated[str | None, Field(description="Or a UTF-8 text file's absolute path.")] = None,
    name: Annotated[str | None, Field(description="A short label.", max_length=255)] = None,
    entities: Annotated[
        list[EntityIn] | None,
        Field(description="Entities in it (recommended; else a simple extractor runs)."),
    ] = None,
    relations: Annotated[list[RelationIn] | None, Field(description="Relations between those entities.")] = None,
    copy: Annotated[bool, Field(description="false: keep the file by reference (never copied or deleted).")] = True,
    expires_at: Annotated[str | None, Field(description="Forget it at this ISO 8601 time.", max_length=64)] = None,
    ttl_days: Annotated[float | None, Field(description="Forget it after this many days.", gt=0, le=36500)] = None,
) -> AddResult:
    """Store a memory (a text or a text file) in a dataset, created if needed. Graph nodes are shared by
    name: New York in two memories is one node, deleted with the last memory naming it. Identical content
    is stored once (deduplicated=true)."""
    return await (await memory(ctx)).add(
        dataset,
        text,
        path=path,
        name=name,
        entities=[e.model_dump() for e in entities] if entities is not None else None,
        relations=[r.model_dump() for r in relations] if relations is not None else None,
        copy=copy,
        expires_at=expires_at,
        ttl_days=ttl_days,
    )


@mapped
async def search(
    ctx: Context,
    query: Annotated[str, Field(description="What to look for.", max_length=10_000)],
    dataset: Annotated[str | None, Field(description="One dataset (id or name).")] = None,
    limit: Annotated[int, Field(description="Maximum hits.", ge=1, le=100)] = 10,
) -> SearchResult:
    """Find live memories by vector similarity and shared graph entities; deleted items never appear."""
    return SearchResult(hits=await (await memory(ctx)).search(query, dataset, limit))


def register(server: MCPServer) -> None:
    server.add_tool(add, annotations=annotations("Add a memory", read_only=False, destructive=False, idempotent=False))
    server.add_tool(
        search, annotations=annotations("Search memories", read_only=True, destructive=False, idempotent=True)
    )
