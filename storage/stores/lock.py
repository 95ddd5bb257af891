"""Cross-process exclusion for one data directory.

Kuzu lets one process open a database read-write and locks out every other open (ENGINES.md), while two
memsweep processes on one directory (a desktop app and an IDE) is the normal case. So writers take an
exclusive `flock` on `<data_dir>/.memsweep.lock`, open the graph, do their work, and keep the lease between
calls. A waiter says so by creating `<data_dir>/.memsweep.lock.want`; the holder checks for it every
`WANT_POLL_SECONDS` while idle and hands the lease over (graph closed, lock released), so the other process
gets its turn within ~50 ms of the holder's last call (plus the graph's close). With no one waiting the
holder keeps the graph open for `IDLE_RELEASE_SECONDS`: releasing after 0.5 s, as before, made every call
after a pause of a user's session reopen Kuzu (47–56 ms, a delete after idle 1.5x a back-to-back one). A
waiter polls until `lock_timeout_seconds` and then fails with a clear error.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

from memsweep.errors import StoreUnavailable

log = logging.getLogger("memsweep.lock")
IDLE_RELEASE_SECONDS = 60.0
WANT_POLL_SECONDS = 0.05
POLL_SECONDS = 0.02


class DirLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.want_path = path.with_name(path.name + ".want")
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
                self._ask()
                if time.monotonic() - start >= timeout:
                    # The holder's pid and the directory go to the operator's log, not to the caller (who may
                    # be a remote user: server internals are not theirs to see).
                    log.warning("data directory %s busy: held by pid %s", self.path.parent, _read_holder(fd))
                    os.close(fd)
                    self.want_path.unlink(missing_ok=True)
                    raise StoreUnavailable(
                        f"Another memsweep process kept the store busy for more than {timeout:.0f} s. Nothing was "
                        "changed; retry in a moment (the operator can raise MEMSWEEP_LOCK_TIMEOUT)."
                    ) from None
                time.sleep(POLL_SECONDS)
        self.waited_seconds = time.monotonic() - start
        # Served: withdraw the request (another waiter re-creates it on its next poll). A request left by a
        # waiter that died costs the next holder one early hand-over, then this removes it.
        self.want_path.unlink(missing_ok=True)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def wanted(self) -> bool:
        """Whether another process is waiting for the lease (a stat: cheap enough for the event loop)."""
        return self.want_path.exists()

    def let_waiter_in(self) -> None:
        """After a release that a waiter asked for: give it up to a few polls to take the lock before this
        process asks again (flock is not a queue, and the waiter sleeps between its tries)."""
        deadline = time.monotonic() + 5 * POLL_SECONDS
        while self.wanted() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS / 4)

    def _ask(self) -> None:
        try:
            os.close(os.open(self.want_path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError:  # a read-only or vanished directory: the holder still hands over after its idle time
            pass

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
