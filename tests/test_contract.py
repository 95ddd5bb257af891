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


async def test_every_result_matches_its_output_schema_with_formats(settings: Settings) -> None:
    """What the MCP Inspector checks: structured content against the tool's output schema, formats included
    (a naive `created_at` failed `format: date-time` as soon as one dataset existed)."""
    from jsonschema import Draft202012Validator, FormatChecker

    checker = FormatChecker()
    assert "date-time" in checker.checkers  # needs rfc3339-validator; without it formats pass unchecked
    async with Client(create_server(settings.with_(allow_prune=True)), mode="legacy") as c:
        schemas = {t.name: t.output_schema for t in (await c.list_tools()).tools}

        async def checked(tool: str, args: dict) -> dict:  # type: ignore[type-arg]
            r = await c.call_tool(tool, args)
            assert not r.is_error, r.content[0].text
            Draft202012Validator(schemas[tool], format_checker=checker).validate(r.structured_content)
            return r.structured_content  # type: ignore[no-any-return]

        a = await checked("add", {"dataset": "notes", "text": "Alice moved to Oslo.", "entities": [{"name": "Oslo"}]})
        await checked("add", {"dataset": "trips", "text": "Bob flew to Oslo."})
        await checked("search", {"query": "Oslo"})
        listed = await checked("list_datasets", {})
        assert listed["datasets"][0]["created_at"].endswith(("Z", "+00:00"))  # RFC 3339: UTC, offset given
        await checked("list_data", {"dataset_id": "notes"})
        await checked("delete_data", {"dataset_id": "notes", "data_id": a["data_id"], "dry_run": True})
        preview = await checked("empty_dataset", {"dataset_id": "trips"})
        assert preview["expires_at"].endswith(("Z", "+00:00"))
        await checked("delete_all", {"dry_run": True})
        await checked("forget", {"dataset": "notes", "dry_run": True})
        await checked("prune", {"vector": True, "dry_run": True})
        await checked("delete_data", {"dataset_id": "notes", "data_id": a["data_id"]})
    bad = dict(listed["datasets"][0], created_at="2026-11-29T11:06:59.256269")
    item_schema = {**schemas["list_datasets"], "$ref": "#/$defs/DatasetInfo"}
    assert not Draft202012Validator(item_schema, format_checker=checker).is_valid(bad)


def _without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return [_without_nulls(v) for v in value] if isinstance(value, list) else value


async def test_agent_sized_tool_list_and_results(settings: Settings) -> None:
    """Issue 11.5: what an agent pays in tokens (about 4 characters a token), held at today's size so it cannot
    creep back: `tools/list` was 35,168 characters (about 8.8k tokens) before server/schemas.py, 20,651
    after, 15,995 once only forget's report lists items, prune's layers are published as integer counts and
    the descriptions say each thing once (target 16,000). A default list_data page (50 items, fields fixed by the contract) is about 3.5k
    tokens; a default search, list_datasets and a deletion report stay under 2k; no search hit has score 0;
    the text copy leaves out null fields (structuredContent keeps them)."""
    import json

    async with Client(create_server(settings), mode="legacy") as c:
        listed = (await c.list_tools()).model_dump(mode="json", by_alias=True, exclude_none=True)
        assert len(json.dumps(listed, separators=(",", ":"))) <= 16_000
        by_name = {t["name"]: t for t in listed["tools"]}
        for name in ("delete_data", "empty_dataset", "delete_all", "prune"):
            assert "candidates" not in by_name[name]["outputSchema"]["properties"]
        assert "candidates" in by_name["forget"]["outputSchema"]["properties"]
        for tool in listed["tools"]:
            assert '"title"' not in json.dumps(tool["inputSchema"]) + json.dumps(tool.get("outputSchema", {}))
        for i in range(60):
            text = f"Memory {i}: Alice met Bob in Oslo to talk about project {i}."
            assert not (await c.call_tool("add", {"dataset": "notes", "text": text, "name": f"meeting {i}"})).is_error
        await c.call_tool("add", {"dataset": "other", "text": "Carol grows tomatoes."})
        sizes = {}
        for tool, args in [
            ("list_data", {"dataset_id": "notes"}),
            ("search", {"query": "Alice Oslo"}),
            ("list_datasets", {}),
            ("empty_dataset", {"dataset_id": "notes", "dry_run": True}),
        ]:
            r = await c.call_tool(tool, args)
            assert not r.is_error, r.content[0].text
            sizes[tool] = len(r.content[0].text)
            assert "null" not in r.content[0].text
            assert json.loads(r.content[0].text) == _without_nulls(r.structured_content)
            if tool == "search":
                assert r.structured_content["hits"] and all(h["score"] > 0 for h in r.structured_content["hits"])
        assert sizes["list_data"] <= 14_000, sizes
        assert max(sizes["search"], sizes["list_datasets"], sizes["empty_dataset"]) <= 8_000, sizes
