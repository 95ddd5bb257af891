"""Helpers shared by tool modules."""

from mcp.server.mcpserver import Context
from memsweep.server.app import caller, progress_of, state

__all__ = ["memory", "progress_of"]


async def memory(ctx: Context):  # type: ignore[no-untyped-def]
    """The engine's Python API, acting for this caller (waits for the engine to finish opening)."""
    user = caller(ctx)
    st = state(ctx)
    return (await st.memory()).as_user(user, remote=st.require_token)
