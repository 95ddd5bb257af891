"""Stopping `memsweep serve` on a signal (DESIGN.md invariant 11: stops are events too).

On the first SIGINT (Ctrl-C) or SIGTERM the server closes its engine, which runs an `erase=false` sweep that
is due and releases the data directory, then exits with status 0 and no traceback. Over stdio the SDK reads
stdin in a worker thread that no cancellation can interrupt, so waiting for the transport to wind down
would wait for the next line of input (a terminal's Ctrl-C was ignored for 30 s and more): once the engine
is closed the process leaves at once. A closed stdin ends the transport normally and the lifespan closes
the engine the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("memsweep.stop")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_until_stopped(server: Any, serve: Callable[[], Awaitable[None]]) -> int:
    """Run `serve()` until it returns or a signal arrives; then close the engine and return 0."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def on_signal(signum: int, _frame: object) -> None:
            loop.call_soon_threadsafe(stopping.set)

        for sig in SIGNALS:
            signal.signal(sig, on_signal)
        serving = asyncio.ensure_future(serve())
        waiting = asyncio.ensure_future(stopping.wait())
        done, _ = await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if serving in done:
            waiting.cancel()
            serving.result()  # the transport ended (stdin closed): the lifespan already closed the engine
            return
        # Further signals while closing are ignored: the close is what makes the stop safe.
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        try:
            await server.shutdown()
        except Exception:
            log.exception("closing the store on stop failed; the next start finishes what was pending")
        _leave(0)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return 0
    return 0


def _leave(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(status)
