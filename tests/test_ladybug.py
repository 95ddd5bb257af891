"""The same engine suite on ladybug, Kuzu's maintained fork. kuzu and ladybug cannot be imported into one
process (their bindings register the same types), so the suite runs in a child pytest."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.environ.get("MEMSWEEP_GRAPH_BACKEND") == "ladybug", reason="already the ladybug run")
def test_engine_suite_passes_on_ladybug() -> None:
    pytest.importorskip("ladybug")
    env = dict(os.environ, MEMSWEEP_GRAPH_BACKEND="ladybug")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_engine.py", "tests/test_crash.py", "tests/test_stores.py",
         "tests/test_erasure.py::test_freed_heap_memory_never_reaches_the_graph_files", "-k", "not prune or metadata"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
