"""Confirmation tokens for guarded tools (INTERFACE.md, "The guard"; DESIGN.md invariant 12).

A token is random, single-use, expires (5 minutes by default) and is bound to the caller, the tool, the
target arguments (dataset resolved to its id, prune layers, `erase`) and the plan's fingerprint. Tokens
live in the metadata store, hashed, with their binding: a preview made by one `memsweep serve` process can
be confirmed in another (clients such as the Inspector's CLI start a server per call) or after a restart.
Single use is enforced there: the one `UPDATE … WHERE used_at IS NULL` that spends a token succeeds once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from memsweep.errors import ConfirmationRequired

if TYPE_CHECKING:  # the writes below run in the engine process: the server's side never loads SQLAlchemy
    from memsweep.storage.stores.metadata import MetadataStore
    from sqlalchemy import Connection

# Spent and expired tokens are kept this long (so a late retry is told "already used", not "unknown").
KEEP_SPENT = timedelta(days=1)


@dataclass(frozen=True)
class Binding:
    user: str
    tool: str
    args: str
    fingerprint: str
    expires: datetime


def args_key(**target: object) -> str:
    return json.dumps(target, sort_keys=True, default=str)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Guard:
    def __init__(self, ttl_seconds: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl_seconds
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def issue(
        self, meta: MetadataStore, user: str, tool: str, args: str, fingerprint: str
    ) -> tuple[str, datetime]:
        token = "ms_" + secrets.token_urlsafe(24)
        now = self._now()
        expires = now + timedelta(seconds=self.ttl)
        row = {"token_hash": _hash(token), "user_name": user, "tool": tool, "args": args,
               "fingerprint": fingerprint, "expires_at": expires}  # fmt: skip
        await meta.call(partial(_insert, row, now - KEEP_SPENT), write=True)
        return token, expires

    async def spend(self, meta: MetadataStore, token: str, user: str, tool: str, args: str) -> Binding:
        """Use up a token for this exact call and return its binding, or raise `ConfirmationRequired` saying
        why not (nothing is deleted). Spent by the call that presents it, whether it runs or finds the plan
        changed (then a fresh preview comes back with a new token)."""
        if not isinstance(token, str) or len(token) > 200 or not token.startswith("ms_"):
            raise ConfirmationRequired(_REDO.format("is not a confirm_token this server issued"))
        return await meta.call(partial(_spend, _hash(token), user, tool, args, self._now()), write=True)


# The two writes are module functions bound with `partial`, not closures: the server runs the engine in
# its own process (server/engine_process.py) and sends them there, pickled; they import what they use there.
def _insert(row: dict[str, object], forget_before: datetime, conn: Connection) -> None:
    from memsweep.storage.stores.schema import confirm_tokens
    from sqlalchemy import delete

    conn.execute(delete(confirm_tokens).where(confirm_tokens.c.expires_at < forget_before))
    conn.execute(confirm_tokens.insert().values(**row))


def _spend(key: str, user: str, tool: str, args: str, now: datetime, conn: Connection) -> Binding:
    from memsweep.storage.stores.schema import confirm_tokens
    from sqlalchemy import select, update

    row = conn.execute(select(confirm_tokens).where(confirm_tokens.c.token_hash == key)).first()
    if row is None or row.user_name != user:
        raise ConfirmationRequired(_REDO.format("is unknown"))
    if row.used_at is not None:
        raise ConfirmationRequired(_REDO.format("was already used"))
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= now:
        raise ConfirmationRequired(_REDO.format("has expired"))
    if row.tool != tool or row.args != args:
        raise ConfirmationRequired(_REDO.format(_difference(row.tool, row.args, tool, args)))
    spent = conn.execute(
        update(confirm_tokens)
        .where(confirm_tokens.c.token_hash == key, confirm_tokens.c.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # another process spent it between our read and this write
        raise ConfirmationRequired(_REDO.format("was already used"))
    return Binding(row.user_name, row.tool, row.args, row.fingerprint, expires)


def _difference(issued_tool: str, issued_args: str, tool: str, args: str) -> str:
    """What differs between the call a token was issued for and this one, in the tool's argument names."""
    if issued_tool != tool:
        return f"was issued for {issued_tool}, not {tool}"
    before, now = json.loads(issued_args), json.loads(args)
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    names = {"dataset": "dataset", "layers": "the prune layers", "erase": "erase", "everything": "everything",
             "memory_only": "memory_only"}  # fmt: skip
    shown = ", ".join(names.get(k, k) for k in changed) or "its arguments"
    return f"was issued for the same tool with a different {shown}"


_REDO = (
    "The confirm_token {}. Nothing was deleted. Call the same tool with dry_run=true to see the plan and get "
    "a fresh token, then call it again with the same arguments and that token."
)
