"""The server's shared state: the lifespan state (one engine process per server) and who is calling. The tools and
the confirmation flow read it from here; this module imports neither the app nor the tools, so there is
no import circle (ARCHITECTURE.md)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from mcp.server.mcpserver import Context
from memsweep.config import Settings
from memsweep.server.engine_process import EngineProcess, RemoteMemory
from memsweep.server.guard import Guard

if TYPE_CHECKING:
    from memsweep.api import Memory


@dataclass
class AppState:
    """Lifespan state. The engines run in a process of their own (server/engine_process.py), started with
    the server: `tools/list` is answered without waiting for them, and the first tool call waits for the
    store to open. After `engine_idle_seconds` without a call that process ends and the next call starts
    another."""

    settings: Settings
    guard: Guard
    require_token: bool = False
    engine: EngineProcess | None = None

    def start_opening(self) -> None:
        if self.engine is None:
            self.engine = EngineProcess(self.settings, self.settings.engine_idle_seconds)
        self.engine.start()

    def memory(self, user: str) -> "Memory":
        """The engine's Python API acting for `user`; each call on it runs in the engine process."""
        assert self.engine is not None, "the lifespan starts the engine process before any tool runs"
        return cast("Memory", RemoteMemory(self.engine, user, self.require_token))

    async def close(self) -> None:
        """Idempotent, and safe to call twice at once (a signal can arrive while the lifespan closes)."""
        if self.engine is not None:
            await self.engine.close()


def state(ctx: Context) -> AppState:
    app_state = ctx.request_context.lifespan_context
    assert isinstance(app_state, AppState)
    return app_state


def caller(ctx: Context) -> str:
    """Who is calling: the bearer token's user over HTTP, else MEMSWEEP_USER."""
    from mcp.server.auth.middleware.auth_context import get_access_token
    from memsweep.errors import PermissionDenied

    token = get_access_token()  # not server/auth.py, which loads the metadata store for its verifier
    if token is not None:
        return token.client_id
    if state(ctx).require_token:  # never fall back to the default user over HTTP
        raise PermissionDenied("This server needs a bearer token; none was presented. Nothing was done.")
    return state(ctx).settings.user


def progress_of(ctx: Context) -> Callable[[int, int, str], Awaitable[None]]:
    """Report the delete path's steps as MCP progress notifications (increasing)."""

    async def report(done: int, total: int, what: str) -> None:
        await ctx.report_progress(done, total, what)

    return report


async def tool_memory(ctx: Context) -> "Memory":
    """The engine's Python API acting for this caller (its calls wait for the engine to finish opening)."""
    return state(ctx).memory(caller(ctx))
