"""Forgetting a subject, several items, and by description (issue 14), through the real MCP client on real
stores: previews list what goes, the guard holds, shared things stay, and nothing outside is touched."""

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import ElicitResult
from memsweep.api import Memory
from memsweep.config import Settings
from memsweep.server.app import create_server

from tests.test_erasure import _scan, _vector_bytes
from tests.test_server import call, error

pytestmark = pytest.mark.anyio


async def _seed(settings: Settings) -> dict[str, Any]:
    """Alice in three of alice's datasets (Oslo shared with a kept item), and in a dataset bob owns and
    shares with alice read-only."""
    async with Memory(settings) as mem:
        ids = {
            "a1": (await mem.add("notes", text="Alice moved to Oslo.", entities=[{"name": "Alice"}, {"name": "Oslo"}])).data_id,
            "a2": (await mem.add("trips", text="Alice flew to Rome.", entities=[{"name": "Alice"}, {"name": "Rome"}],
                                 relations=[{"source": "Alice", "relation": "visited", "target": "Rome"}])).data_id,
            "a3": (await mem.add("work", text="ALICE runs the Atlas project.", entities=[{"name": "ALICE"}])).data_id,
            "kept": (await mem.add("work", text="Bob lives in Oslo.", entities=[{"name": "Bob"}, {"name": "Oslo"}])).data_id,
        }  # fmt: skip
        bob = mem.as_user("bob")
        shared = await bob.add("bobs", text="Bob met Alice once.", entities=[{"name": "Alice"}, {"name": "Bob"}])
        await bob.grant("alice", shared.dataset_id, "read")
        ids["bobs"] = shared.data_id
    return ids


async def _live(c: Client) -> set[str]:
    out = set()
    for d in (await call(c, "list_datasets"))["datasets"]:
        out |= {i["id"] for i in (await call(c, "list_data", {"dataset_id": d["id"]}))["items"]}
    return out


async def test_entity_forget_token_flow_and_what_stays(settings: Settings) -> None:
    ids = await _seed(settings)
    async with Client(create_server(settings), mode="legacy") as c:
        preview = await call(c, "forget", {"entity": "alice"})
        assert preview["confirmation_required"] and not preview["executed"] and preview["confirm_token"]
        assert preview["items"] == 3 and {x["data_id"] for x in preview["candidates"]} == {
            ids["a1"],
            ids["a2"],
            ids["a3"],
        }
        assert all(x["snippet"] and x["score"] is None for x in preview["candidates"])
        assert "Oslo" in preview["kept_shared"] and preview["items_not_deletable"] == 1
        assert "read but not delete" in preview["message"] and "'notes'" in preview["message"]
        assert await _live(c) == set(ids.values())  # the preview deleted nothing
        # a token for another subject is refused, naming what differs
        assert "different entity" in await error(
            c, "forget", {"entity": "Bob", "confirm_token": preview["confirm_token"]}
        )
        done = await call(c, "forget", {"entity": "Alice", "confirm_token": preview["confirm_token"]})
        assert done["executed"] and done["items"] == 3
        assert await _live(c) == {ids["kept"], ids["bobs"]}  # bob's item (read-only to alice) untouched
        assert (await call(c, "search", {"query": "Oslo"}))["hits"][0]["data_id"] == ids["kept"]
        assert "No memory mentions" in await error(c, "forget", {"entity": "Zelda"})
    async with Memory(settings) as mem:
        entry = (await mem.audit(1))[0]
        # ids and counts, never the subject's name (the caller's own user name is alice too, so look elsewhere)
        assert entry.op == "forget" and "alice" not in repr((entry.op, entry.counts, entry.data_ids)).lower()
        assert (await mem.doctor()).consistent


