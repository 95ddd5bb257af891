"""prune: development reset of whole layers, guarded and off unless the operator enables it."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer, Resolve
from mcp.server.mcpserver.resolve import ElicitationResult
from memsweep.results import PruneReport
from memsweep.server.confirm import ConfirmDeletion, guarded_resolvers, run_guarded
from memsweep.server.errors import mapped
from memsweep.storage.deletion.targets import Plan, prune_target
from memsweep.tools.common import annotations
from memsweep.tools.deleting import DryRun, Token

_prune_plan, _prune_ask = guarded_resolvers(("files", "graph", "vector", "metadata", "cache"), prune_target)


@mapped
async def prune(
    ctx: Context,
    plan: Annotated[Plan, Resolve(_prune_plan)],
    answer: Annotated[ElicitationResult[ConfirmDeletion], Resolve(_prune_ask)],
    files: bool = False,
    graph: bool = False,
    vector: bool = False,
    metadata: bool = False,
    cache: bool = False,
    dry_run: DryRun = False,
    confirm_token: Token = None,
) -> PruneReport:  # the five layers are described once, in the docstring below
    """Development reset of whole layers for every user, bypassing permissions: files (owned raw files),
    graph and vector (derived; items stay), metadata (every dataset and item, with graph, vector and
    cache), cache (embeddings). Off unless the operator enables it; dry runs always work. Guarded."""
    target = prune_target(files, graph, vector, metadata, cache)
    report = await run_guarded(
        ctx, "prune", target, plan, answer, dry_run=dry_run, confirm_token=confirm_token, erase=True,
        binding={"layers": [files, graph, vector, metadata, cache]},
    )  # fmt: skip
    assert isinstance(report, PruneReport)
    return report


def register(server: MCPServer) -> None:
    server.add_tool(
        prune,
        annotations=annotations("Prune layers (dev reset)", read_only=False, destructive=True, idempotent=False),
    )
