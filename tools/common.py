"""Helpers shared by tool modules."""

from mcp.server.mcpserver import Context
from memsweep.server.app import caller, progress_of, state

__all__ = ["memory", "progress_of"]


def memory(ctx: Context):  # type: ignore[no-untyped-def]
    """The engine's Python API, acting for this caller."""
    return state(ctx).memory.as_user(caller(ctx))  # type: ignore[attr-defined]
