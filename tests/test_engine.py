"""The engine on real SQLite, Kuzu and LanceDB in a temp dir: the rules DESIGN.md promises."""

import pytest
from memsweep.api import Memory
from memsweep.errors import InvalidInput, NotFound, PermissionDenied
from memsweep.storage.ids import entity_id, normalise_name

from tests.helpers import entity_ids, snapshot

pytestmark = pytest.mark.anyio


async def _ny_id(mem: Memory, name: str = "New York") -> str:
    from memsweep.storage import access

    async with mem.engine.meta.read() as conn:
        uid = await conn.run_sync(access.user_id, mem.user, create=False)
    return entity_id(uid, normalise_name(name))


async def test_interface_example_runs_as_written(mem: Memory) -> None:
    item = await mem.add("notes", text="Alice moved to New York.", entities=[{"name": "Alice"}, {"name": "New York"}])
    hits = await mem.search("Alice")
    assert hits[0].data_id == item.data_id
    datasets = await mem.datasets.list_datasets()
    items = await mem.datasets.list_data(datasets[0].id)
    assert [i.id for i in items] == [item.data_id]
    report = await mem.datasets.delete_data(dataset_id=datasets[0].id, data_id=items[0].id)
    assert report.executed and report.items == 1 and report.files_deleted == 1
    await mem.datasets.empty_dataset(dataset_id=datasets[0].id)
    await mem.datasets.delete_all()
    await mem.prune.prune_data()
    await mem.prune.prune_system(graph=True, vector=True, metadata=False, cache=False)
    assert (await mem.doctor()).consistent


async def test_shared_node_lives_until_last_item(mem: Memory) -> None:
    a = await mem.add("notes", text="Alice moved to New York.", entities=[{"name": "Alice"}, {"name": "New York"}])
    b = await mem.add("trips", text="Bob flew to new york.", entities=[{"name": "Bob"}, {"name": "new  York"}])
    ny = await _ny_id(mem)
    assert ny in await entity_ids(mem)
    first = await mem.datasets.delete_data(dataset_id=a.dataset_id, data_id=a.data_id)
    assert first.kept_shared == ["New York"] and first.nodes_kept_shared == 1
    assert ny in await entity_ids(mem)
    assert await _ny_id(mem, "Alice") not in await entity_ids(mem)
    second = await mem.datasets.delete_data(dataset_id=b.dataset_id, data_id=b.data_id)
    assert second.kept_shared == [] and ny not in await entity_ids(mem)
    assert (await mem.doctor()).consistent


async def test_shared_file_and_by_reference_file(mem: Memory, tmp_path) -> None:
    one = await mem.add("a", text="Same words in two places.")
    two = await mem.add("b", text="Same words in two places.")
    assert two.deduplicated and len(list(mem.engine.files.hashes())) == 1
    report = await mem.datasets.delete_data(dataset_id=one.dataset_id, data_id=one.data_id)
    assert report.files_deleted == 0 and report.files_kept == 1
    assert len(list(mem.engine.files.hashes())) == 1
    report = await mem.datasets.delete_data(dataset_id=two.dataset_id, data_id=two.data_id)
    assert report.files_deleted == 1 and list(mem.engine.files.hashes()) == []

    outside = tmp_path / "mine.txt"
    outside.write_text("Carol keeps this file herself.")
    ref = await mem.add("c", path=str(outside), copy=False)
    assert list(mem.engine.files.hashes()) == []
    report = await mem.datasets.empty_dataset(dataset_id=ref.dataset_id)
    assert report.files_deleted == 0 and outside.read_text() == "Carol keeps this file herself."


async def test_dry_runs_change_no_store(mem: Memory) -> None:
    a = await mem.add("notes", text="Alice moved to New York.")
    await mem.add("trips", text="Bob flew to New York.")
    before = await snapshot(mem)
    await mem.datasets.delete_data(dataset_id=a.dataset_id, data_id=a.data_id, dry_run=True)
    await mem.datasets.empty_dataset(dataset_id=a.dataset_id, dry_run=True)
    await mem.datasets.delete_all(dry_run=True)
    await mem.forget(everything=True, memory_only=True, dry_run=True)
    await mem.prune.prune(files=True, graph=True, vector=True, metadata=True, cache=True, dry_run=True)
    assert await snapshot(mem) == before


