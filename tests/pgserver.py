"""A real PostgreSQL server for the tests, started from the machine's own binaries in a temporary folder.

`pytest --metadata=postgres` starts one server per test session (`initdb` + `pg_ctl` from Debian's
versioned `lib/postgresql/N/bin`, which is not on PATH), gives every test a database of its own, and stops
the server at the end. PostgreSQL refuses to run as root, so under root the server runs as the
`postgres` user (the Debian package creates it). It listens on a Unix socket in its own folder only, so
two sessions never fight over a port. `python -m tests.pgserver` starts one by hand and prints its URL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PORT = 5432  # only names the socket file (`.s.PGSQL.5432`); no TCP port is opened
ACTIVE: PgServer | None = None  # the session's server under --metadata=postgres (set by conftest)
CREATED: list[str] = []  # databases made during the current test, dropped at its end


def new_store_metadata() -> None:
    """For a test that opens a second, separate store: under --metadata=postgres, point
    MEMSWEEP_METADATA_URL at a fresh database (one database belongs to one data directory; memsweep
    refuses a mix). Does nothing on SQLite, where the metadata lives in the data directory."""
    if ACTIVE is None:
        return
    name = ACTIVE.create_database()
    CREATED.append(name)
    os.environ["MEMSWEEP_METADATA_URL"] = ACTIVE.url(name)


def find_bin_dir() -> Path | None:
    """The newest PostgreSQL's `bin` folder: `MEMSWEEP_PG_BIN`, else Debian's layout, else PATH."""
    if os.environ.get("MEMSWEEP_PG_BIN"):
        return Path(os.environ["MEMSWEEP_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextlib.contextmanager
def module_database() -> Iterator[str | None]:
    """A database for a store that lives longer than one test (a module-scoped fixture); None on SQLite."""
    if ACTIVE is None:
        yield None
        return
    server, name = ACTIVE, ACTIVE.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@dataclass
class PgServer:
    root: Path  # holds `data/` (PGDATA) and the socket
    bin_dir: Path
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://memsweep@/{database}?host={self.root}&port={PORT}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    @classmethod
    def start(cls, fsync: bool = False) -> PgServer:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL's server programs were not found (looked in /usr/lib/postgresql/*/bin and PATH). "
                "Install them (Debian: apt-get install postgresql) or set MEMSWEEP_PG_BIN."
            )
        run_as = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="memsweep-pg-"))
        if run_as:
            pw = pwd.getpwnam(run_as)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        root.chmod(0o755)  # the tests read PGDATA for the erasure scan; the socket lives here too
        server = cls(root, bin_dir, run_as)
        server._run("initdb", "-D", str(server.data_dir), "-U", "memsweep", "--auth=trust", "-E", "UTF8")
        # fsync off for the tests: a test server that dies is thrown away, and it makes each test's CREATE
        # DATABASE cheap. Benchmarks keep it on, as a real server has it.
        # wal_recycle=off is the setting README asks of a memsweep server (an erase retires WAL segments, and a
        # recycled one keeps its old bytes); the rest of what decides what stays on disk keeps its default.
        with (server.data_dir / "postgresql.conf").open("a") as conf:  # a file setting: ALTER SYSTEM can override
            conf.write("\nwal_recycle = off\n")
        options = (
            f"-c listen_addresses='' -k {root} -p {PORT} -c fsync={'on' if fsync else 'off'} -c max_connections=300"
        )
        server._run("pg_ctl", "-D", str(server.data_dir), "-o", options, "-l", str(root / "server.log"), "-w", "start")
        return server

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.root), port=PORT, user="memsweep", dbname="postgres", autocommit=True) as c:
            c.execute(sql)  # type: ignore[arg-type]

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.admin(f"CREATE DATABASE {name}")
        return name

    def create_database_from(self, template: str) -> str:
        """A copy of `template` (which must have no open connections)."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return name

    def drop_database(self, name: str) -> None:
        for _ in range(50):
            try:
                self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                return
            except Exception:
                time.sleep(0.1)


if __name__ == "__main__":
    srv = PgServer.start()
    print(srv.url(srv.create_database()))
    print(f"PGDATA={srv.data_dir}; stop with: pg_ctl -D {srv.data_dir} stop (as {srv.run_as or 'you'})")
