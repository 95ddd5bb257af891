"""The server's side of its engine process (server/worker.py): start it, send it calls, end it when idle.

`memsweep serve` keeps the MCP side in its own process and the storage engines in a child: the engines'
memory (~165 MB imported, 300+ MB after a day of adds) then goes away with the child when the server has
been idle for `engine_idle_seconds`, and the next call starts a new one (issue 12.2). The child is started
at once, so a fresh server's first call finds it ready, and it imports the engines on the other core while
this process answers the handshake.

Ending the child is decided here, never by the child: a call and the close cannot cross. A call waits for
a closing child to finish (its due erase included) before a new one starts, so two engine processes of one
server never hold the data directory at once. If the child dies during a call, the call fails with
`StoreUnavailable` and the next call starts a fresh child, whose open finishes what a delete left (the
journal, DESIGN.md invariant 5). If this process dies, the child sees its input end and closes cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from memsweep.config import Settings
from memsweep.errors import StoreUnavailable
from memsweep.server.worker import dumps, read_frame
from memsweep.storage import heap

log = logging.getLogger("memsweep.server")

POLL_SECONDS = 1.0
Progress = Callable[[int, int, str], Awaitable[None]]


def launch(settings: Settings) -> subprocess.Popen[bytes]:
    """Start an engine process on `settings` (synchronous: `memsweep serve` calls it before it imports the MCP
    SDK, so the two imports run on two cores at once)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "memsweep.server.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
        start_new_session=True,  # a terminal's Ctrl-C goes to the server, which closes the engine in order
        env=heap.without_thread_cache(os.environ),  # every block the graph engine gets is zeroed (heap.py)
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(dumps(("settings", settings)))
    return proc


class _Child:
    """One running engine process and the calls waiting for its answers."""

    def __init__(self, proc: subprocess.Popen[bytes], reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.proc, self.reader, self.writer = proc, reader, writer
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting: dict[int, asyncio.Queue[tuple[Any, ...]]] = {}
        self.next_expiry: datetime | None = None
        self.gone: StoreUnavailable | None = None
        self.reading = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def attach(cls, proc: subprocess.Popen[bytes]) -> _Child:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**31)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), proc.stdout)
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, proc.stdin)
        return cls(proc, reader, asyncio.StreamWriter(transport, protocol, None, loop))

    async def _read(self) -> None:
        try:
            while (message := await read_frame(self.reader)) is not None:
                kind = message[0]
                if kind == "ready":
                    self.ready.set_result(None)
                elif kind == "failed":
                    self.ready.set_exception(message[1])
                elif kind == "closed":
                    self.next_expiry = message[1]
                elif message[1] in self.waiting:  # a call cancelled here meanwhile has no queue any more
                    self.waiting[message[1]].put_nowait(message)
        except Exception:  # a frame that does not load: the pipe is out of step, so this child is done
            log.exception("the engine process sent what could not be read; stopping it")
            self.proc.kill()
        code = await asyncio.to_thread(self.proc.wait)
        self.writer.close()
        self.gone = StoreUnavailable(
            f"The engine process ended (exit status {code}) before it answered. A delete it was running "
            "finishes when the store next opens; call list_data to see what is there now, then retry."
        )
        if not self.ready.done():
            self.ready.set_exception(self.gone)
        for queue in self.waiting.values():
            queue.put_nowait(("err", None, self.gone))

    @property
    def alive(self) -> bool:
        return not self.reading.done()

    def send(self, message: tuple[Any, ...]) -> None:
        self.writer.write(dumps(message))


