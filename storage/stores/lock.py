"""Cross-process exclusion for one data directory.

Kuzu lets one process open a database read-write and locks out every other open (ENGINES.md), while two
memsweep processes on one directory (a desktop app and an IDE) is the normal case. So writers take an
exclusive `flock` on `<data_dir>/.memsweep.lock`, open the graph, do their work, and keep the lease only
while busy: after `IDLE_RELEASE_SECONDS` without work the graph is closed and the lock released, so the
other process gets its turn. A waiter polls until `lock_timeout_seconds` and then fails with a clear error.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

from memsweep.errors import StoreUnavailable

log = logging.getLogger("memsweep.lock")
IDLE_RELEASE_SECONDS = 0.5
POLL_SECONDS = 0.02


class DirLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.waited_seconds = 0.0  # last acquisition's wait, for the README's measurement

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        """Blocking (run it in a thread): take the exclusive lock or raise `StoreUnavailable`."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - start >= timeout:
                    # The holder's pid and the directory go to the operator's log, not to the caller (who may
                    # be a remote user: server internals are not theirs to see).
                    log.warning("data directory %s busy: held by pid %s", self.path.parent, _read_holder(fd))
                    os.close(fd)
                    raise StoreUnavailable(
                        f"Another memsweep process kept the store busy for more than {timeout:.0f} s. Nothing was "
                        "changed; retry in a moment (the operator can raise MEMSWEEP_LOCK_TIMEOUT)."
                    ) from None
                time.sleep(POLL_SECONDS)
        self.waited_seconds = time.monotonic() - start
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return "?"
    return pid if pid.isdigit() else "?"
