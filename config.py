"""Settings shared by the engine, the server and the CLI (flags > environment > defaults)."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path


def default_data_dir() -> Path:
    """`MEMSWEEP_DATA_DIR`, else `$XDG_DATA_HOME/memsweep`, else `~/.local/share/memsweep`."""
    env = os.environ.get("MEMSWEEP_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "memsweep"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_number(name: str, default: float, kind: type = float) -> float:
    """A positive number from the environment; a bad value is an InvalidInput naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value: float = kind(raw)
    except ValueError:
        value = 0
    if value <= 0:
        from memsweep.errors import InvalidInput

        raise InvalidInput(f"{name} must be a positive {'whole ' if kind is int else ''}number, not {raw!r}.")
    return value


def _env_paths(name: str) -> tuple[Path, ...]:
    """Directories from an `os.pathsep`-separated variable (empty entries ignored)."""
    raw = os.environ.get(name, "")
    return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())


@dataclass(frozen=True)
class Limits:
    """Bounds on what one call may carry; every breach is an `InvalidInput` with the limit in its text."""

    max_text_bytes: int = 1_000_000
    max_file_bytes: int = 50_000_000
    max_name_chars: int = 255
    max_entities_per_item: int = 500
    max_relations_per_item: int = 1000
    max_page_size: int = 200
    max_items_per_call: int = 1000
    max_search_limit: int = 100


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    user: str = field(default_factory=lambda: os.environ.get("MEMSWEEP_USER", "default"))
    graph_backend: str = field(default_factory=lambda: os.environ.get("MEMSWEEP_GRAPH_BACKEND", "kuzu"))
    metadata_url: str | None = field(default_factory=lambda: os.environ.get("MEMSWEEP_METADATA_URL") or None)
    allow_prune: bool = field(default_factory=lambda: _env_flag("MEMSWEEP_ALLOW_PRUNE"))
    embedder: str = field(default_factory=lambda: os.environ.get("MEMSWEEP_EMBEDDER", "hashing"))
    # Kuzu/ladybug buffer pool. Their default is 80% of RAM, and the bookkeeping for a pool that size alone
    # cost ~37 MB of resident memory at open on a 24 GiB machine (67 MB vs 30 MB with a 1 GiB pool).
    graph_buffer_mb: int = field(default_factory=lambda: int(_env_number("MEMSWEEP_GRAPH_BUFFER_MB", 1024, int)))
    token_ttl_seconds: int = 300
    # How long a writer waits for another memsweep process that holds the data directory.
    lock_timeout_seconds: float = field(default_factory=lambda: _env_number("MEMSWEEP_LOCK_TIMEOUT", 10.0))
    # `memsweep serve` ends its engine process after this long without a tool call (its memory goes back to
    # the system), and the next call starts one again (~1 s: imports and open).
    engine_idle_seconds: float = field(default_factory=lambda: _env_number("MEMSWEEP_ENGINE_IDLE_SECONDS", 60.0))
    limits: Limits = field(default_factory=Limits)
    # Directories a remote (HTTP) caller may name in `add(path=...)`; none by default, so over HTTP a memory
    # arrives as text. Local callers (stdio, CLI, Python API) are the local user and may read what they can.
    allowed_paths: tuple[Path, ...] = field(default_factory=lambda: _env_paths("MEMSWEEP_ALLOWED_PATHS"))

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def configure_logging(level: str = "WARNING") -> None:
    """One log format for the server and its engine process. stdout is the protocol on stdio (and the
    engine process's pipe): logs go to stderr only."""
    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
