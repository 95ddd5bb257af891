"""The one place where engine errors become MCP tool errors (`is_error=true`, text for the model)."""

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from memsweep.errors import MemsweepError
from pydantic import ValidationError

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


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def arguments_message(tool: str, exc: ValidationError) -> str:
    """A pydantic rejection in the tool's own words: which argument, what was wrong, a short prefix of the
    value (the caller's data is never echoed whole: one rejected call quoted 83 KB back)."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        got = f" (got {_shown(err['input'])})" if err["type"] != "missing" else ""
        parts.append(f"`{where}`: {err['msg']}{got}")
    more = f" and {exc.error_count() - 5} more" if exc.error_count() > 5 else ""
    return f"Invalid input: {'; '.join(parts)}{more}. Nothing was changed; fix the argument and call {tool} again."


def surrogate_argument(arguments: dict[str, Any]) -> str | None:
    """The name of the first argument holding a lone surrogate (not encodable as UTF-8), or None."""

    def bad(value: object) -> bool:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
            return False
        if isinstance(value, dict):
            return any(bad(k) or bad(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return any(bad(v) for v in value)
        return False

    return next((name for name, value in arguments.items() if bad(name) or bad(value)), None)
