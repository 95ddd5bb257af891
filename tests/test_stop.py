"""Stops are events too (DESIGN.md invariant 11): a real `memsweep serve` over stdio, an `erase=false` delete,
then a real SIGTERM, SIGINT or closed stdin. The process exits 0 without a traceback, promptly, and the
deferred erase ran: neither the deleted text nor its vector bytes are anywhere in the data directory."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from memsweep.storage.ingest.embedding import HashingEmbedder

from tests.test_erasure import _scan

FILLER = 30  # enough rows that LanceDB would not rewrite the fragment on its own


class StdioPeer:
    """A minimal JSON-RPC peer over the server's stdin/stdout: what a client does, and nothing it hides."""

    def __init__(self, data_dir: Path) -> None:
        env = dict(os.environ, MEMSWEEP_DATA_DIR=str(data_dir))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "memsweep", "serve"],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._id = 0
        self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "test", "version": "0"}})  # fmt: skip
        self.notify("notifications/initialized")

    def notify(self, method: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}) + "\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._id += 1
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}) + "\n")
        self.proc.stdin.flush()
        while True:
            msg = json.loads(self.proc.stdout.readline())
            if msg.get("id") == self._id:
                assert "error" not in msg, msg
                return msg["result"]

    def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        result = self.request("tools/call", {"name": tool, "arguments": args})
        assert not result.get("isError"), result
        return result["structuredContent"]


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "stdin"])
def test_stop_runs_the_deferred_erase_and_exits_cleanly(tmp_path: Path, how: str) -> None:
    data_dir = tmp_path / "data"
    peer = StdioPeer(data_dir)
    for i in range(FILLER):
        peer.call("add", {"dataset": "filler", "text": f"Filler memory number {i} about Zurich."})
    gone_text, kept_text = "The vault code is QXSTOPGONE4711.", "Keep QXSTOPKEPT0815 safe."
    gone = peer.call("add", {"dataset": "victim", "text": gone_text})
    peer.call("add", {"dataset": "keeper", "text": kept_text})
    report = peer.call("delete_data", {"dataset_id": "victim", "data_id": gone["data_id"], "erase": False})
    assert report["executed"] and "background sweep" in report["message"]
    gone_vec, kept_vec = (v.tobytes() for v in HashingEmbedder().embed([gone_text, kept_text]))
    assert _scan(data_dir, gone_vec)  # deferred: still on disk right after the call

    started = time.monotonic()
    if how == "stdin":
        assert peer.proc.stdin is not None
        peer.proc.stdin.close()
    else:
        peer.proc.send_signal(getattr(signal, how))
    peer.proc.wait(timeout=30)
    assert peer.proc.stderr is not None and peer.proc.stdout is not None
    err = peer.proc.stderr.read()
    for stream in (peer.proc.stdin, peer.proc.stdout, peer.proc.stderr):
        if stream is not None:
            stream.close()
    took = time.monotonic() - started
    assert peer.proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert took < 10, took  # prompt: the SDK's client sends SIGTERM 2 s after closing stdin
    assert _scan(data_dir, gone_vec) == [] and _scan(data_dir, b"QXSTOPGONE4711") == []
    assert _scan(data_dir, kept_vec) and _scan(data_dir, b"QXSTOPKEPT0815")  # positive controls
