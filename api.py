"""The Python API (INTERFACE.md, "Python API"): shaped like the seed's calls, for programs that have
already decided (no confirmation step; prune works without the server's opt-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memsweep.config import Settings
from memsweep.errors import InvalidInput
from memsweep.results import (
    AddResult,
    AuditEntry,
    DataItem,
    DataPage,
    DatasetInfo,
    DeletionReport,
    DoctorReport,
    ForgetReport,
    PruneReport,
    RebuildReport,
    Receipt,
    SearchHit,
)
from memsweep.storage.admin import maintenance, queries
from memsweep.storage.deletion import deleter
from memsweep.storage.deletion.deleter import Progress
from memsweep.storage.deletion.report import build_report, done_message, preview_message
from memsweep.storage.deletion.targets import Plan, Target, forget_target, prune_target
from memsweep.storage.engine import Engine
from memsweep.storage.ingest import adding as ingest
from memsweep.storage.ingest import rebuild
from memsweep.storage.lifecycle import open_engine

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["Memory", "forget_target", "prune_target"]


class Memory:
    """`async with Memory.open(data_dir) as mem: ...`"""

    def __init__(self, settings: Settings, engine: Engine | None = None, *, remote: bool = False) -> None:
        self.settings = settings
        self.user = settings.user
        # A remote caller (HTTP) names no server path except inside MEMSWEEP_ALLOWED_PATHS.
        self.remote = remote
        self._engine = engine
        self.datasets = _Datasets(self)
        self.prune = _Prune(self)

    @classmethod
    def open(cls, data_dir: str | Path | None = None, *, user: str = "default", **settings: Any) -> Memory:
        base = Settings(**settings) if settings else Settings()
        if data_dir is not None:
            base = base.with_(data_dir=Path(data_dir))
        return cls(base.with_(user=user))

    def as_user(self, user: str, *, remote: bool = False) -> Memory:
        """The same open engine, acting for another user (the server maps each caller this way)."""
        return Memory(self.settings.with_(user=user), self.engine, remote=remote)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("Memory is not open; use `async with Memory.open(...) as mem:`")
        return self._engine

    async def __aenter__(self) -> Memory:
        self._engine = await open_engine(self.settings)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.close()

    # -- memories --------------------------------------------------------------------------------------
    async def add(
        self,
        dataset: str,
        text: str | None = None,
        *,
        path: str | None = None,
        name: str | None = None,
        entities: list[dict[str, Any]] | None = None,
        relations: list[dict[str, Any]] | None = None,
        copy: bool = True,
        expires_at: str | datetime | None = None,
        ttl_days: float | None = None,
    ) -> AddResult:
        return await ingest.add(
            self.engine, self.user, dataset, text=text, path=path, name=name,
            entity_list=entities, relation_list=relations, copy=copy, remote=self.remote,
            expires_at=expires_at, ttl_days=ttl_days,
        )  # fmt: skip

    async def add_many(self, items: list[dict[str, Any]]) -> list[AddResult]:
        """Add a batch (up to 1,000) in one transaction per store: each dict takes `add`'s arguments."""

        def prepare_all() -> list[ingest.Prepared]:
            return [
                ingest.prepare(
                    self.engine,
                    i.get("dataset", ""),
                    text=i.get("text"),
                    path=i.get("path"),
                    name=i.get("name"),
                    entity_list=i.get("entities"),
                    relation_list=i.get("relations"),
                    copy=i.get("copy", True),
                    expires_at=i.get("expires_at"),
                    ttl_days=i.get("ttl_days"),
                    remote=self.remote,
                )
                for i in items
            ]

        batch = await self.engine.run(prepare_all)
        return await ingest.add_many(self.engine, self.user, batch)

    async def search(self, query: str, dataset: str | None = None, limit: int = 10) -> list[SearchHit]:
        return await queries.search(self.engine, self.user, query, dataset, limit)

    async def rebuild(self) -> RebuildReport:
        return await rebuild.rebuild(self.engine)

    async def doctor(self, repair: bool = False) -> DoctorReport:
        return await maintenance.doctor(self.engine, repair)

    async def audit(self, limit: int = 100) -> list[AuditEntry]:
        return await queries.audit_log(self.engine, None, limit)

    async def dataset_id(self, ref: str) -> str | None:
        """The id of a dataset the caller can see, by id or name (None when there is none)."""
        from memsweep.storage import access

        if not isinstance(ref, str) or not ref.strip():
            return None
        user = self.user

        def find(conn: Connection) -> str | None:
            ds = access.find_dataset(conn, access.user_id(conn, user, create=False), ref.strip())
            return ds.id if ds else None

        return await self.engine.meta.call(find)

    async def grant(self, user: str, dataset_id: str, permission: str) -> None:
        """Operator call: give `user` a permission on a dataset (not exposed as a tool)."""
        await self._set_permission(user, dataset_id, permission, allow=True)

    async def revoke(self, user: str, dataset_id: str, permission: str) -> None:
        await self._set_permission(user, dataset_id, permission, allow=False)

    async def _set_permission(self, user: str, dataset_id: str, permission: str, *, allow: bool) -> None:
        from memsweep.storage import access
        from memsweep.storage.ids import parse_uuid

        ds = parse_uuid(dataset_id, "dataset_id")
        await self.engine.meta.call(lambda conn: access.grant(conn, user, ds, permission, allow=allow), write=True)

    # -- the delete path -------------------------------------------------------------------------------
    async def plan(self, target: Target) -> Plan:
        return await deleter.make_plan(self.engine, self.user, target)

    async def run(
        self,
        target: Target,
        *,
        dry_run: bool = False,
        erase: bool = True,
        expected_fingerprint: str | None = None,
        progress: Progress | None = None,
        verify: bool = False,
    ) -> DeletionReport:
        if dry_run:
            plan = await self.plan(target)
            return build_report(plan, dry_run=True, executed=False, message=preview_message(plan))
        done = await deleter.execute(
            self.engine,
            self.user,
            target,
            erase=erase,
            expected_fingerprint=expected_fingerprint,
            progress=progress,
            verify=verify,
        )
        report = build_report(
            done.plan,
            dry_run=False,
            executed=True,
            message=done_message(done.plan, erase, done.erased, self.engine.meta.erase_limits),
        )
        extra: dict[str, Any] = {"receipt_id": done.receipt_id}
        if done.scan is not None:
            extra |= {"verified": True, "files_scanned": done.scan.files, "bytes_scanned": done.scan.bytes,
                      "hits": done.scan.hits}  # fmt: skip
            extra["message"] = report.message + (
                f" Verified: {done.scan.files:,} files ({done.scan.bytes:,} bytes) of the data directory scanned, "
                + (
                    "no deleted text or vector found."
                    if done.scan.hits == 0
                    else f"deleted bytes found in {done.scan.hits} file(s)."
                )
                + (
                    " The metadata database is on PostgreSQL, outside the data directory, and was not scanned."
                    if self.engine.meta.is_postgres
                    else ""
                )
            )
        return report.model_copy(update=extra)

    async def export(
        self,
        *,
        dataset: str | None = None,
        entity: str | None = None,
        data_ids: list[str] | None = None,
        everything: bool = False,
    ) -> AsyncIterator[str]:
        """JSON lines of exactly what `forget` with the same arguments would remove (items with their content,
        entities and relations), streamed; needs `read` on every dataset involved."""
        from memsweep.storage.admin.export import export_lines

        target = forget_target(None, dataset, everything, False, entity, data_ids)
        async for line in export_lines(self.engine, self.user, target):
            yield line

    async def expire(self, *, dry_run: bool = False, within_days: float = 0) -> ForgetReport:
        """Operator call: delete (with erase) every item past its expiry, except in datasets on hold; with
        `dry_run`, what would go by now + `within_days`."""
        from datetime import timedelta

        from memsweep.storage.deletion import expiry

        if dry_run:
            plan = await expiry.preview(self.engine, timedelta(days=within_days))
            return ForgetReport.of(build_report(plan, dry_run=True, executed=False, message=preview_message(plan)))
        done = await expiry.sweep(self.engine)
        report = build_report(
            done.plan,
            dry_run=False,
            executed=True,
            message=done_message(done.plan, True, done.erased, self.engine.meta.erase_limits),
        )
        return ForgetReport.of(report.model_copy(update={"receipt_id": done.receipt_id}))

    async def set_retention(self, dataset: str, days: int | None) -> None:
        """Operator call (never a tool: an agent must not lengthen its own retention)."""
        from memsweep.storage.deletion import expiry

        await self._operate(dataset, lambda conn, ds: expiry.set_retention(conn, ds, days))

    async def hold(self, dataset: str, on: bool = True) -> None:
        """Operator call: put a dataset on hold (nothing of it expires or is deleted) or release it."""
        from memsweep.storage.deletion import expiry

        await self._operate(dataset, lambda conn, ds: expiry.set_hold(conn, ds, on))

    async def _operate(self, dataset: str, change: Any) -> None:
        from memsweep.errors import NotFound
        from memsweep.storage.ids import is_uuid

        ds = dataset.lower() if is_uuid(dataset.lower()) else await self.dataset_id(dataset)
        if ds is None:
            raise NotFound(f"No dataset {dataset!r} visible to {self.user!r}; name another user's by its id.")
        await self.engine.meta.call(change, ds, write=True)

    async def receipt(self, receipt_id: str) -> Receipt:
        """What an executed delete certifies (its report's receipt_id): counts per store, erasure, scan."""
        from memsweep.storage.deletion.receipts import get_receipt

        return await self.engine.meta.call(get_receipt, receipt_id)

    async def forget(
        self,
        data_id: str | None = None,
        dataset: str | None = None,
        everything: bool = False,
        memory_only: bool = False,
        dry_run: bool = False,
        erase: bool = True,
        *,
        verify: bool = False,
        entity: str | None = None,
        data_ids: list[str] | None = None,
        query: str | None = None,
        limit: int = 20,
    ) -> ForgetReport:
        """One item, several (`data_ids`), a subject (`entity`: every item that mentions it), a dataset, or
        everything. `query` only finds candidates (never deletes): pass the ids chosen to `data_ids`."""
        if query is not None:
            if data_id or data_ids or entity or everything:
                raise InvalidInput("`query` only finds candidates; give it alone (with `dataset` to narrow).")
            return await queries.forget_candidates(self.engine, self.user, query, dataset, limit)
        target = forget_target(data_id, dataset, everything, memory_only, entity, data_ids)
        return ForgetReport.of(await self.run(target, dry_run=dry_run, erase=erase, verify=verify))


