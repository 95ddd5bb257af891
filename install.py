"""`memsweep install claude|cursor|vscode`: add memsweep to an MCP client's config file (issue 16.2).

The entry runs this interpreter (`sys.executable -m memsweep serve --data-dir DIR`), so the client starts
exactly the memsweep that was installed, whatever its PATH. Every other entry and key of the file is kept;
the file is backed up before it is changed and written atomically; running it twice changes nothing.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memsweep.errors import InvalidInput

NAME = "memsweep"
CLIENTS = ("claude", "cursor", "vscode")


def default_config(client: str, home: Path | None = None) -> Path:
    """Where each client keeps its user-level MCP servers (documented locations)."""
    home = home or Path.home()
    mac = sys.platform == "darwin"
    if client == "claude":
        base = home / "Library" / "Application Support" if mac else home / ".config"
        return base / "Claude" / "claude_desktop_config.json"
    if client == "cursor":
        return home / ".cursor" / "mcp.json"
    if client == "vscode":
        base = home / "Library" / "Application Support" if mac else home / ".config"
        return base / "Code" / "User" / "mcp.json"
    raise InvalidInput(f"Unknown client {client!r}; choose one of {', '.join(CLIENTS)}.")


def entry(client: str, data_dir: Path) -> tuple[str, dict[str, Any]]:
    """(the key holding servers in this client's file, memsweep's entry)."""
    server: dict[str, Any] = {
        "command": sys.executable,
        "args": ["-m", "memsweep", "serve", "--data-dir", str(data_dir)],
    }
    if client == "vscode":
        return "servers", {"type": "stdio", **server}
    return "mcpServers", server


@dataclass(frozen=True)
class Change:
    path: Path
    before: str  # the file's text ("" when it does not exist)
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"{self.path} (now)",
                tofile=f"{self.path} (after install)",
            )
        )


def plan(client: str, config: Path, data_dir: Path) -> Change:
    """What installing would write, without writing it."""
    key, server = entry(client, data_dir)
    before = config.read_text(encoding="utf-8") if config.exists() else ""
    try:
        doc = json.loads(before) if before.strip() else {}
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{config} is not valid JSON (line {exc.lineno}: {exc.msg}). Nothing was changed; fix the file or "
            "pass another one with --config."
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get(key, {}), dict):
        raise InvalidInput(f"{config} does not hold a JSON object with a {key!r} object. Nothing was changed.")
    if doc.get(key, {}).get(NAME) == server:
        return Change(config, before, before)  # already installed exactly so: idempotent
    servers = dict(doc.get(key, {}))
    servers[NAME] = server
    after = json.dumps({**doc, key: servers}, indent=2, ensure_ascii=False) + "\n"
    return Change(config, before, after)


def apply(change: Change) -> Path | None:
    """Write the change (backup first, then an atomic replace). Returns the backup's path, if any."""
    if not change.changed:
        return None
    change.path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if change.path.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = change.path.with_name(f"{change.path.name}.{stamp}.bak")
        backup.write_text(change.before, encoding="utf-8")
    fd, tmp = tempfile.mkstemp(dir=change.path.parent, prefix=f".{change.path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(change.after)
        if change.path.exists():
            os.chmod(tmp, change.path.stat().st_mode & 0o7777)
        os.replace(tmp, change.path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return backup
