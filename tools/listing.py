"""list_datasets and list_data."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from memsweep.results import DataPage, DatasetList
from memsweep.server.errors import mapped
from memsweep.tools.common import annotations, memory
from pydantic import Field


@mapped
async def list_datasets(ctx: Context) -> DatasetList:
    """List the datasets you hold a permission on: id, name, owner, live item count, can_read and
    can_delete. Use the id or name with list_data, delete_data, empty_dataset or forget."""
    return DatasetList(datasets=await (await memory(ctx)).datasets.list_datasets())


@mapped
async def list_data(
    ctx: Context,
    dataset_id: Annotated[str, Field(description="Dataset id (or its name).", max_length=255)],
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page.", max_length=512)] = None,
    limit: Annotated[int, Field(description="Items per page (1–200).", ge=1, le=200)] = 50,
) -> DataPage:
    """One page of a dataset's items, oldest first: id, name, type, size, content hash, chunk and entity
    counts, and whether the store owns the file. Pass next_cursor to get the next page; it is null on the
    last page."""
    return await (await memory(ctx)).datasets.list_data_page(dataset_id, cursor, limit)


def register(server: MCPServer) -> None:
    ro = annotations("List datasets", read_only=True, destructive=False, idempotent=True)
    server.add_tool(list_datasets, annotations=ro)
    server.add_tool(
        list_data, annotations=annotations("List a dataset's items", read_only=True, destructive=False, idempotent=True)
    )
