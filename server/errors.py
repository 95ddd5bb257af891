"""The one place where engine errors become MCP tool errors (`is_error=true`, text for the model)."""

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from memsweep.errors import MemsweepError

P = ParamSpec("P")
R = TypeVar("R")

_PREFIX = {
    "NotFound": "Not found",
    "PermissionDenied": "Permission denied",
    "InvalidInput": "Invalid input",
    "ConfirmationRequired": "Not confirmed",
    "PlanChanged": "Not confirmed",
    "PruneDisabled": "Prune is disabled",
    "StoreUnavailable": "Store unavailable",
}


def tool_error(exc: MemsweepError) -> ToolError:
    kind = _PREFIX.get(type(exc).__name__, "Error")
    return ToolError(f"{kind}: {exc}")


def mapped(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap a tool or resolver so a `MemsweepError` reaches the client as a readable tool error."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except MemsweepError as exc:
            raise tool_error(exc) from exc

    return wrapper
