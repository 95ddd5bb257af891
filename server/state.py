"""The server's shared state: the lifespan state (one engine per server) and who is calling. The tools and
the confirmation flow read it from here; this module imports neither the app nor the tools, so there is
no import circle (ARCHITECTURE.md)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio.to_thread
from mcp.server.mcpserver import Context
from memsweep.config import Settings
from memsweep.server.guard import Guard

log = logging.getLogger("memsweep.server")
WARM_DELAY_SECONDS = 1.0

if TYPE_CHECKING:  # the storage engines load in the background, after tools/list is answered
    from memsweep.api import Memory


@dataclass
class AppState:
    """Lifespan state. The engine opens in the background as the server starts: `tools/list` is answered
    without waiting for the engines' import (~1 s), and the first tool call waits for the open to finish."""

    settings: Settings
    guard: Guard
    require_token: bool = False
    _memory: "Memory | None" = None
    _opening: "asyncio.Task[Memory] | None" = None
    _closing: "asyncio.Task[None] | None" = None
    _sweeper: "asyncio.Task[None] | None" = None
    _warming: "asyncio.Task[None] | None" = None

    def start_opening(self) -> None:
        self._opening = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> "Memory":
        # The heavy imports run in a worker thread so the event loop keeps answering meanwhile.
        await anyio.to_thread.run_sync(_preload)
        from memsweep.api import Memory

        memory = Memory(self.settings)
        await memory.__aenter__()
        self._memory = memory
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_expired(memory))
        self._warming = asyncio.get_running_loop().create_task(self._warm(memory))
        return memory

    async def _warm(self, memory: "Memory") -> None:
        """Import the vector and graph engines in the background, so the first search or add does not wait
        for them (~0.35 s). After a pause: run beside a fresh server's first call, the imports (which hold
        the GIL) slowed it down; a clean store's first read needs neither (issue 12.5)."""
        await asyncio.sleep(WARM_DELAY_SECONDS)
        await anyio.to_thread.run_sync(_import_lance)
        await anyio.to_thread.run_sync(memory.engine.graph.load_module)

    async def _sweep_expired(self, memory: "Memory") -> None:
        """Expiry in a running server (issue 15.1): every SWEEP_SECONDS, delete what expired, with erase."""
        from memsweep.errors import MemsweepError
        from memsweep.storage.deletion.expiry import SWEEP_SECONDS

        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await memory.expire()
            except MemsweepError as exc:  # busy store, a hold: the next round tries again
                log.warning("expiry sweep postponed: %s", exc)

    async def memory(self) -> "Memory":
        if self._memory is not None:
            return self._memory
        if self._opening is None or (self._opening.done() and self._opening.exception() is not None):
            self._opening = asyncio.get_running_loop().create_task(self._open())  # retry after a failed open
        return await asyncio.shield(self._opening)

    async def close(self) -> None:
        """Idempotent, and safe to call twice at once (a signal can arrive while the lifespan closes)."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        for task in (self._sweeper, self._warming):
            if task is not None:
                task.cancel()
        if self._opening is not None and not self._opening.done():
            try:
                await self._opening
            except Exception:
                pass
        if self._memory is not None:
            await self._memory.close()


def _preload() -> None:
    import memsweep.api
    import memsweep.storage.stores.vectors  # noqa: F401


def _import_lance() -> None:
    import lance  # noqa: F401


def state(ctx: Context) -> AppState:
    app_state = ctx.request_context.lifespan_context
    assert isinstance(app_state, AppState)
    return app_state


def caller(ctx: Context) -> str:
    """Who is calling: the bearer token's user over HTTP, else MEMSWEEP_USER."""
    from memsweep.errors import PermissionDenied
    from memsweep.server.auth import current_user

    user = current_user()
    if user is not None:
        return user
    if state(ctx).require_token:  # never fall back to the default user over HTTP
        raise PermissionDenied("This server needs a bearer token; none was presented. Nothing was done.")
    return state(ctx).settings.user


def progress_of(ctx: Context) -> Callable[[int, int, str], Awaitable[None]]:
    """Report the delete path's steps as MCP progress notifications (increasing)."""

    async def report(done: int, total: int, what: str) -> None:
        await ctx.report_progress(done, total, what)

    return report


async def tool_memory(ctx: Context) -> "Memory":
    """The engine's Python API acting for this caller (waits for the engine to finish opening)."""
    st = state(ctx)
    return (await st.memory()).as_user(caller(ctx), remote=st.require_token)
