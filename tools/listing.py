"""list_datasets and list_data."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from memsweep.results import DataPage, DatasetList
from memsweep.server.errors import mapped
from memsweep.tools.common import annotations, memory
from pydantic import Field


@mapped
async def list_datasets(ctx: Context) -> DatasetList:
    """The datasets you hold a permission on, with live item counts."""
    return DatasetList(datasets=await (await memory(ctx)).datasets.list_datasets())


@mapped
async def list_data(
    ctx: Context,
    dataset_id: Annotated[str, Field(description="Dataset id (or its name).", max_length=255)],
    cursor: Annotated[str | None, Field(description="The previous page's next_cursor.", max_length=512)] = None,
    limit: Annotated[int, Field(description="Items per page.", ge=1, le=200)] = 50,
) -> DataPage:
    """One page of a dataset's items, oldest first. Pass next_cursor as cursor for the next page (null on
    the last)."""
    return await (await memory(ctx)).datasets.list_data_page(dataset_id, cursor, limit)


def register(server: MCPServer) -> None:
    ro = annotations("List datasets", read_only=True, destructive=False, idempotent=True)
    server.add_tool(list_datasets, annotations=ro)
    server.add_tool(
        list_data, annotations=annotations("List items", read_only=True, destructive=False, idempotent=True)
    )
