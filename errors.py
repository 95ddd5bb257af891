"""One exception tree for the engine, the tools and the CLI.

Every message says what was wrong, what was kept and what to do next; the server maps these to MCP
tool errors in one place (`server/errors.py`), the CLI to exit codes.
"""

from __future__ import annotations


class MemsweepError(Exception):
    """Base of every error memsweep raises on purpose."""


class NotFound(MemsweepError):
    """An id or name that names nothing the caller can see."""


class PermissionDenied(MemsweepError):
    """The caller lacks the permission the operation needs."""


class InvalidInput(MemsweepError):
    """Arguments that are malformed, out of bounds or contradictory."""


class ConfirmationRequired(MemsweepError):
    """A guarded operation was not (or no longer) confirmed."""


class PruneDisabled(MemsweepError):
    """prune was called on a server where the operator has not enabled it."""


class StoreUnavailable(MemsweepError):
    """A store cannot be opened or written right now (locked, missing, corrupt)."""
