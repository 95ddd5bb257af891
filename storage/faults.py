"""Test-only crash points: `MEMSWEEP_CRASH_AT=<step>` kills the process with SIGKILL at that step.

The crash harness (tests/test_crash.py) uses it to stop a real process between and inside the steps of the
delete path; with the variable unset this is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

STEPS = (
    "after_journal",
    "mid_vectors",
    "mid_vector_rewrite",
    "after_vectors",
    "mid_graph",
    "after_graph",
    "mid_files",
    "after_files",
    "after_purge",
    "mid_erase",
    "mid_add",
    "mid_rebuild",
    "mid_compact",
)


def crash_point(step: str) -> None:
    if os.environ.get("MEMSWEEP_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
