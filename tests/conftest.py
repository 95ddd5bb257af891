import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from memsweep.api import Memory
from memsweep.config import Settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--metadata",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="metadata database for every store the tests open: sqlite (default) or postgres (starts a real "
        "PostgreSQL server from the machine's binaries for the session, one database per test)",
    )


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[object | None]:
    if request.config.getoption("--metadata") != "postgres":
        yield None
        return
    from tests import pgserver

    server = pgserver.ACTIVE = pgserver.PgServer.start()
    try:
        yield server
    finally:
        pgserver.ACTIVE = None
        server.stop()


@pytest.fixture(autouse=True)
def metadata_backend(pg_server: object | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """Under `--metadata=postgres`, every store a test opens (in this process or in a server it starts, which
    inherits the environment) keeps its metadata in a fresh PostgreSQL database, dropped afterwards."""
    if pg_server is None:
        yield None
        return
    from tests import pgserver

    name = pg_server.create_database()  # type: ignore[attr-defined]
    url = pg_server.url(name)  # type: ignore[attr-defined]
    monkeypatch.setenv("MEMSWEEP_METADATA_URL", url)  # restored at the end, also after new_store_metadata()
    try:
        yield url
    finally:
        for other in [name, *pgserver.CREATED]:
            pg_server.drop_database(other)  # type: ignore[attr-defined]
        pgserver.CREATED.clear()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", user="alice", graph_backend=os.environ.get("MEMSWEEP_GRAPH_BACKEND", "kuzu")
    )


@pytest.fixture
async def mem(settings: Settings):
    async with Memory(settings) as m:
        yield m