class _Datasets:
    def __init__(self, mem: Memory) -> None:
        self._m = mem

    async def list_datasets(self) -> list[DatasetInfo]:
        return await queries.list_datasets(self._m.engine, self._m.user)

    async def list_data(self, dataset_id: str) -> list[DataItem]:
        return await queries.list_data(self._m.engine, self._m.user, dataset_id)

    async def list_data_page(self, dataset_id: str, cursor: str | None = None, limit: int = 50) -> DataPage:
        return await queries.list_data_page(self._m.engine, self._m.user, dataset_id, cursor, limit)

    async def delete_data(
        self, dataset_id: str, data_id: str, dry_run: bool = False, erase: bool = True, verify: bool = False
    ) -> DeletionReport:
        target = Target("delete_data", "item", data_id=data_id, dataset=dataset_id)
        return await self._m.run(target, dry_run=dry_run, erase=erase, verify=verify)

    async def empty_dataset(
        self, dataset_id: str, dry_run: bool = False, erase: bool = True, verify: bool = False
    ) -> DeletionReport:
        target = Target("empty_dataset", "dataset", dataset=dataset_id)
        return await self._m.run(target, dry_run=dry_run, erase=erase, verify=verify)

    async def delete_all(self, dry_run: bool = False, erase: bool = True, verify: bool = False) -> DeletionReport:
        return await self._m.run(Target("delete_all", "all"), dry_run=dry_run, erase=erase, verify=verify)


class _Prune:
    def __init__(self, mem: Memory) -> None:
        self._m = mem

    async def prune_data(self, dry_run: bool = False) -> PruneReport:
        return await self.prune(files=True, dry_run=dry_run)

    async def prune_system(
        self,
        graph: bool = True,
        vector: bool = True,
        metadata: bool = False,
        cache: bool = True,
        dry_run: bool = False,
    ) -> PruneReport:
        return await self.prune(graph=graph, vector=vector, metadata=metadata, cache=cache, dry_run=dry_run)

    async def prune(
        self,
        files: bool = False,
        graph: bool = False,
        vector: bool = False,
        metadata: bool = False,
        cache: bool = False,
        dry_run: bool = False,
    ) -> PruneReport:
        report = await self._m.run(prune_target(files, graph, vector, metadata, cache), dry_run=dry_run)
        assert isinstance(report, PruneReport)
        return report
