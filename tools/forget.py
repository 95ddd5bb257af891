"""forget: the one-call form of deletion, by item, items, subject, dataset or everything, and finding
what to forget by description (a preview that never deletes)."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer, Resolve
from mcp.server.mcpserver.resolve import ElicitationResult
from memsweep.results import ForgetReport
from memsweep.server.confirm import ConfirmDeletion, guarded_resolvers, run_guarded
from memsweep.server.errors import mapped
from memsweep.storage.deletion.targets import Plan, Target, forget_target
from memsweep.storage.ids import normalise_name
from memsweep.tools.common import annotations, memory, progress_of
from memsweep.tools.deleting import DryRun, Erase, Token, Verify
from pydantic import Field


def _forget_target(
    data_id: str | None,
    data_ids: list[str] | None,
    dataset: str | None,
    entity: str | None,
    everything: bool,
    memory_only: bool,
    query: str | None,
) -> Target | None:
    return None if query is not None else forget_target(data_id, dataset, everything, memory_only, entity, data_ids)


_FORGET_ARGS = ("data_id", "data_ids", "dataset", "entity", "everything", "memory_only", "query")
_forget_plan, _forget_ask = guarded_resolvers(
    _FORGET_ARGS,
    _forget_target,
    # one item, a one-id list, and a query (which never deletes) are not guarded
    asks=lambda **args: (target := _forget_target(**args)) is not None and target.guarded,
)


@mapped
async def forget(
    ctx: Context,
    plan: Annotated[Plan, Resolve(_forget_plan)],
    answer: Annotated[ElicitationResult[ConfirmDeletion], Resolve(_forget_ask)],
    data_id: Annotated[str | None, Field(description="One item (runs at once).", max_length=64)] = None,
    data_ids: Annotated[
        list[Annotated[str, Field(max_length=64)]] | None,
        Field(
            description="Exactly these items (up to 1,000): all must be yours to delete, or none goes.",
            max_length=1000,
        ),
    ] = None,
    entity: Annotated[
        str | None,
        Field(
            description="A subject: every item you may delete that mentions this entity, and the entity.",
            max_length=255,
        ),
    ] = None,
    query: Annotated[
        str | None,
        Field(
            description="List candidates matching this description; deletes nothing.",
            max_length=10_000,
        ),
    ] = None,
    limit: Annotated[int, Field(description="Most candidates for query.", ge=1, le=100)] = 20,
    dataset: Annotated[
        str | None, Field(description="A whole dataset (id or name), or where entity/query look.", max_length=255)
    ] = None,
    everything: Annotated[bool, Field(description="Every dataset you may delete.")] = False,
    memory_only: Annotated[bool, Field(description="Drop only graph and vectors; items stay (rebuildable).")] = False,
    dry_run: DryRun = False,
    confirm_token: Token = None,
    erase: Erase = True,
    verify: Verify = False,
) -> ForgetReport:
    """Forget one item (data_id, at once), several (data_ids), a subject (entity), a dataset, or
    everything=true; all but one item are guarded like empty_dataset. By description: forget(query=...)
    lists candidates; forget(data_ids=[...]) then deletes the ids you chose."""
    mem = await memory(ctx)
    if query is not None:
        return await mem.forget(query=query, dataset=dataset, limit=limit, data_id=data_id, data_ids=data_ids,
                                entity=entity, everything=everything)  # fmt: skip
    target = forget_target(data_id, dataset, everything, memory_only, entity, data_ids)
    if not target.guarded:
        return ForgetReport.of(
            await mem.run(target, dry_run=dry_run, erase=erase, progress=progress_of(ctx), verify=verify)
        )
    binding = {
        "dataset": await mem.dataset_id(dataset) if dataset else None,
        "everything": everything,
        "memory_only": memory_only,
        "entity": normalise_name(entity) if entity else None,
        "data_ids": sorted(data_ids) if data_ids else None,
    }
    return ForgetReport.of(await run_guarded(
        ctx, "forget", target, plan, answer, dry_run=dry_run, confirm_token=confirm_token, erase=erase,
        binding=binding, verify=verify,
    ))  # fmt: skip


def register(server: MCPServer) -> None:
    server.add_tool(
        forget,
        annotations=annotations(
            "Forget (item, subject, dataset, all)", read_only=False, destructive=True, idempotent=False
        ),
    )
