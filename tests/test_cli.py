"""The real `memsweep` binary on a real store: every command, the prompt, --yes, --dry-run, --json, exit codes."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from memsweep.api import Memory
from memsweep.config import Settings

from tests.pgserver import new_store_metadata


@pytest.fixture
def run(tmp_path: Path):
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(tmp_path / "data"), MEMSWEEP_USER="alice")

    def _run(
        *args: str, stdin: str = "", user: str | None = None, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        e = dict(env, MEMSWEEP_USER=user) if user else env
        e = dict(e, **(extra or {}))
        return subprocess.run(
            [sys.executable, "-m", "memsweep", *args], env=e, input=stdin, capture_output=True, text=True, timeout=120
        )

    return _run


def _json(proc: subprocess.CompletedProcess[str]):  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cli_end_to_end(run, tmp_path: Path) -> None:
    a = _json(run("add", "notes", "Alice moved to New York.", "--json"))
    (tmp_path / "f.txt").write_text("Bob flew to New York.")
    b = _json(run("add", "notes", "--file", str(tmp_path / "f.txt"), "--json"))
    assert b["dataset_id"] == a["dataset_id"]
    assert [d["items"] for d in _json(run("datasets", "--json"))] == [2]
    assert "notes" in run("datasets").stdout and "can delete" in run("datasets").stdout
    assert len(_json(run("ls", "notes", "--json"))) == 2
    assert _json(run("search", "Alice", "--json"))[0]["data_id"] == a["data_id"]

    # the prompt defaults to no
    no = run("rm", "notes", a["data_id"], stdin="\n")
    assert no.returncode == 1 and "Would delete 1 item" in no.stderr and "Nothing was deleted" in no.stderr
    assert len(_json(run("ls", "notes", "--json"))) == 2
    dry = _json(run("rm", "notes", "--dry-run", "--json"))
    assert dry["dry_run"] and dry["items"] == 2 and not dry["executed"]
    yes = run("rm", "notes", a["data_id"], stdin="y\n")
    assert yes.returncode == 0 and "Deleted 1 item" in yes.stdout
    assert _json(run("doctor", "--json"))["consistent"]
    gone = _json(run("forget", "--dataset", "notes", "--yes", "--json"))
    assert gone["executed"] and gone["datasets"] == 1
    assert _json(run("audit", "--json"))[0]["op"] == "forget"

    # bad input → 2, refused → 1
    assert run("rm", "notes", "x' OR '1'='1", "--yes").returncode == 2
    assert run("add", "notes").returncode == 2
    run("add", "mine", "A private note.")
    assert run("rm", "mine", "--yes", user="bob").returncode == 2  # bob cannot see it
    ds = _json(run("datasets", "--json"))[0]["id"]
    assert run("grant", "bob", "mine", "read").returncode == 0
    refused = run("rm", ds, "--yes", user="bob")  # another user's dataset is named by its id
    assert refused.returncode == 1 and "'delete' permission" in refused.stderr
    revoked = run("revoke", "bob", ds, "read")
    assert revoked.returncode == 0 and revoked.stdout.startswith("revoked read on"), revoked.stdout
    assert _json(run("datasets", "--json", user="bob")) == []

    pr = _json(run("prune", "--graph", "--vector", "--dry-run", "--json"))
    assert pr["layers"]["vector"]["vectors"] == 1
    assert _json(run("prune", "--graph", "--vector", "--yes", "--json"))["executed"]
    assert _json(run("rebuild", "--json"))["vectors"] == 1
    assert run("doctor").returncode == 0
    tok = run("token", "carol")
    assert tok.returncode == 0 and tok.stdout.startswith("mst_")
    assert run("token", "--revoke", tok.stdout.strip()).returncode == 0


def test_global_options_before_or_after_the_command(run, tmp_path: Path) -> None:
    from memsweep import __version__

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"memsweep {__version__}"
    other = tmp_path / "other"
    before_env = os.environ.get("MEMSWEEP_METADATA_URL")
    new_store_metadata()  # a second store needs its own metadata database on PostgreSQL
    x = {"MEMSWEEP_METADATA_URL": os.environ["MEMSWEEP_METADATA_URL"]} if before_env else {}
    assert (
        run("add", "notes", "In the other store.", "--data-dir", str(other), "--user", "carol", extra=x).returncode == 0
    )
    after = _json(run("datasets", "--json", "--data-dir", str(other), "--user", "carol", extra=x))
    before = _json(run("--data-dir", str(other), "--user", "carol", "datasets", "--json", extra=x))
    assert after == before and [d["owner"] for d in after] == ["carol"]
    assert _json(run("datasets", "--json")) == []  # the default store (MEMSWEEP_DATA_DIR) was not touched
    # a value given before the command is not undone by the command's own defaults
    assert _json(run("--data-dir", str(other), "datasets", "--user", "carol", "--json", extra=x)) == after


BAD = [
    ["ls"],
    ["search", "x", "--limit", "many"],
    ["search", "x", "--limit", "0"],
    ["rm"],
    ["grant", "bob", "notes", "everything"],
    ["add", "notes", "--file", "/no/such/file"],
    ["add", "notes"],
    ["serve", "--port", "http"],
    ["token"],
    ["forget"],
    ["forget", "--item", "not-a-uuid", "--yes"],
    ["prune", "--yes"],
    ["audit", "--limit", "-3"],
    ["doctor", "--repair", "--nonsense"],
    ["nonsense"],
    ["ls", "nosuchdataset"],
    ["--graph-backend", "neo4j", "datasets"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_input_is_one_line_never_a_traceback(run, argv: list[str]) -> None:
    proc = run(*argv)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


def test_json_into_a_closed_pipe_is_quiet(settings: Settings, tmp_path: Path) -> None:
    # One batch in this process (forty `memsweep add` processes took 40-69 s), and more JSON than a pipe
    # holds, so the writer is still writing when `head` goes (with 40 items it had often written it all).
    async def fill() -> None:
        async with Memory(settings) as mem:
            await mem.add_many([{"dataset": "notes", "text": f"Memory {i} about Oslo."} for i in range(400)])

    asyncio.run(fill())
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(tmp_path / "data"), MEMSWEEP_USER="alice")
    proc = subprocess.run(
        f"{sys.executable} -m memsweep ls notes --json | head -1", shell=True, env=env, capture_output=True, text=True
    )
    assert proc.stdout.strip() == "[" and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_errors_use_the_command_lines_words(run) -> None:
    forget = run("forget")
    assert "--item ID (repeatable), --entity NAME" in forget.stderr and "data_id" not in forget.stderr
    add = run("add", "notes")
    assert "TEXT or --file PATH" in add.stderr and "`path`" not in add.stderr
    bad_item = run("forget", "--item", "nope", "--yes")
    assert "ITEM" in bad_item.stderr and "memsweep datasets" in bad_item.stderr and "list_data" not in bad_item.stderr


def test_install_merges_backs_up_and_is_idempotent(run, tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    other = {"mcpServers": {"files": {"command": "npx", "args": ["-y", "some-server"]}}, "theme": "dark"}
    config.write_text(json.dumps(other))
    data_dir = tmp_path / "store"
    dry = run("install", "claude", "--config", str(config), "--data-dir", str(data_dir), "--dry-run")
    assert dry.returncode == 0 and '"memsweep"' in dry.stdout and json.loads(config.read_text()) == other
    done = run("install", "claude", "--config", str(config), "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    written = json.loads(config.read_text())
    assert written["theme"] == "dark" and written["mcpServers"]["files"] == other["mcpServers"]["files"]
    entry = written["mcpServers"]["memsweep"]
    assert entry == {"command": sys.executable, "args": ["-m", "memsweep", "serve", "--data-dir", str(data_dir)]}
    backups = list(tmp_path.glob("claude_desktop_config.json.*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == other
    again = run("install", "claude", "--config", str(config), "--data-dir", str(data_dir))
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert len(list(tmp_path.glob("*.bak"))) == 1
    vscode = tmp_path / "mcp.json"
    assert run("install", "vscode", "--config", str(vscode), "--data-dir", str(data_dir)).returncode == 0
    assert json.loads(vscode.read_text())["servers"]["memsweep"]["type"] == "stdio"
    config.write_text("{not json")
    bad = run("install", "cursor", "--config", str(config))
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr and config.read_text() == "{not json"


def test_forget_a_subject_and_by_description(run) -> None:
    a = _json(run("add", "notes", "Alice moved to Oslo.", "--json"))
    b = _json(run("add", "trips", "Alice flew to Rome.", "--json"))
    c = _json(run("add", "work", "Bob works in Oslo.", "--json"))
    dry = _json(run("forget", "--entity", "alice", "--dry-run", "--json"))
    assert dry["items"] == 2 and {x["data_id"] for x in dry["candidates"]} == {a["data_id"], b["data_id"]}
    found = run("forget", "--query", "Oslo")
    assert found.returncode == 0 and c["data_id"] in found.stdout and "memsweep forget --item" in found.stdout
    assert len(_json(run("datasets", "--json"))) == 3  # --query never deletes
    gone = _json(run("forget", "--item", a["data_id"], "--item", c["data_id"], "--yes", "--json"))
    assert gone["executed"] and gone["items"] == 2
    assert _json(run("forget", "--entity", "Alice", "--yes", "--json"))["items"] == 1
    assert run("forget", "--entity", "Nobody", "--yes").returncode == 2


def test_verify_and_the_receipt_on_the_command_line(run) -> None:
    a = _json(run("add", "notes", "A receipt for this note, please.", "--json"))
    done = _json(run("rm", "notes", a["data_id"], "--yes", "--verify", "--json"))
    assert done["verified"] and done["hits"] == 0 and done["receipt_id"]
    shown = run("audit", "--receipt", done["receipt_id"])
    assert shown.returncode == 0 and "0 hits" in shown.stdout and "bytes erased: at" in shown.stdout
    assert run("audit", "--receipt", "123e4567-e89b-12d3-a456-426614174000").returncode == 2


def test_a_store_command_starts_again_without_glibcs_thread_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands that open the store in their own process start once more with the tunable the server's
    engine process gets (storage/heap.py), keeping the caller's other tunables; then they run."""
    from memsweep import cli
    from memsweep.storage import heap

    if not heap.thread_cache_on({}):  # not glibc
        pytest.skip("glibc only")
    started: list[tuple[str, list[str], dict[str, str]]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        started.append((path, argv, env))
        raise SystemExit(0)  # in place of the new program

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.setattr(sys, "argv", ["memsweep", "--data-dir", "/nonexistent/x", "datasets"])
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    with pytest.raises(SystemExit):
        cli.main()
    ((path, argv, env),) = started
    assert path == sys.executable and argv == [
        sys.executable,
        "-m",
        "memsweep",
        "--data-dir",
        "/nonexistent/x",
        "datasets",
    ]
    assert env["GLIBC_TUNABLES"] == f"{heap.NO_THREAD_CACHE}:glibc.malloc.arena_max=2"
    monkeypatch.setenv("GLIBC_TUNABLES", env["GLIBC_TUNABLES"])  # the restarted process goes on
    cli._restart_without_thread_cache()
    assert len(started) == 1