async def test_after_delete_no_store_returns_the_item(mem: Memory) -> None:
    a = await mem.add("notes", text="Zanzibar quokka memo.")
    keep = await mem.add("notes", text="Unrelated grocery list.")
    await mem.datasets.delete_data(dataset_id=a.dataset_id, data_id=a.data_id)
    snap = await snapshot(mem)
    assert a.data_id not in str(snap["tables"]) and a.data_id not in snap["graph"].items
    assert all(h.data_id != a.data_id for h in await mem.search("Zanzibar quokka"))
    assert [i.id for i in await mem.datasets.list_data(a.dataset_id)] == [keep.data_id]
    with pytest.raises(NotFound):
        await mem.datasets.delete_data(dataset_id=a.dataset_id, data_id=a.data_id)  # twice is an error


async def test_bad_ids_delete_nothing(mem: Memory) -> None:
    a = await mem.add("notes", text="Alice moved to New York.")
    before = await snapshot(mem)
    for bad in ["x' OR '1'='1", "*", "../..", "", "0" * 36]:
        with pytest.raises((InvalidInput, NotFound)):
            await mem.datasets.delete_data(dataset_id=a.dataset_id, data_id=bad)
    with pytest.raises(NotFound):
        await mem.datasets.delete_data(dataset_id=a.dataset_id, data_id="123e4567-e89b-12d3-a456-426614174000")
    with pytest.raises(NotFound):
        await mem.datasets.empty_dataset(dataset_id="no-such-dataset")
    assert await snapshot(mem) == before


async def test_permissions(mem: Memory) -> None:
    mine = await mem.add("alice-notes", text="Alice's own note.")
    bob = mem.as_user("bob")
    bobs = await bob.add("bob-notes", text="Bob's own note.")
    # a stranger sees nothing and deletes nothing
    with pytest.raises(NotFound):
        await bob.datasets.delete_data(dataset_id=mine.dataset_id, data_id=mine.data_id)
    await mem.grant("bob", mine.dataset_id, "read")
    assert {d.name: d.can_delete for d in await bob.datasets.list_datasets()} == {
        "alice-notes": False,
        "bob-notes": True,
    }
    with pytest.raises(PermissionDenied):
        await bob.datasets.delete_data(dataset_id=mine.dataset_id, data_id=mine.data_id)
    with pytest.raises(PermissionDenied):
        await bob.datasets.empty_dataset(dataset_id=mine.dataset_id)
    report = await bob.datasets.delete_all()
    assert report.datasets == 1 and report.items == 1  # only bob's own
    assert [d.name for d in await mem.datasets.list_datasets()] == ["alice-notes"]
    await mem.grant("bob", mine.dataset_id, "delete")
    assert (await bob.datasets.delete_data(dataset_id=mine.dataset_id, data_id=mine.data_id)).items == 1
    await mem.revoke("bob", mine.dataset_id, "delete")
    again = await mem.add("alice-notes", text="Another note.")
    with pytest.raises(PermissionDenied):
        await bob.forget(data_id=again.data_id)
    assert bobs.dataset_id not in {d.id for d in await mem.datasets.list_datasets()}


