"""memsweep: a local memory store for AI agents, served over MCP, that forgets correctly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Memory", "Settings", "__version__"]

if TYPE_CHECKING:
    from memsweep.api import Memory
    from memsweep.config import Settings


def __getattr__(name: str) -> Any:
    # Lazy: `memsweep serve` should not pay for the storage engines before its first request.
    if name == "Memory":
        from memsweep.api import Memory

        return Memory
    if name == "Settings":
        from memsweep.config import Settings

        return Settings
    raise AttributeError(name)
