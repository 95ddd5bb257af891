"""The engine process of `memsweep serve` (started by server/engine_process.py; `python -m
memsweep.server.worker`). It opens one `Memory` on the data directory and runs the calls the server sends
it, until the server says close, its input ends (the server is gone, even killed), or SIGTERM.

Why a process of its own: the storage engines cost ~165 MB before a store opens and hold more after (Kuzu,
LanceDB, SQLAlchemy, numpy, pyarrow), and none of it goes back while imported. An idle server ends this
process and keeps only the MCP side (~70 MB); issue 12.2. It imports nothing of the MCP SDK.

Frames on the pipes: a 4-byte big-endian length, then a pickle (the two ends are one program and the
pipes are private to them). To the engine: ("settings", Settings) first, read before the loop starts;
then ("call", id, user, remote, path, args, kwargs, progress) and ("close",). From it: ("ready",), ("failed", error), ("progress", id, (done, total, what)), ("ok", id,
value), ("err", id, error), ("closed", next_expiry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import struct
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from memsweep.config import configure_logging
from memsweep.storage import heap

if TYPE_CHECKING:
    from memsweep.api import Memory

log = logging.getLogger("memsweep.worker")
HEADER = struct.Struct(">I")
# A delete reports six steps, a fast one within ~15 ms; each is a frame through the pipe and a wake-up of the
# server (the six cost an MCP delete_data 0.65-0.9 ms of ~15). A step goes out when this long has passed since
# the last one sent, and the first and the last always: what a person watching can see is the same.
PROGRESS_EVERY_SECONDS = 0.05


def dumps(message: tuple[Any, ...]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or None at the end of the stream."""
    try:
        head = await reader.readexactly(HEADER.size)
        message: tuple[Any, ...] = pickle.loads(await reader.readexactly(HEADER.unpack(head)[0]))
    except asyncio.IncompleteReadError:
        return None
    return message


def portable(exc: BaseException) -> BaseException:
    """The error as it can cross the pipe: itself when it pickles and loads back (every MemsweepError does;
    an exception whose `__init__` wants other arguments than its `args` pickles but does not load), else a
    RuntimeError with its type and text (the traceback stays in this process's log)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


class Worker:
    def __init__(self, memory: Memory, writer: asyncio.StreamWriter) -> None:
        self.memory = memory
        self.writer = writer
        self.calls: set[asyncio.Task[None]] = set()

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            frame = dumps(message)
        except Exception as exc:  # a result that does not pickle is a bug here, not the caller's
            log.exception("a reply could not be pickled")
            frame = dumps(("err", message[1], RuntimeError(f"the reply could not be sent: {exc}")))
        self.writer.write(frame)

    async def call(self, rid: int, user: str, remote: bool, path: tuple[str, ...], args: Any, kwargs: Any,
                   progress: bool) -> None:  # fmt: skip
        try:
            target: Any = self.memory.as_user(user, remote=remote)
            for name in path:
                target = getattr(target, name)
            if progress:
                last_sent = float("-inf")

                async def report(done: int, total: int, what: str) -> None:
                    nonlocal last_sent
                    now = time.monotonic()
                    if done < total and now - last_sent < PROGRESS_EVERY_SECONDS:
                        return
                    last_sent = now
                    self.send(("progress", rid, (done, total, what)))

                kwargs["progress"] = report
            result = target(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as exc:
            from memsweep.errors import MemsweepError

            if not isinstance(exc, MemsweepError):
                log.exception("%s failed", ".".join(path))
            self.send(("err", rid, portable(exc)))
        else:
            self.send(("ok", rid, result))
        await self.writer.drain()

    async def serve(self, reader: asyncio.StreamReader, stop: asyncio.Event) -> None:
        """Run calls (each in its own task, as the server runs them) until close, end of input or a stop."""
        stopping = asyncio.ensure_future(stop.wait())
        while True:
            reading = asyncio.ensure_future(read_frame(reader))
            done, _ = await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if reading not in done:
                reading.cancel()
                break
            message = reading.result()
            if message is None or message[0] == "close":
                break
            task = asyncio.get_running_loop().create_task(self.call(*message[1:]))
            self.calls.add(task)
            task.add_done_callback(self.calls.discard)
        stopping.cancel()
        if self.calls:  # a call under way finishes (a delete is not left half done), then the engine closes
            await asyncio.wait(self.calls)


async def _sweep_expired(memory: Memory) -> None:
    """Expiry in a running server (issue 15.1): every SWEEP_SECONDS, delete what expired, with erase."""
    from memsweep.errors import MemsweepError
    from memsweep.storage.deletion.expiry import SWEEP_SECONDS

    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await memory.expire()
        except MemsweepError as exc:  # busy store, a hold: the next round tries again
            log.warning("expiry sweep postponed: %s", exc)


def _read_settings() -> Any:
    """The first frame, read from fd 0 before the loop starts: the server's Settings (None: input ended)."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = os.read(0, n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    try:
        return pickle.loads(exactly(HEADER.unpack(exactly(HEADER.size))[0]))[1]
    except EOFError:
        return None


