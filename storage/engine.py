"""The engine: one facade over metadata, files, graph, vectors and cache (DESIGN.md, "Layers").

Writes are serialised twice: an asyncio lock inside the process and a lease on the data directory across
processes (storage/lock.py). Blocking engine calls (Kuzu, LanceDB, file I/O) run in worker threads so the
event loop keeps serving. Readers never take the locks: they read metadata, which hides an item from the
moment its deletion is journaled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
from memsweep.config import Settings
from memsweep.errors import StoreUnavailable
from memsweep.storage import heap
from memsweep.storage.ingest.embedding import Embedder, make_embedder
from memsweep.storage.stores.cache import SqliteEmbeddingCache
from memsweep.storage.stores.files import LocalFileStore
from memsweep.storage.stores.graph import EmbeddedGraphStore
from memsweep.storage.stores.lock import IDLE_RELEASE_SECONDS, WANT_POLL_SECONDS, DirLock
from memsweep.storage.stores.metadata import MetadataStore, get_state, sqlite_url

log = logging.getLogger("memsweep.engine")
T = TypeVar("T")

# Background sweep for `erase=false`: this long after the last deferred delete, or at close.
ERASE_DELAY_SECONDS = 5.0
ERASE_MAX_DELAY_SECONDS = 120.0
# Fold vector fragments this long after the last write; merge them at once (the index fold left for the
# pause) after this many unfolded adds.
IDLE_COMPACT_SECONDS = 0.2
COMPACT_MAX_COMMITS = 16
# A trim walks every arena (3–130 ms measured, in a worker thread): once per pause, at most this often.
TRIM_EVERY_SECONDS = 10.0
# A process that stops with this many adds unfolded folds them in its close (see Engine.close).
CLOSE_FOLD_COMMITS = 16


async def _nothing_pending(_engine: Engine) -> bool:
    return True


async def _nothing_to_repair(_engine: Engine) -> bool:
    return False


@dataclass(frozen=True)
class Hooks:
    """What the engine calls back into, supplied by the layer that composes it (storage/lifecycle.py). The
    engine knows *when* (a stop, the background sweep, a lease taken after an unclean stop); the delete
    path and maintenance know *how*. This keeps the facade free of imports from the rooms above it."""

    # Finish a recorded erase; True when nothing is left pending.
    erase_pending: Callable[[Engine], Awaitable[bool]] = _nothing_pending
    # The previous holder died with the graph open: check it and repair; True when it was rebuilt.
    after_unclean_stop: Callable[[Engine], Awaitable[bool]] = _nothing_to_repair


class Engine:
    def __init__(
        self,
        settings: Settings,
        meta: MetadataStore,
        files: LocalFileStore,
        graph: EmbeddedGraphStore,
        cache: SqliteEmbeddingCache,
        embedder: Embedder,
        lock: DirLock,
    ) -> None:
        from memsweep.storage.stores.vectors import LanceVectorStore

        self.settings = settings
        self.data_dir = settings.data_dir
        self.meta = meta
        self.files = files
        self.graph = graph
        self.cache = cache
        self.embedder = embedder
        self.vectors = LanceVectorStore(settings.data_dir / "vectors", embedder.dim)
        self.lock = lock
        self._graph_mark = settings.data_dir / ".graph-open"
        self._write_lock = asyncio.Lock()
        self._idle_task: asyncio.Task[None] | None = None
        self._erase_task: asyncio.Task[None] | None = None
        self._trimmed = 0.0  # time.monotonic() of the last heap.trim()
        self._table_read = False  # this lease has read what the vector table itself shows is due
        self.closed = False
        self.hooks = Hooks()
        # What "now" is for expiry (tests advance it instead of sleeping).
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def now(self) -> datetime:
        return self.clock()

    # -- lifecycle -------------------------------------------------------------------------------------
    @classmethod
    async def open(cls, settings: Settings, hooks: Hooks | None = None) -> Engine:
        """The stores, opened and wired. Recovery is not run here: the layer that composes the engine does it
        (storage/lifecycle.py), so nothing below the facade is imported by it."""
        data_dir = settings.data_dir.expanduser()
        settings = settings.with_(data_dir=data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"Cannot create the data directory {data_dir}: {exc}") from exc
        meta = await MetadataStore.open(settings.metadata_url or sqlite_url(data_dir / "metadata.db"))
        try:
            await meta.pair(data_dir)
        except BaseException:
            await meta.close()
            raise
        embedder = make_embedder(settings.embedder)
        engine = cls(
            settings,
            meta,
            LocalFileStore(data_dir / "files"),
            EmbeddedGraphStore(data_dir / "graph", settings.graph_backend, settings.graph_buffer_mb),
            SqliteEmbeddingCache(data_dir / "cache.db"),
            embedder,
            DirLock(data_dir / ".memsweep.lock"),
        )
        engine.hooks = hooks or Hooks()
        return engine

    async def close(self) -> None:
        if self.closed:
            return
        for task in (self._erase_task, self._idle_task):
            if task is not None:
                task.cancel()
        self._erase_task = self._idle_task = None
        try:
            # A process that never took the lease (it only read) and has no erase to finish closes without
            # taking it: taking it opens the graph, which cost a CLI read per call the graph engine's
            # import and open at exit.
            if self.lock.held or (await self.meta.call(get_state, "erase_pending")) is not None:
                async with self.exclusive(release=True):
                    # A process that stops before its idle fold (a client that starts a server per call
                    # stops it right after the call) leaves its adds' fragments to the next process's pause,
                    # which some clients never make. So the close folds once 16 wait (60–140 ms for 16–64
                    # fragments, within the 2 s the SDK's client gives a server between closing stdin and
                    # SIGTERM); not for fewer, since a fold rewrites the last partial fragment even for one
                    # add (38–55 ms at 1k–10k rows), which a per-call client would pay at every exit.
                    await self._fold(at_least=CLOSE_FOLD_COMMITS, remap_alone=False)
                    if self.vectors.cleanup_due:  # a merge ran, and no pause cleaned after it (3–7 ms)
                        await self.run(self.vectors.clean_after_merge)
                    if not await self.hooks.erase_pending(self):
                        log.warning("an erase is still pending at close; the next start finishes it")
        except StoreUnavailable as exc:
            log.warning("deferred erase not run at close: %s", exc)
        finally:
            self.closed = True
            self.cache.close()
            await self.meta.close()

    # -- the lease -------------------------------------------------------------------------------------
    @asynccontextmanager
    async def exclusive(self, release: bool = False) -> AsyncIterator[None]:
        """Hold the in-process writer lock and the directory lease (with the graph open)."""
        async with self._write_lock:
            if self._idle_task is not None:
                self._idle_task.cancel()  # waiting for idleness (it never holds the lock while we do)
                self._idle_task = None
            if self.lock.held and self.lock.wanted():
                # Another process asked while we were busy: its turn comes between our calls, not after our
                # last one (a client that never pauses would otherwise keep it waiting into its timeout).
                await self.run(self._hand_over)
            if not self.lock.held:
                await self.run(self.lock.acquire, self.settings.lock_timeout_seconds)
                try:
                    unclean = await self.run(self._mark_graph_open)
                    await self.run(self.graph.open)
                    if unclean:
                        if await self.hooks.after_unclean_stop(self):
                            self.graph.created = False  # rebuilt already: recovery need not do it again
                except BaseException:
                    await self.run(self.graph.close)
                    self.lock.release()
                    raise
            try:
                yield
            finally:
                if release:
                    await self.run(self._release_now)
                else:
                    self._idle_task = asyncio.get_running_loop().create_task(self._when_idle())

    async def _when_idle(self) -> None:
        """Housekeeping once writes pause, off the callers' path and off the event loop: fold the vector
        fragments single adds left (one per add; 1,000 adds made 1,000 fragments and 44 MB, and LanceDB's
        per-version state grew the process ~0.4 MB per add), give freed memory back, then give the directory
        lease back when another process asks for it or after a long pause. A write that arrives meanwhile
        cancels this and starts it again afterwards."""
        if await self._fold_due() >= COMPACT_MAX_COMMITS:
            # Writes have not paused for 16 adds: merge their fragments now, before the pause. A search over
            # 64 one-row fragments took 18.5 ms instead of 4.8 at 1k rows (26.4 vs 9.6 at 10k), and the next
            # add waits for this merge: 15–18 ms for 16 fragments, where a full fold of 64 took 75–100.
            async with self._write_lock:
                await self._fold(at_least=COMPACT_MAX_COMMITS, indexes=False)
        await asyncio.sleep(IDLE_COMPACT_SECONDS)
        if self.vectors.commits_since_compact or self.vectors.index_fold_due:
            async with self._write_lock:
                await self._fold()
        await self._trim()
        # Keep the graph open across a session's pauses, but hand the lease over as soon as another process
        # asks for it (lock.py). Polling a file every 50 ms while idle costs microseconds.
        for _ in range(round(IDLE_RELEASE_SECONDS / WANT_POLL_SECONDS)):
            if self.lock.wanted():
                break
            await asyncio.sleep(WANT_POLL_SECONDS)
        async with self._write_lock:
            if self.lock.held:
                # In a worker thread: closing Kuzu blocked the event loop 90–150 ms when done here directly.
                await self.run(self._release_now)
        await self._trim()  # the closed graph's buffers

    async def _fold_due(self) -> int:
        """Unfolded single adds; the first time under a lease, with what the table shows earlier processes
        left (vectors.read_housekeeping). Marked read only once it was: a check cancelled midway (a stop)
        is made again by the close."""
        if not self._table_read and self.lock.held:
            await self.run(self.vectors.read_housekeeping)
            self._table_read = True
        return self.vectors.commits_since_compact

    async def _fold(self, at_least: int = 1, indexes: bool = True, remap_alone: bool = True) -> None:
        """Under the writer lock: once `at_least` single adds wait, merge their fragments (with `indexes`,
        also fold the indexes and drop the old versions); otherwise, with `indexes` and `remap_alone`, fold
        a remap that an erase or a merge deferred."""
        if not self.lock.held:
            return
        try:
            if await self._fold_due() >= at_least:
                await self.run(self.vectors.compact, indexes)
            elif indexes and remap_alone and self.vectors.index_fold_due:
                await self.run(self.vectors.fold_indexes)
        except Exception:  # housekeeping: the next pause (or the next process) tries again
            log.exception("folding vector fragments failed; will retry when writes pause again")

    async def _trim(self) -> None:
        """What the engines freed goes back to the system, not to an arena (storage/heap.py)."""
        if time.monotonic() - self._trimmed >= TRIM_EVERY_SECONDS:
            self._trimmed = time.monotonic()
            await self.run(heap.trim)

    @property
    def graph_marked_open(self) -> bool:
        """A process holds the graph open now, or died holding it (the mark outlives a SIGKILL)."""
        return self._graph_mark.exists()

    def _mark_graph_open(self) -> bool:
        """Record, in a file next to the lock, that this process holds the graph open; True when the mark
        was already there, i.e. the previous holder died with the graph open (SIGKILL, power loss)."""
        existed = self._graph_mark.exists()
        self._graph_mark.touch()
        return existed

    def _hand_over(self) -> None:
        self._release_now()
        self.lock.let_waiter_in()

    def _release_now(self) -> None:
        # Only called with no graph call in flight (the writer lock is free or held by the caller).
        self.graph.close()
        self._table_read = False  # another process may write before this one takes the lease again
        self._graph_mark.unlink(missing_ok=True)  # a clean close: the next holder need not check the graph
        self.lock.release()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call in a worker thread (Kuzu held the loop 381 ms when called directly)."""
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    def schedule_erase(self) -> None:
        """`erase=false`: make the deleted bytes unrecoverable a little later, in the background."""
        if self._erase_task is not None and not self._erase_task.done():
            return

        async def sweep() -> None:
            delay = ERASE_DELAY_SECONDS
            while True:
                await asyncio.sleep(delay)
                try:
                    async with self.exclusive():
                        if await self.hooks.erase_pending(self):
                            return
                except StoreUnavailable as exc:
                    log.warning("background erase postponed: %s", exc)
                # A reader in another process kept the checkpoint from completing: try again, less often.
                delay = min(delay * 2, ERASE_MAX_DELAY_SECONDS)

        self._erase_task = asyncio.get_running_loop().create_task(sweep())

    def cache_key(self, text_hash: str) -> str:
        return f"{self.embedder.name}:{text_hash}"

    @property
    def cache_prefix(self) -> str:
        return f"{self.embedder.name}:"

    def file_size(self, content_hash: str) -> int:
        return self.files.size(content_hash)
