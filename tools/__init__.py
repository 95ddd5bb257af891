"""The MCP tools: thin adapters (validate → call the engine → return a typed result)."""

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations


def annotations(title: str, *, read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations:
    """All four hints stated explicitly; memsweep never reaches outside its data directory."""
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


def register(server: MCPServer) -> None:
    from memsweep.tools import deleting, listing, memories, prune

    memories.register(server)
    listing.register(server)
    deleting.register(server)
    prune.register(server)