def _load_engines(graph_backend: str) -> None:
    """Import every engine before the loop runs. An import holds the GIL for its C extensions' set-up (Lance
    and Arrow: 0.4-0.6 s), so an import on a thread beside a running loop stalled every call for that long
    (the agent day measured 589 ms). Before the loop nothing waits: the server is still loading the MCP SDK
    on the other core, and a fresh server's first call came as soon as before (1.23x a bare server's with and
    without this, bench/first_call.py)."""
    import importlib

    import lance  # noqa: F401
    import memsweep.api  # noqa: F401
    import numpy  # noqa: F401
    from memsweep.storage.stores.graph import BACKENDS

    if graph_backend in BACKENDS:  # an unknown one is reported by the open, in the caller's words
        with contextlib.suppress(ImportError):  # likewise a backend that is not installed
            importlib.import_module(BACKENDS[graph_backend][0])
    # anyio imports its asyncio backend at the first worker-thread call, on the loop (the open's first
    # metadata read): 14-19 ms of the engine process's worst loop stalls (bench/loop_probe.py caught it).
    importlib.import_module("anyio._backends._asyncio")


async def main(settings: Any) -> None:
    loop = asyncio.get_running_loop()
    # The pipes to the server are private descriptors; fd 0 and 1 become /dev/null and stderr, so a library
    # that prints cannot corrupt a frame.
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    reader = asyncio.StreamReader(limit=2**31)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(proto_in, "rb"))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(proto_out, "wb"))
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)  # DESIGN.md invariant 11: a stop finishes what is due

    from memsweep.api import Memory
    from memsweep.storage.deletion.expiry import next_due

    memory = Memory(settings)
    try:
        await memory.__aenter__()
    except Exception as exc:
        log.warning("the store did not open: %s", exc)
        writer.write(dumps(("failed", portable(exc))))
        await writer.drain()
        return
    heap.freeze_startup_objects()
    writer.write(dumps(("ready",)))
    background = [loop.create_task(_sweep_expired(memory))]
    next_expiry: datetime | None = None
    try:
        await Worker(memory, writer).serve(reader, stop)
    finally:
        for task in background:
            task.cancel()
        try:
            next_expiry = await next_due(memory.engine)
        except Exception:  # the server then wakes no engine for an expiry; the next open sweeps it
            log.exception("could not read when the next item expires")
        await memory.close()  # runs a due erase, releases the data directory
    try:
        writer.write(dumps(("closed", next_expiry)))
        await writer.drain()
    except (ConnectionError, OSError):
        pass  # the server is gone: nobody to tell


def run() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when a Ctrl-C stops this process
    configure_logging()
    heap.tune_for_server()  # this process is ours: fewer arenas, freed large blocks go back to the system
    settings = _read_settings()
    if settings is None:  # the server ended before it sent anything
        return
    _load_engines(settings.graph_backend)
    asyncio.run(main(settings))


if __name__ == "__main__":
    run()
