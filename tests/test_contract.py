"""README's tool table and manifest.json are kept equal to list_tools() and pyproject.toml."""

import json
import re
import tomllib
from pathlib import Path

import pytest
from mcp import Client
from memsweep.config import Settings
from memsweep.server.app import create_server

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.anyio


async def test_readme_and_manifest_match_the_server(settings: Settings) -> None:
    async with Client(create_server(settings), mode="legacy") as c:
        names = sorted(t.name for t in (await c.list_tools()).tools)
    readme = (ROOT / "README.md").read_text()
    table = sorted(re.findall(r"^\| `(\w+)` \|", readme.split("## Tools", 1)[1].split("###", 1)[0], re.M))
    assert table == names
    manifest = json.loads((ROOT / "manifest.json").read_text())
    assert sorted(t["name"] for t in manifest["tools"]) == names
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert manifest["version"] == version
    import memsweep

    assert memsweep.__version__ == version
