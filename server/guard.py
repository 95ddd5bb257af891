"""Confirmation tokens for guarded tools (INTERFACE.md, "The guard").

A token is random, single-use (used up only by the call that executes), expires (5 minutes by default)
and is bound to the caller, the tool, the target arguments (dataset resolved to its id, prune layers,
`erase`) and the plan's fingerprint. Tokens live in memory: a restarted server has none, so a preview
from before a restart must be redone (safe by construction).
"""

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from memsweep.errors import ConfirmationRequired


@dataclass(frozen=True)
class Binding:
    user: str
    tool: str
    args: str
    fingerprint: str
    expires: float


def args_key(**target: object) -> str:
    return json.dumps(target, sort_keys=True, default=str)


class Guard:
    def __init__(self, ttl_seconds: float = 300.0, clock=time.time) -> None:  # type: ignore[no-untyped-def]
        self.ttl = ttl_seconds
        self._clock = clock
        self._tokens: dict[str, Binding] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def issue(self, user: str, tool: str, args: str, fingerprint: str) -> tuple[str, datetime]:
        token = "ms_" + secrets.token_urlsafe(24)
        expires = self._clock() + self.ttl
        with self._lock:
            now = self._clock()
            self._tokens = {k: b for k, b in self._tokens.items() if b.expires > now}
            self._tokens[self._key(token)] = Binding(user, tool, args, fingerprint, expires)
        return token, datetime.fromtimestamp(expires, UTC)

    def check(self, token: str, user: str, tool: str, args: str) -> Binding:
        """The binding of a usable token, or `ConfirmationRequired` saying why not (nothing is deleted)."""
        if not isinstance(token, str) or len(token) > 200:
            raise ConfirmationRequired(_REDO.format("is not a confirm_token this server issued"))
        with self._lock:
            binding = self._tokens.get(self._key(token))
        if binding is None:
            raise ConfirmationRequired(_REDO.format("is unknown or was already used"))
        if binding.expires <= self._clock():
            self.revoke(token)
            raise ConfirmationRequired(_REDO.format("has expired"))
        if binding.user != user or binding.tool != tool or binding.args != args:
            raise ConfirmationRequired(_REDO.format(f"was issued for a different call (tool {binding.tool})"))
        return binding

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(self._key(token), None)


_REDO = (
    "The confirm_token {}. Nothing was deleted. Call the same tool with dry_run=true to see the plan and get "
    "a fresh token, then call it again with the same arguments and that token."
)
