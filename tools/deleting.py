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

DryRun = Annotated[bool, Field(description="true: return the plan (what goes, what stays shared) and delete nothing.")]
Erase = Annotated[
    bool,
    Field(
        description="true (default): deleted bytes are gone from disk when the call returns; false: a background sweep erases them later."
    ),
]
Verify = Annotated[
    bool,
    Field(
        description="true: before returning, scan every file of the data directory for the deleted texts and "
        "vectors; the report (and its receipt) gives files_scanned and hits."
    ),
]
Token = Annotated[str | None, Field(description="The confirm_token from a preview of this same call.", max_length=200)]
DatasetRef = Annotated[str, Field(description="Dataset id (or its name).", max_length=255)]


@mapped
async def delete_data(
    ctx: Context,
    dataset_id: DatasetRef,
    data_id: Annotated[str, Field(description="Id of the item to delete (from list_data or search).", max_length=64)],
    dry_run: DryRun = False,
    erase: Erase = True,
    verify: Verify = False,
) -> DeletionReport:
    """Delete one item: its chunks, vectors, graph nodes and edges, and its stored file. Graph nodes and
    files that other items still use are kept (listed in kept_shared). Needs the delete permission. Not
    guarded: it runs at once unless dry_run=true. Deleting an item that does not exist is an error."""
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
    """Delete every item of a dataset and the dataset itself. Guarded: the person is asked to confirm
    where the client supports it; otherwise the result has confirmation_required=true and a confirm_token
    (valid 5 minutes, once) to pass back in the same call. Shared graph nodes and files stay."""
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
    """Delete every dataset you may delete (and all their items), and nothing else: datasets you can only
    read stay. Guarded like empty_dataset: confirm when asked, or pass back the confirm_token."""
    return await run_guarded(
        ctx, "delete_all", Target("delete_all", "all"), plan, answer,
        dry_run=dry_run, confirm_token=confirm_token, erase=erase, binding={}, verify=verify,
    )  # fmt: skip


def register(server: MCPServer) -> None:
    def destructive(title: str, idempotent: bool) -> ToolAnnotations:
        return annotations(title, read_only=False, destructive=True, idempotent=idempotent)

    server.add_tool(delete_data, annotations=destructive("Delete one item", False))
    server.add_tool(empty_dataset, annotations=destructive("Empty and delete a dataset", False))
    server.add_tool(delete_all, annotations=destructive("Delete everything you may delete", False))
