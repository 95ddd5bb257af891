"""Streamable HTTP with bearer tokens: the real server on a free loopback port, the SDK's HTTP client."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp_path: Path, *serve_args: str, **env_extra: str):  # type: ignore[no-untyped-def]
    """Tokens for alice, bob and a revoked one; a real `memsweep serve --transport http` on a free port."""
    env = dict(os.environ, MEMSWEEP_DATA_DIR=str(tmp_path / "data"), **env_extra)

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "memsweep", *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    tokens = {"alice": cli("token", "alice"), "bob": cli("token", "bob"), "revoked": cli("token", "mallory")}
    cli("token", "--revoke", tokens["revoked"])
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "memsweep", "serve", "--transport", "http", "--port", str(port), *serve_args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port, tokens


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Warning" not in err, err
    return err


@pytest.fixture
def server(tmp_path: Path):
    proc, port, tokens = start(tmp_path)
    yield f"http://127.0.0.1:{port}", tokens
    stop(proc)


@asynccontextmanager
async def _client(url: str, token: str) -> AsyncIterator[Client]:
    # 30 s, not httpx's 5 s: a loaded machine's first call can wait for the store to open.
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as client:
            yield client


async def test_no_bad_or_revoked_token_gets_401(server) -> None:
    url, tokens = server
    async with httpx2.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        hdrs = {"Accept": "application/json, text/event-stream"}
        assert (await http.post(f"{url}/mcp", json=body, headers=hdrs)).status_code == 401
        for bad in ("mst_nope", tokens["revoked"], "Basic abc"):
            r = await http.post(f"{url}/mcp", json=body, headers=hdrs | {"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401
        foreign = hdrs | {"Authorization": f"Bearer {tokens['alice']}", "Origin": "http://evil.example"}
        assert (await http.post(f"{url}/mcp", json=body, headers=foreign)).status_code in (400, 403)


async def test_two_users_see_and_delete_only_their_own(server) -> None:
    url, tokens = server
    async with _client(url, tokens["alice"]) as alice, _client(url, tokens["bob"]) as bob:
        a = (await alice.call_tool("add", {"dataset": "notes", "text": "Alice's secret."})).structured_content
        await bob.call_tool("add", {"dataset": "notes", "text": "Bob's secret."})
        mine = (await alice.call_tool("list_datasets", {})).structured_content["datasets"]
        assert [(d["owner"], d["items"]) for d in mine] == [("alice", 1)]
        r = await bob.call_tool("delete_data", {"dataset_id": a["dataset_id"], "data_id": a["data_id"]})
        assert r.is_error and "Not found" in r.content[0].text
        tok = (await bob.call_tool("delete_all", {})).structured_content["confirm_token"]
        r = await alice.call_tool("delete_all", {"confirm_token": tok})  # bob's token is not alice's
        assert r.is_error
        done = (await bob.call_tool("delete_all", {"confirm_token": tok})).structured_content
        assert done["executed"] and done["items"] == 1
        assert (await alice.call_tool("list_datasets", {})).structured_content["datasets"][0]["items"] == 1
