"""Helpers shared by tool modules (they import this, never the package `__init__`, which registers them)."""

from mcp_types import ToolAnnotations
from memsweep.server.state import progress_of, tool_memory

__all__ = ["annotations", "memory", "progress_of"]


memory = tool_memory  # the engine's Python API acting for the caller


def annotations(title: str, *, read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations:
    """All four hints stated explicitly; memsweep never reaches outside its data directory."""
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )
