"""A watchdog on the event loops of `memsweep serve` and of its engine process (for bench/agent_day.py).

    LOOP_PROBE_OUT=/tmp/stalls PYTHONPATH=bench/probe_site python -m memsweep serve

bench/probe_site/sitecustomize.py installs it in every Python process started with that PYTHONPATH (the
server and each engine process it starts); each writes `LOOP_PROBE_OUT.<pid>.json`. A thread posts a callback to the server's event loop every 5 ms and measures how late it runs: the loop's
stall (a close, open or compaction run on the loop instead of a worker thread shows up here). Every second
and at exit it writes the worst stall, the count of stalls over 20 ms and the ten worst with their times
(seconds since start); when a callback is CAUGHT_MS late, the stacks of every thread (the first five
times, under "caught": that is how the anyio backend import below was found). It changes nothing in the
processes but their `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Coroutine
from typing import Any

PERIOD = 0.005
CAUGHT_MS = 10  # a callback this late: what every thread is doing is recorded (the first few times)


class Probe:
    def __init__(self, out: str) -> None:
        self.out = out
        self.start = time.monotonic()
        self.worst: list[tuple[float, float]] = []  # (stall ms, at s)
        self.over_20 = 0
        self.samples = 0
        self.lock = threading.Lock()
        self.caught: list[dict[str, Any]] = []  # stacks of every thread while the loop was late

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        last_write = 0.0
        while not loop.is_closed():
            posted = time.monotonic()
            ran = threading.Event()

            def mark(posted: float = posted, ran: threading.Event = ran) -> None:
                self.record((time.monotonic() - posted) * 1000, posted - self.start)
                ran.set()

            try:
                loop.call_soon_threadsafe(mark)
            except Exception:  # the loop closed, or the interpreter is shutting down
                break
            if not ran.wait(CAUGHT_MS / 1000) and len(self.caught) < 5:
                self.catch(posted)
            while not ran.wait(1.0):
                if loop.is_closed():
                    break
            if time.monotonic() - last_write > 1.0:
                self.write()
                last_write = time.monotonic()
            time.sleep(PERIOD)
        self.write()

    def catch(self, posted: float) -> None:
        """What each thread runs now, CAUGHT_MS after a callback was posted that has not run yet. Taking the
        stacks needs the GIL: a C call that holds it shows as the frame that called it, once it returns."""
        names = {t.ident: t.name for t in threading.enumerate()}
        stacks = {
            names.get(ident, str(ident)): [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in
                                           traceback.extract_stack(frame)[-40:]]
            for ident, frame in sys._current_frames().items() if ident != threading.get_ident()
        }  # fmt: skip
        with self.lock:
            self.caught.append({"at_s": round(posted - self.start, 2), "late_ms": round((time.monotonic() - posted) * 1000, 1),
                                "threads": stacks})  # fmt: skip

    def record(self, ms: float, at: float) -> None:
        with self.lock:
            self.samples += 1
            if ms > 20:
                self.over_20 += 1
            self.worst.append((ms, at))
            self.worst.sort(reverse=True)
            del self.worst[10:]

    def write(self) -> None:
        with self.lock:
            data = {
                "pid": os.getpid(),
                "samples": self.samples,
                "worst_ms": round(self.worst[0][0], 2) if self.worst else 0.0,
                "over_20ms": self.over_20,
                "top": [{"ms": round(ms, 2), "at_s": round(at, 2)} for ms, at in self.worst],
                "caught": self.caught,
            }
            # under the lock too: the watcher's last write and the one at exit can run at once, and the
            # second os.replace then found no tmp file ("Exception in thread … (watch)" at a server's exit)
            tmp = self.out + ".tmp"
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.out)


def install(out: str) -> None:
    """Watch the loop of every `asyncio.run` in this process; write to `out` every second and at exit."""
    import atexit

    probe = Probe(out)
    real_run = asyncio.run

    def probed_run(main: Coroutine[Any, Any, Any], **kwargs: Any) -> Any:
        async def wrapper() -> Any:
            threading.Thread(target=probe.watch, args=(asyncio.get_running_loop(),), daemon=True).start()
            return await main

        return real_run(wrapper(), **kwargs)

    asyncio.run = probed_run  # type: ignore[assignment]
    atexit.register(probe.write)


def merged(prefix: str) -> dict[str, Any]:
    """The stalls of every probed process (`prefix.<pid>.json`): the server and each engine process it ran."""
    import glob

    runs = []
    for path in glob.glob(glob.escape(prefix) + ".*.json"):
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except (OSError, ValueError):
            continue
    top = sorted(({**t, "pid": r["pid"]} for r in runs for t in r["top"]), key=lambda t: -t["ms"])[:10]
    return {
        "processes": len(runs),
        "samples": sum(r["samples"] for r in runs),
        "worst_ms": top[0]["ms"] if top else float("nan"),
        "over_20ms": sum(r["over_20ms"] for r in runs),
        "top": top,
        "per_process": {r["pid"]: r["worst_ms"] for r in runs},
    }
