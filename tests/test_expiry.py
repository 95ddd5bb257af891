"""Retention that ends in erasure (issue 15.1), on real stores with an injected clock (no sleeping): an item
past its expiry is invisible at once, the sweep deletes it with erase and audits it as `expired`, a hold
stops expiry and every delete, and a dry run with `within` lists exactly what later goes."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from memsweep.api import Memory
from memsweep.config import Settings
from memsweep.errors import InvalidInput, PermissionDenied

from tests.test_erasure import _scan, _vector_bytes

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


async def test_expired_is_invisible_then_swept_with_erase(settings: Settings) -> None:
    clock = Clock()
    async with Memory(settings) as mem:
        mem.engine.clock = clock
        for i in range(20):
            await mem.add("filler", text=f"Filler memory {i} about Zurich.")
        short = await mem.add("notes", text="Parking code QXEXPIRES9 for today.", ttl_days=1)
        kept = await mem.add("notes", text="Keep QXSTAYS7 around.", entities=[{"name": "Zurich"}])
        vectors = await _vector_bytes(mem, short.data_id)
        items = await mem.datasets.list_data("notes")
        assert {i.id for i in items} == {short.data_id, kept.data_id}
        assert next(i for i in items if i.id == short.data_id).expires_at is not None
        clock.advance(days=1, seconds=1)
        # invisible at once, before any sweep
        assert [i.id for i in await mem.datasets.list_data("notes")] == [kept.data_id]
        assert next(d.items for d in await mem.datasets.list_datasets() if d.name == "notes") == 1
        assert short.data_id not in {h.data_id for h in await mem.search("Parking code QXEXPIRES9")}
        report = await mem.expire()
        assert report.executed and report.items == 1 and "Erased from disk" in report.message
        assert (await mem.audit(1))[0].op == "expired"
        assert _scan(settings.data_dir, b"QXEXPIRES9") == []
        for vec in vectors:
            assert _scan(settings.data_dir, vec) == []
        assert _scan(settings.data_dir, b"QXSTAYS7")  # positive control
        assert (await mem.doctor()).consistent


async def test_a_hold_stops_expiry_and_every_delete(settings: Settings) -> None:
    clock = Clock()
    async with Memory(settings) as mem:
        mem.engine.clock = clock
        item = await mem.add("legal", text="Contract draft for the case.", ttl_days=2)
        await mem.hold("legal")
        assert next(d for d in await mem.datasets.list_datasets()).on_hold
        clock.advance(days=3)
        assert (await mem.expire()).items == 0  # held: nothing expires ...
        for attempt in (
            mem.datasets.delete_data(dataset_id="legal", data_id=item.data_id),
            mem.datasets.empty_dataset(dataset_id="legal"),
            mem.forget(dataset="legal"),
            mem.datasets.delete_all(),
        ):
            with pytest.raises(PermissionDenied, match="'legal' is on hold"):
                await attempt
        await mem.hold("legal", on=False)
        assert (await mem.expire()).items == 1  # released: the expired item goes


async def test_dry_run_within_lists_exactly_what_later_goes(settings: Settings) -> None:
    clock = Clock()
    async with Memory(settings) as mem:
        mem.engine.clock = clock
        soon = {(await mem.add("a", text=f"Soon {i}.", ttl_days=3)).data_id for i in range(3)}
        await mem.add("a", text="Later.", ttl_days=10)
        await mem.add("b", text="Never.")
        await mem.set_retention("b", 5)
        by_retention = (await mem.add("b", text="By the dataset's retention.")).data_id
        preview = await mem.expire(dry_run=True, within_days=7)
        assert {c.data_id for c in preview.candidates} == soon | {by_retention} and not preview.executed
        assert (await mem.expire(dry_run=True)).items == 0  # nothing has expired yet
        clock.advance(days=7)
        gone = await mem.expire()
        assert gone.items == 4
        left = {i.name for d in ("a", "b") for i in await mem.datasets.list_data(d)}
        assert left == {"Later.", "Never."}
        with pytest.raises(InvalidInput, match="already past"):
            await mem.add("a", text="x", expires_at=(clock.now - timedelta(hours=1)).isoformat())


def test_retention_hold_and_expire_on_the_command_line(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(tmp_path / "d"), MEMSWEEP_USER="alice")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "memsweep", *args], env=env, capture_output=True, text=True)

    assert run("add", "notes", "A note.").returncode == 0
    assert run("retention", "notes", "30d").returncode == 0
    assert run("add", "notes", "Another note.").returncode == 0
    listed = json.loads(run("datasets", "--json").stdout)[0]
    assert listed["retention_days"] == 30
    dry = json.loads(run("expire", "--dry-run", "--within", "31d", "--json").stdout)
    assert dry["items"] == 1 and not dry["executed"]
    assert run("hold", "notes").returncode == 0
    refused = run("rm", "notes", "--yes")
    assert refused.returncode == 1 and "on hold" in refused.stderr
    assert run("release", "notes").returncode == 0 and run("retention", "notes", "none").returncode == 0
    assert run("retention", "notes", "soon").returncode == 2