async def test_partial_prune_then_rebuild(mem: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    from memsweep.storage.ingest import rebuild

    await mem.add("notes", text="Alice moved to New York.", entities=[{"name": "Alice"}, {"name": "New York"}])
    await mem.add("notes", text="Bob flew to Paris with Alice.", entities=[{"name": "Bob"}, {"name": "Alice"}])
    report = await mem.prune.prune_system(graph=True, vector=True, metadata=False, cache=False)
    assert report.layers["vector"].vectors == 2 and report.layers["graph"].nodes_deleted == 7  # 2 items, 2 chunks, 3
    assert mem.engine.vectors.count() == 0
    assert len(await mem.datasets.list_data("notes")) == 2
    monkeypatch.setattr(rebuild, "BATCH", 1)  # "Alice" in two batches is still one node
    rebuilt = await mem.rebuild()
    assert rebuilt.items == 2 and rebuilt.vectors == 2 and rebuilt.nodes == 7
    assert (await mem.doctor()).consistent
    assert (await mem.search("Paris"))[0].snippet == "Bob flew to Paris with Alice."


async def test_prune_metadata_leaves_files_for_doctor(mem: Memory) -> None:
    await mem.add("notes", text="Alice moved to New York.")
    report = await mem.prune.prune_system(metadata=True)
    assert report.layers["metadata"].items == 1
    assert await mem.datasets.list_datasets() == []
    doc = await mem.doctor()
    assert [f.kind for f in doc.findings] == ["unreferenced_file"]
    assert (await mem.doctor(repair=True)).consistent


async def test_forget_memory_only_keeps_metadata(mem: Memory) -> None:
    a = await mem.add("notes", text="Alice moved to New York.")
    report = await mem.forget(dataset="notes", memory_only=True)
    assert report.items == 0 and report.vectors == 1
    assert [i.id for i in await mem.datasets.list_data("notes")] == [a.data_id]
    assert mem.engine.vectors.count() == 0
    assert (await mem.doctor()).consistent
    await mem.rebuild()
    assert mem.engine.vectors.count() == 1


async def test_limits_and_bad_input(mem: Memory, tmp_path) -> None:
    with pytest.raises(InvalidInput):
        await mem.add("notes", text="x" * 1_000_001)
    with pytest.raises(InvalidInput):
        await mem.add("notes", text="a", path="/etc/hostname")
    with pytest.raises(InvalidInput):
        await mem.add("notes", path="../../etc/passwd")
    with pytest.raises(InvalidInput):
        await mem.add("my notes\x01", text="ok")
    with pytest.raises(InvalidInput):
        await mem.add("notes", text="bad\x00text")
    assert await mem.datasets.list_datasets() == []


async def test_add_many_is_one_batch_with_shared_entities(mem: Memory) -> None:
    batch = [
        {"dataset": f"d{i % 2}", "text": f"Item {i}: Alice saw Paris.", "entities": [{"name": "Alice"}]}
        for i in range(6)
    ]
    batch.append({"dataset": "d0", "text": "Item 0: Alice saw Paris."})  # identical content → one file
    results = await mem.add_many(batch)
    assert len(results) == 7 and results[-1].deduplicated
    assert len(list(mem.engine.files.hashes())) == 6
    assert sum(d.items for d in await mem.datasets.list_datasets()) == 7
    assert (await mem.doctor()).consistent
    with pytest.raises(InvalidInput):
        await mem.add_many([{"dataset": "d0", "text": "ok"}, {"dataset": "d0", "text": ""}])
    assert sum(d.items for d in await mem.datasets.list_datasets()) == 7  # a bad item stores nothing


async def test_writer_can_add_but_not_delete(mem: Memory) -> None:
    mine = await mem.add("shared", text="Alice's note.")
    carol = mem.as_user("carol")
    with pytest.raises(NotFound):
        await carol.add(mine.dataset_id, text="Carol tries to write.")
    await mem.grant("carol", mine.dataset_id, "read")
    with pytest.raises(PermissionDenied):
        await carol.add(mine.dataset_id, text="Carol tries to write.")
    await mem.grant("carol", mine.dataset_id, "write")
    added = await carol.add(mine.dataset_id, text="Carol wrote this.")
    for attempt in (
        carol.datasets.delete_data(dataset_id=mine.dataset_id, data_id=added.data_id),
        carol.datasets.empty_dataset(dataset_id=mine.dataset_id),
        carol.forget(data_id=added.data_id),
        carol.forget(dataset=mine.dataset_id),
    ):
        with pytest.raises(PermissionDenied):
            await attempt
    assert (await carol.datasets.delete_all()).items == 0  # nothing carol may delete
    assert len(await mem.datasets.list_data("shared")) == 2


DELETING_PATHS = ["delete_data", "forget_item", "empty_dataset", "forget_dataset", "delete_all", "forget_everything"]


@pytest.mark.parametrize("permission", ["read", "write", "delete", "share"])
@pytest.mark.parametrize("path", DELETING_PATHS)
async def test_one_rule_for_every_deleting_path(mem: Memory, permission: str, path: str) -> None:
    """A `delete` grant works through every deleting path; no other single permission deletes anything."""
    from memsweep.errors import PermissionDenied

    item = await mem.add("shared", text="Alice's note about Oslo.", entities=[{"name": "Oslo"}])
    await mem.grant("bob", item.dataset_id, permission)
    bob = mem.as_user("bob")
    listed = {d.id: d for d in await bob.datasets.list_datasets()}
    assert listed[item.dataset_id].can_delete == (permission == "delete")
    assert listed[item.dataset_id].can_read == (permission == "read")

    async def attempt() -> object:
        ds = item.dataset_id
        if path == "delete_data":
            return await bob.datasets.delete_data(dataset_id=ds, data_id=item.data_id)
        if path == "forget_item":
            return await bob.forget(data_id=item.data_id)
        if path == "empty_dataset":
            return await bob.datasets.empty_dataset(dataset_id=ds)
        if path == "forget_dataset":
            return await bob.forget(dataset=ds)
        if path == "delete_all":
            return await bob.datasets.delete_all()
        return await bob.forget(everything=True)

    if permission == "delete":
        assert (await attempt()).items == 1
        assert len(await mem.search("Oslo")) == 0
    elif path in ("delete_all", "forget_everything"):
        assert (await attempt()).items == 0  # nothing bob may delete: an empty plan
        assert len(await mem.datasets.list_data(item.dataset_id)) == 1
    else:
        with pytest.raises(PermissionDenied, match="'delete' permission"):
            await attempt()
        assert len(await mem.datasets.list_data(item.dataset_id)) == 1


@pytest.mark.parametrize("how", ["memory_only", "prune"])
async def test_forgotten_from_memory_is_found_by_no_search(mem: Memory, how: str) -> None:
    item = await mem.add("notes", text="Alice moved to Reykjavik.", entities=[{"name": "Reykjavik"}])
    assert [h.data_id for h in await mem.search("Reykjavik")] == [item.data_id]
    if how == "memory_only":
        await mem.forget(data_id=item.data_id, memory_only=True)
    else:
        await mem.prune.prune(graph=True, vector=True)
    for query in ("Reykjavik", "Alice moved", "reykjavik"):
        assert await mem.search(query) == [], query
    assert len(await mem.datasets.list_data("notes")) == 1  # metadata kept for the rebuild
    await mem.rebuild()
    assert [h.data_id for h in await mem.search("Reykjavik")] == [item.data_id]


async def test_owners_cannot_probe_each_others_content(mem: Memory) -> None:
    """deduplicated, files_kept and bytes_freed never depend on another owner's data (invariant 9)."""
    text = "Alice's exact private sentence about the merger."
    mine = await mem.add("notes", text=text)
    bob = mem.as_user("bob")
    theirs = await bob.add("guess", text=text)
    assert not theirs.deduplicated
    preview = await bob.datasets.delete_data(dataset_id="guess", data_id=theirs.data_id, dry_run=True)
    assert (preview.files_deleted, preview.files_kept) == (1, 0) and preview.bytes_freed == len(text)
    await bob.datasets.delete_data(dataset_id="guess", data_id=theirs.data_id)
    assert (await mem.doctor()).consistent
    assert [i.id for i in await mem.datasets.list_data("notes")] == [mine.data_id]
    # within one owner, identical content is still stored once
    again = await mem.add("more", text=text)
    assert again.deduplicated
    shared = await mem.datasets.delete_data(dataset_id="more", data_id=again.data_id, dry_run=True)
    assert (shared.files_deleted, shared.files_kept) == (0, 1)


async def test_a_shared_entity_forgets_what_a_deleted_item_said(mem: Memory) -> None:
    from memsweep.storage.stores.schema import entities
    from sqlalchemy import select

    from tests.test_erasure import _scan

    first = await mem.add(
        "deals",
        text="ACME HOLDINGS is the target.",
        entities=[{"name": "ACME HOLDINGS", "type": "target-qx", "description": "Confidential: codename QXBLUEHERON"}],
    )
    await mem.add("news", text="Acme Holdings reported results.", entities=[{"name": "Acme Holdings"}])
    report = await mem.datasets.delete_data(dataset_id="deals", data_id=first.data_id)
    assert report.nodes_kept_shared == 1
    async with mem.engine.meta.read() as conn:
        row = (await conn.execute(select(entities.c.name, entities.c.type, entities.c.description))).one()
    assert tuple(row) == ("Acme Holdings", None, None)
    for marker in (b"QXBLUEHERON", b"target-qx", b"ACME HOLDINGS"):
        assert _scan(mem.settings.data_dir, marker) == [], marker
    assert _scan(mem.settings.data_dir, b"Acme Holdings")  # positive control: the kept item's spelling


async def test_a_data_directory_and_another_stores_metadata_do_not_mix(settings, tmp_path) -> None:
    """The store id is kept in the metadata and in the data directory; a metadata file copied in from
    another store is refused, with nothing changed (on SQLite the file sits in the directory; the
    PostgreSQL cases are in tests/test_postgres.py)."""
    import shutil

    from memsweep.errors import StoreUnavailable

    if settings.metadata_url:
        pytest.skip("the SQLite layout")
    other = settings.with_(data_dir=tmp_path / "other")
    for s in (settings, other):
        async with Memory(s) as m:
            await m.add("notes", text=f"Kept in {s.data_dir.name}.")
    assert (settings.data_dir / "store-id").read_text() != (other.data_dir / "store-id").read_text()
    shutil.copy(other.data_dir / "metadata.db", settings.data_dir / "metadata.db")
    with pytest.raises(StoreUnavailable, match="Nothing was changed"):
        async with Memory(settings):
            pass


async def test_an_up_to_date_store_opens_and_reads_while_another_process_writes(settings) -> None:
    """Opening a store whose recorded schema fingerprint is current takes no write transaction (it used to
    bring the schema up to date under `BEGIN IMMEDIATE` at every open: 80-90 ms, and a wait behind any
    writer), so a per-call client's server answers a read while another process holds the write lock; a
    changed fingerprint (an older version's store) is brought up to date again."""
    import sqlite3

    import anyio

    if settings.metadata_url:
        pytest.skip("the SQLite layout")
    async with Memory(settings) as mem:
        await mem.add("notes", text="Alice moved to Oslo.")
    writer = sqlite3.connect(settings.data_dir / "metadata.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with anyio.fail_after(10):  # the busy timeout a write transaction would wait for is 30 s
            async with Memory(settings) as mem:
                assert [d.items for d in await mem.datasets.list_datasets()] == [1]
    finally:
        writer.execute("ROLLBACK")
    writer.execute("DROP INDEX ix_data_hash")
    writer.execute("UPDATE state SET value = 'an older schema' WHERE key = 'schema'")
    async with Memory(settings):
        pass
    assert writer.execute("SELECT count(*) FROM sqlite_master WHERE name = 'ix_data_hash'").fetchone()[0] == 1
    writer.close()


async def test_an_erase_certifies_only_the_waiting_receipts_through_an_index(settings) -> None:
    """Each erase marks the receipts still waiting for it; an index of those keeps that from reading every
    receipt the store ever wrote. A store made before the index gains it at open, and receipts already
    certified keep their time."""
    import sqlite3

    from memsweep.storage.deletion.receipts import _MARK_ERASED
    from sqlalchemy.dialects import sqlite

    if settings.metadata_url:
        pytest.skip("the SQLite layout")
    async with Memory(settings) as mem:
        first = await mem.add("a", text="One.")
        second = await mem.add("a", text="Two.")
        await mem.datasets.delete_data(dataset_id="a", data_id=first.data_id)
    db = sqlite3.connect(settings.data_dir / "metadata.db")
    db.execute("DROP INDEX ix_receipts_pending")
    db.execute("DELETE FROM state WHERE key = 'schema'")  # as a version before the index left it
    db.commit()
    (certified,) = db.execute("SELECT erased_at FROM receipts").fetchone()
    db.close()
    async with Memory(settings) as mem:
        report = await mem.datasets.delete_data(dataset_id="a", data_id=second.data_id, erase=False)
        assert report.receipt_id
    db = sqlite3.connect(settings.data_dir / "metadata.db")
    assert db.execute("SELECT count(*) FROM receipts WHERE erased_at IS NOT NULL").fetchone()[0] == 2  # the stop
    assert db.execute("SELECT count(*) FROM receipts WHERE erased_at = ?", (certified,)).fetchone()[0] == 1
    update = str(_MARK_ERASED.values(erased_at="x").compile(dialect=sqlite.dialect()))  # one parameter
    plan = " ".join(str(r) for r in db.execute(f"EXPLAIN QUERY PLAN {update}", ("x",)))
    db.close()
    assert "USING INDEX ix_receipts_pending" in plan, plan  # a probe of the waiting ones, not a scan


async def test_an_older_store_gains_the_first_item_indexes_and_rederives_the_same(settings) -> None:
    """A store made before `data_entities.created_at` (dropped here with its indexes) is brought up to date
    at open (column backfilled from the items, partial indexes made), and a shared entity then shows what
    its oldest remaining item says: the second-oldest spelling when the oldest goes."""
    import sqlite3

    from memsweep.storage.stores.schema import entities
    from sqlalchemy import select

    if settings.metadata_url:
        pytest.skip("the SQLite layout")
    async with Memory(settings) as mem:
        oldest = await mem.add("a", text="Zeta Corp one.", entities=[{"name": "Zeta Corp", "type": "org"}])
        await mem.add("b", text="ZETA CORP two.", entities=[{"name": "ZETA CORP", "description": "second"}])
        await mem.add("c", text="zeta corp three.", entities=[{"name": "zeta corp", "type": "company"}])
    db = sqlite3.connect(settings.data_dir / "metadata.db")
    for field in ("name", "type", "description"):
        db.execute(f"DROP INDEX ix_data_entities_first_{field}")
    db.execute("ALTER TABLE data_entities DROP COLUMN created_at")
    db.execute("DELETE FROM state WHERE key = 'schema'")  # such a version recorded no schema fingerprint
    db.commit()
    db.close()
    async with Memory(settings) as mem:
        await mem.datasets.delete_data(dataset_id="a", data_id=oldest.data_id)
        async with mem.engine.meta.read() as conn:
            row = (await conn.execute(select(entities.c.name, entities.c.type, entities.c.description))).one()
        assert tuple(row) == ("ZETA CORP", "company", "second")
    db = sqlite3.connect(settings.data_dir / "metadata.db")
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {f"ix_data_entities_first_{f}" for f in ("name", "type", "description")} <= names
    assert db.execute("SELECT count(*) FROM data_entities WHERE created_at IS NULL").fetchone()[0] == 0
    plan = " ".join(
        str(r)
        for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT type FROM data_entities WHERE entity_id = 'x' AND type IS NOT NULL "
            "ORDER BY created_at, data_id LIMIT 1"
        )
    )
    assert "ix_data_entities_first_type" in plan and "TEMP B-TREE" not in plan  # an index probe, no sort
    db.close()


EVERY_PATH = """
import asyncio, json, sys
from pathlib import Path
from memsweep.api import Memory
from memsweep.config import Settings

async def main():
    settings = Settings(data_dir=Path(sys.argv[1]), user="alice")
    async with Memory(settings) as mem:  # a new store: its open runs the recovery steps
        a = await mem.add("notes", text="Alice moved to Oslo.", entities=[{"name": "Alice"}, {"name": "Oslo"}])
        b = await mem.add("trips", text="Alice flew to Rome.", entities=[{"name": "Alice"}])
        await mem.add("work", text="Bob runs Atlas.", entities=[{"name": "Bob"}])
        await mem.search("Alice in Oslo")
        await mem.datasets.list_datasets()
        await mem.datasets.list_data_page(a.dataset_id)
        await mem.grant("bob", a.dataset_id, "read")
        await mem.datasets.delete_data(dataset_id=a.dataset_id, data_id=a.data_id)
        await mem.datasets.delete_data(dataset_id=b.dataset_id, data_id=b.data_id, erase=False)
        await mem.forget(entity="bob", dry_run=True)
        await mem.forget(query="Atlas", dry_run=True)
        await mem.prune.prune_system(graph=True, vector=False, metadata=False, cache=False)
        rebuilt = await mem.rebuild()
        report = await mem.doctor()
        await mem.audit()
    print(json.dumps({"rebuilt": rebuilt.items, "consistent": report.consistent, "modules": sorted(sys.modules)}))

asyncio.run(main())
"""


async def test_no_path_loads_the_asyncio_layer(tmp_path, metadata_backend: str | None) -> None:
    """Every path runs its transactions on a plain driver connection (MetadataStore.call): the open of a new
    store with its recovery steps, adds, search, lists, a grant, deletes keeping and erasing, previews,
    prune, rebuild, doctor, the audit log. SQLAlchemy's asyncio layer, made on first use, is never made:
    imported on the event loop it stalled an open for 92 ms, and it costs a process 8 MB."""
    import json
    import subprocess
    import sys

    import anyio.to_thread

    argv = [sys.executable, "-c", EVERY_PATH, str(tmp_path / "store")]
    proc = await anyio.to_thread.run_sync(lambda: subprocess.run(argv, capture_output=True, text=True, timeout=180))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["rebuilt"] == 1 and out["consistent"]  # the control: the paths ran
    loaded = {"sqlalchemy.ext.asyncio", "sqlalchemy.orm", "aiosqlite", "greenlet"} & set(out["modules"])
    assert not loaded, sorted(loaded)
