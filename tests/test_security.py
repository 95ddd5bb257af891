"""Invariant 10 and friends: a remote caller names no server path, reads are bounded, headers are checked
exactly, and bad input is answered briefly in the tool's words. Real HTTP server, real files, real pipes."""

import os
import socket
import threading
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from memsweep.api import Memory
from memsweep.config import Limits, Settings
from memsweep.errors import InvalidInput
from memsweep.server.app import create_server
from memsweep.storage.ingest.sources import REMOTE_NO_PATHS, REMOTE_REFUSED, _read_bounded

from tests.test_http import _client, start, stop

pytestmark = pytest.mark.anyio


async def _add_path(url: str, token: str, path: str) -> tuple[bool, str]:
    async with _client(url, token) as c:
        r = await c.call_tool("add", {"dataset": "loot", "path": path})
        return r.is_error, r.content[0].text


async def test_remote_caller_cannot_read_server_files(tmp_path: Path) -> None:
    proc, port, tokens = start(tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        for path in ("/etc/passwd", "/proc/self/status", str(Path.home() / ".bashrc"), "/no/such/file"):
            is_error, text = await _add_path(url, tokens["bob"], path)
            assert is_error and REMOTE_NO_PATHS in text, text
        async with _client(url, tokens["bob"]) as c:
            assert (await c.call_tool("list_datasets", {})).structured_content["datasets"] == []
            assert (await c.call_tool("search", {"query": "root"})).structured_content["hits"] == []
    finally:
        stop(proc)


async def test_allowed_directory_is_a_wall_and_refusals_look_alike(tmp_path: Path) -> None:
    allowed = tmp_path / "shared"
    allowed.mkdir()
    (allowed / "note.txt").write_text("Team note about Oslo.")
    secret = tmp_path / "secret.txt"
    secret.write_text("Not for remote callers.")
    (allowed / "link.txt").symlink_to(secret)
    (allowed / "proc").symlink_to("/proc/self/status")
    proc, port, tokens = start(tmp_path, MEMSWEEP_ALLOWED_PATHS=str(allowed))
    url = f"http://127.0.0.1:{port}"
    try:
        is_error, text = await _add_path(url, tokens["bob"], str(allowed / "note.txt"))
        assert not is_error, text
        refusals = {
            await _add_path(url, tokens["bob"], p)
            for p in (
                str(secret),  # exists, outside
                str(allowed / "link.txt"),  # inside, but a symlink to outside
                str(allowed / "proc"),  # inside, a symlink into procfs
                str(allowed / "missing.txt"),  # does not exist
                str(allowed / ".." / "secret.txt"),  # climbs out
                "relative.txt",
            )
        }
        assert refusals == {(True, f"Invalid input: {REMOTE_REFUSED}")}
    finally:
        stop(proc)


async def test_bind_all_interfaces_accepts_its_own_hosts_only(tmp_path: Path) -> None:
    proc, port, tokens = start(tmp_path, "--host", "0.0.0.0")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    hdrs = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {tokens['alice']}"}
    try:
        async with httpx2.AsyncClient(timeout=30) as http:

            async def status(**extra: str) -> int:
                r = await http.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=hdrs | extra)
                return r.status_code

            own = {f"127.0.0.1:{port}", f"localhost:{port}"}
            try:
                own.add(f"{socket.gethostbyname(socket.gethostname())}:{port}")
            except OSError:
                pass
            # Past the header checks a bare tools/list gets the protocol's answer (no session yet), never 421/403.
            for host in own:
                assert await status(Host=host) not in (403, 421), host
            assert await status(Host=f"evil.example:{port}") == 421
            assert await status(Origin=f"http://127.0.0.1:{port}") not in (403, 421)
            for origin in (f"http://127.0.0.1:{port}.evil.example", "http://localhost:1@evil.example",
                           "http://evil.example"):  # fmt: skip
                assert await status(Origin=origin) == 403, origin
    finally:
        stop(proc)


async def test_local_reads_are_bounded_and_regular_only(mem: Memory, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="kernel or device"):
        await mem.add("x", path="/proc/self/smaps")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="not a regular file"):
        await mem.add("x", path=str(fifo))  # refused without blocking on a writer
    big = tmp_path / "big.txt"
    big.write_text("a" * 2000)
    limited = mem.settings.with_(data_dir=tmp_path / "limited", limits=Limits(max_file_bytes=1000))
    async with Memory(limited) as small:
        with pytest.raises(InvalidInput, match="limit is 1,000"):
            await small.add("x", path=str(big))
    assert await mem.datasets.list_datasets() == []
    # A source that lies about its size (procfs says 0) is read only up to the limit.
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, b"b" * 5000), os.close(w)))
    writer.start()
    try:
        assert _read_bounded(r, 1000) is None
    finally:
        writer.join()
        os.close(r)
    r, w = os.pipe()
    os.write(w, b"c" * 10)
    os.close(w)
    assert _read_bounded(r, 1000) == b"c" * 10
    os.close(r)


async def _call(c: Client, tool: str, args: dict[str, Any]) -> tuple[bool, str]:
    r = await c.call_tool(tool, args)
    return r.is_error, r.content[0].text


async def test_argument_errors_are_short_and_in_tool_words(settings: Settings) -> None:
    async with Client(create_server(settings), mode="legacy") as c:
        is_error, text = await _call(c, "list_data", {"dataset_id": "x" * 80_000, "limit": 500})
        assert is_error and text.startswith("Invalid input: `dataset_id`"), text
        assert len(text) < 600 and "pydantic" not in text and "list_data again" in text
        for tool, args, name in [
            ("add", {"dataset": "notes", "text": "bad \ud800 text"}, "text"),
            ("add", {"dataset": "n\udfff", "text": "fine"}, "dataset"),
            ("list_data", {"dataset_id": "notes", "cursor": "\ud800"}, "cursor"),
            ("search", {"query": "\udc80"}, "query"),
            ("add", {"dataset": "notes", "text": "x", "entities": [{"name": "\ud800"}]}, "entities"),
        ]:
            is_error, text = await _call(c, tool, args)
            assert is_error and text.startswith(f"Invalid input: `{name}` contains a lone surrogate"), text
        assert (await c.call_tool("list_datasets", {})).structured_content["datasets"] == []


async def test_python_api_refuses_lone_surrogates(mem: Memory) -> None:
    with pytest.raises(InvalidInput, match="lone surrogate"):
        await mem.add("notes", text="bad \ud800")


async def test_text_that_looks_like_json_stays_text(settings: Settings) -> None:
    """Found by bench/soak.py's fuzzer: the SDK turned the text `null` into None before validation."""
    async with Client(create_server(settings), mode="legacy") as c:
        for text in ("null", "true", '{"key": "value"}', "[1, 2, 3]"):
            r = await c.call_tool("add", {"dataset": "json", "text": text, "name": "null"})
            assert not r.is_error, (text, r.content[0].text)
        found = await c.call_tool("forget", {"query": '{"key": "value"}'})
        assert not found.is_error and found.structured_content["candidates"], found.content[0].text
        listed = (await c.call_tool("list_data", {"dataset_id": "json"})).structured_content["items"]
        assert len(listed) == 4 and {i["name"] for i in listed} == {"null"}
        # lists sent as JSON strings (what Claude Desktop does) are still parsed
        r = await c.call_tool("add", {"dataset": "json", "text": "Alice again.", "entities": '[{"name": "Alice"}]'})
        assert not r.is_error and r.structured_content["entities"] == 1
