"""delete_data, empty_dataset, delete_all: one engine path, previews and the guard."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer, Resolve
from mcp.server.mcpserver.resolve import ElicitationResult
from mcp_types import ToolAnnotations
from memsweep.results import DeletionReport
from memsweep.server.confirm import ConfirmDeletion, guarded_resolvers, run_guarded
from memsweep.server.errors import mapped
from memsweep.storage.deletion.targets import Plan, Target
from memsweep.tools.common import annotations, memory, progress_of
from pydantic import Field

# Shared by five tools, so every character here is paid five times in `tools/list` (issue 11.5); the
# README says the rest (what erase covers, what a receipt records).
DryRun = Annotated[bool, Field(description="true: only preview the plan.")]
Erase = Annotated[bool, Field(description="false: a background sweep erases the deleted bytes later.")]
Verify = Annotated[bool, Field(description="true: scan the data directory for deleted bytes before returning.")]
Token = Annotated[str | None, Field(description="From this call's preview.", max_length=200)]
DatasetRef = Annotated[str, Field(description="Dataset id (or its name).", max_length=255)]


@mapped
async def delete_data(
    ctx: Context,
    dataset_id: DatasetRef,
    data_id: Annotated[str, Field(description="From list_data or search.", max_length=64)],
    dry_run: DryRun = False,
    erase: Erase = True,
    verify: Verify = False,
) -> DeletionReport:
    """Delete one item with its chunks, vectors, graph nodes and file; what other items still use stays
    (kept_shared). Runs at once, not guarded."""
    target = Target("delete_data", "item", data_id=data_id, dataset=dataset_id)
    return await (await memory(ctx)).run(target, dry_run=dry_run, erase=erase, progress=progress_of(ctx), verify=verify)


# -- empty_dataset -------------------------------------------------------------------------------------
_empty_plan, _empty_ask = guarded_resolvers(
    ("dataset_id",), lambda dataset_id: Target("empty_dataset", "dataset", dataset=dataset_id)
)


@mapped
async def empty_dataset(
    ctx: Context,
    dataset_id: DatasetRef,
    plan: Annotated[Plan, Resolve(_empty_plan)],
    answer: Annotated[ElicitationResult[ConfirmDeletion], Resolve(_empty_ask)],
    dry_run: DryRun = False,
    confirm_token: Token = None,
    erase: Erase = True,
    verify: Verify = False,
) -> DeletionReport:
    """Delete a dataset and its items. Guarded: the person confirms if the client can ask; else pass the
    result's confirm_token (5 minutes, single use) back in the same call."""
    target = Target("empty_dataset", "dataset", dataset=dataset_id)
    ds = await (await memory(ctx)).dataset_id(dataset_id)
    return await run_guarded(
        ctx, "empty_dataset", target, plan, answer, dry_run=dry_run, confirm_token=confirm_token, erase=erase,
        binding={"dataset": ds}, verify=verify,
    )  # fmt: skip


# -- delete_all ----------------------------------------------------------------------------------------
_all_plan, _all_ask = guarded_resolvers((), lambda: Target("delete_all", "all"))


@mapped
async def delete_all(
    ctx: Context,
    plan: Annotated[Plan, Resolve(_all_plan)],
    answer: Annotated[ElicitationResult[ConfirmDeletion], Resolve(_all_ask)],
    dry_run: DryRun = False,
    confirm_token: Token = None,
    erase: Erase = True,
    verify: Verify = False,
) -> DeletionReport:
    """Delete every dataset you may delete, with its items; others stay. Guarded like empty_dataset."""
    return await run_guarded(
        ctx, "delete_all", Target("delete_all", "all"), plan, answer,
        dry_run=dry_run, confirm_token=confirm_token, erase=erase, binding={}, verify=verify,
    )  # fmt: skip


def register(server: MCPServer) -> None:
    def destructive(title: str, idempotent: bool) -> ToolAnnotations:
        return annotations(title, read_only=False, destructive=True, idempotent=idempotent)

    server.add_tool(delete_data, annotations=destructive("Delete one item", False))
    server.add_tool(empty_dataset, annotations=destructive("Empty and delete a dataset", False))
    server.add_tool(delete_all, annotations=destructive("Delete all you may delete", False))
