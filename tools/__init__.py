"""The MCP tools: thin adapters (validate → call the engine → return a typed result)."""

from mcp.server.mcpserver import MCPServer


def register(server: MCPServer) -> None:
    from memsweep.tools import deleting, forget, listing, memories, prune

    memories.register(server)
    listing.register(server)
    deleting.register(server)
    forget.register(server)
    prune.register(server)