class EngineProcess:
    def __init__(self, settings: Settings, idle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._launched: subprocess.Popen[bytes] | None = None
        self._child: _Child | None = None
        self._starting: asyncio.Task[_Child] | None = None
        self._ending: asyncio.Task[None] | None = None
        self._ids = itertools.count()
        self._busy = 0
        self._last_call = clock()
        self._watch: asyncio.Task[None] | None = None
        self._closed = False
        self.starts = 0  # how many engine processes this server started (the tests read it)

    @property
    def pid(self) -> int | None:
        return self._child.proc.pid if self._child is not None else None

    def launch(self) -> None:
        """Start the engine process unless one is launched and not yet attached (synchronous: `memsweep serve`
        calls it first thing, before there is a loop)."""
        if self._launched is None:
            self._launched = launch(self.settings)
            self.starts += 1

    def start(self) -> None:
        """Start the engine process now (the server's start-up), without waiting for it."""
        if self._starting is None and self._child is None:
            self._starting = asyncio.get_running_loop().create_task(self._spawn())

    async def _spawn(self) -> _Child:
        if self._ending is not None:
            await asyncio.shield(self._ending)
        self.launch()  # unless `memsweep serve` launched it already
        proc, self._launched = self._launched, None
        assert proc is not None
        try:
            child = await _Child.attach(proc)
            await child.ready
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.to_thread(proc.wait)
            raise
        self._child = child
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_idle())
        return child

    async def _running(self) -> _Child:
        if self._closed:
            raise StoreUnavailable("The server is stopping; nothing was done. Call again once it has restarted.")
        child = self._child
        if child is not None and child.alive:
            return child
        self._child = None
        starting = self._starting
        if starting is None or (starting.done() and (starting.exception() is not None or not starting.result().alive)):
            starting = self._starting = asyncio.get_running_loop().create_task(self._spawn())
        return await asyncio.shield(starting)

    async def call(
        self, user: str, remote: bool, path: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any],
        progress: Progress | None = None,
    ) -> Any:  # fmt: skip
        """Run `Memory.as_user(user, remote=remote).<path>(*args, **kwargs)` in the engine process."""
        self._busy += 1
        try:
            child = await self._running()
            rid = next(self._ids)
            queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
            child.waiting[rid] = queue
            try:
                if child.gone is not None:  # it ended after `_running` looked: its reader told nobody
                    raise child.gone
                child.send(("call", rid, user, remote, path, args, kwargs, progress is not None))
                while True:
                    kind, _rid, value = await queue.get()
                    if kind == "progress":
                        assert progress is not None
                        await progress(*value)
                    elif kind == "ok":
                        return value
                    else:
                        raise value
            finally:
                del child.waiting[rid]
        finally:
            self._busy -= 1
            self._last_call = self._clock()

    async def _watch_idle(self) -> None:
        """End the engine process once no call has come for `idle_seconds`; start one again when the next
        item expires, so the expiry sweep keeps its time (its open sweeps, then it ends again)."""
        wake_at: datetime | None = None
        while not self._closed:
            child = self._child
            if child is None:
                if wake_at is not None and datetime.now(UTC) >= wake_at and self._starting is None:
                    wake_at = None
                    self.start()
                await asyncio.sleep(POLL_SECONDS)
                continue
            wait = self._last_call + self.idle_seconds - self._clock()
            if wait > 0 or self._busy or not child.alive:
                await asyncio.sleep(min(max(wait, 0.05), POLL_SECONDS))
                continue
            self._child, self._starting = None, None
            self._ending = asyncio.get_running_loop().create_task(self._end(child))
            await asyncio.shield(self._ending)
            wake_at = child.next_expiry

    async def _end(self, child: _Child) -> None:
        """Ask the child to close (it finishes calls under way, a due erase, and releases the directory)."""
        with contextlib.suppress(ConnectionError, OSError):
            child.send(("close",))
            await child.writer.drain()
        await child.reading  # ends when the child has exited

    async def close(self) -> None:
        """End the engine process for good (the server stops); idempotent."""
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
        if self._starting is not None and not self._starting.done():
            with contextlib.suppress(Exception):
                await self._starting
        if self._launched is not None:  # launched, never attached: its input ends, it exits
            proc, self._launched = self._launched, None
            assert proc.stdin is not None
            proc.stdin.close()
            await asyncio.to_thread(proc.wait)
        child, self._child = self._child, None
        if child is not None:
            self._ending = asyncio.get_running_loop().create_task(self._end(child))
        if self._ending is not None:
            await asyncio.shield(self._ending)


class RemoteMemory:
    """Stands for `Memory.as_user(user)` in the engine process: `mem.datasets.list_datasets()` here runs
    there. Attribute access builds the path; a call sends it. A `progress` callback stays here and gets the
    child's reports in order."""

    def __init__(self, process: EngineProcess, user: str, remote: bool, path: tuple[str, ...] = ()) -> None:
        self._process, self._user, self._remote, self._path = process, user, remote, path

    def __getattr__(self, name: str) -> RemoteMemory:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteMemory(self._process, self._user, self._remote, (*self._path, name))

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        progress = kwargs.pop("progress", None)
        return self._process.call(self._user, self._remote, self._path, args, kwargs, progress)
