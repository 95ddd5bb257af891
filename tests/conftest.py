import os
from pathlib import Path

import pytest
from memsweep.api import Memory
from memsweep.config import Settings


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