async def test_entity_forget_by_elicitation_and_a_changed_plan(settings: Settings) -> None:
    await _seed(settings)
    asked: list[str] = []

    async def answer(_ctx: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async with Client(create_server(settings), mode="legacy") as c:
        preview = await call(c, "forget", {"entity": "Alice", "dataset": "trips", "dry_run": True})
        assert preview["items"] == 1
        await call(c, "add", {"dataset": "trips", "text": "Alice again.", "entities": [{"name": "Alice"}]})
        changed = await call(
            c, "forget", {"entity": "Alice", "dataset": "trips", "confirm_token": preview["confirm_token"]}
        )
        assert not changed["executed"] and changed["items"] == 2 and "changed" in changed["message"]
    async with Client(create_server(settings), mode="legacy", elicitation_callback=answer) as c:
        done = await call(c, "forget", {"entity": "Alice", "dataset": "trips"})
        assert done["executed"] and done["items"] == 2 and len(asked) == 1 and "trips" in asked[0]


async def test_batch_delete_is_all_or_nothing_and_query_previews(settings: Settings) -> None:
    ids = await _seed(settings)
    unknown = "123e4567-e89b-12d3-a456-426614174000"
    async with Client(create_server(settings), mode="legacy") as c:
        msg = await error(c, "forget", {"data_ids": [ids["a1"], ids["a2"], unknown]})
        assert unknown in msg and "Nothing was deleted" in msg and ids["a1"] not in msg
        msg = await error(c, "forget", {"data_ids": [ids["a1"], ids["bobs"]]})
        assert "Permission denied" in msg and ids["bobs"] in msg
        assert await _live(c) == set(ids.values())
        # find by description: a preview that never deletes
        found = await call(c, "forget", {"query": "Oslo", "limit": 2})
        assert not found["executed"] and found["items"] == 0 and found["candidates"]
        assert all(x["score"] > 0 for x in found["candidates"])
        assert ids["bobs"] not in {x["data_id"] for x in found["candidates"]}  # not alice's to delete
        chosen = [x["data_id"] for x in found["candidates"]]
        assert await _live(c) == set(ids.values())
        preview = await call(c, "forget", {"data_ids": chosen})
        assert preview["confirmation_required"] == (len(chosen) > 1)
        done = await call(c, "forget", {"data_ids": chosen, "confirm_token": preview["confirm_token"]})
        assert done["executed"] and done["items"] == len(chosen)
        assert await _live(c) == set(ids.values()) - set(chosen)
        left = sorted(await _live(c) - {ids["bobs"]})
        assert left  # the query's candidates were not all of alice's items
        single = await call(c, "forget", {"data_ids": left[:1]})  # one id: not guarded
        assert single["executed"] and single["items"] == 1


async def test_entity_forget_erases_the_subject(settings: Settings) -> None:
    async with Memory(settings) as mem:
        for i in range(30):
            await mem.add("filler", text=f"Filler memory {i} about Zurich.")
        subject = "Qxzorbulon Vantablack"
        gone = [
            await mem.add(f"ds{i}", text=f"{subject} said secret QXSUBJ{i}X.", entities=[
                {"name": subject, "description": "QXDESCRIPTIONX"}, {"name": "Zurich"}])
            for i in range(3)
        ]  # fmt: skip
        kept = await mem.add("other", text="Keep QXKEEPSUBJX about Zurich.", entities=[{"name": "Zurich"}])
        vectors = [v for g in gone for v in await _vector_bytes(mem, g.data_id)]
        report = await mem.forget(entity=subject.lower())
        assert report.items == 3 and report.kept_shared == ["Zurich"]
        for marker in (subject.encode(), subject.lower().encode(), b"QXSUBJ", b"QXDESCRIPTIONX"):
            assert _scan(settings.data_dir, marker) == [], marker
        for vec in vectors:
            assert _scan(settings.data_dir, vec) == []
        assert _scan(settings.data_dir, b"QXKEEPSUBJX")  # positive controls
        for vec in await _vector_bytes(mem, kept.data_id):
            assert _scan(settings.data_dir, vec)


async def test_entity_forget_finds_the_subject_through_an_index(settings: Settings) -> None:
    """The subject is found by its normalised name across owners (a dataset shared with the caller); every
    statement of the preview and the delete that looks it up probes an index instead of reading the whole
    entity table (7 ms per statement at 100,000 entities)."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if settings.metadata_url:
        pytest.skip("SQLite's query plans")
    await _seed(settings)
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "entities.norm" in statement:
            seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        async with Memory(settings) as mem:
            assert (await mem.forget(entity="alice", dry_run=True)).items == 3
            assert (await mem.forget(entity="alice")).items == 3
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert len(seen) >= 10
    db = sqlite3.connect(settings.data_dir / "metadata.db")
    try:
        for statement, parameters in seen:
            plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            assert "SCAN entities" not in plan, (statement, plan)
    finally:
        db.close()


async def test_export_holds_exactly_what_the_forget_removes(settings: Settings, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    import anyio.to_thread

    ids = await _seed(settings)
    async with Memory(settings) as mem:
        preview = await mem.forget(entity="alice", dry_run=True)
        lines = [json.loads(x) async for x in mem.export(entity="alice")]
    header, items = lines[0], lines[1:]
    assert header["type"] == "export" and header["items"] == preview.items == 3
    assert {i["id"] for i in items} == {c.data_id for c in preview.candidates} == {ids["a1"], ids["a2"], ids["a3"]}
    trip = next(i for i in items if i["id"] == ids["a2"])
    assert trip["content"] == "Alice flew to Rome." and trip["relations"] == [
        {"source": "Alice", "relation": "visited", "target": "Rome"}
    ]
    assert {e["name"] for e in trip["entities"]} == {"Alice", "Rome"}
    # the CLI writes the same set to a file, then the forget removes exactly it
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(settings.data_dir), MEMSWEEP_USER="alice")
    out = tmp_path / "alice.jsonl"
    argv = [sys.executable, "-m", "memsweep", "export", "--entity", "Alice", "--output", str(out)]
    proc = await anyio.to_thread.run_sync(lambda: subprocess.run(argv, env=env, capture_output=True, text=True))
    assert proc.returncode == 0, proc.stderr
    exported = {json.loads(x)["id"] for x in out.read_text().splitlines()[1:]}
    async with Memory(settings) as mem:
        done = await mem.forget(entity="alice")
        assert {c.data_id for c in done.candidates} == exported and done.items == len(exported)
