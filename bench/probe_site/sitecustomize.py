"""Loaded by every Python process started with PYTHONPATH=bench/probe_site: with LOOP_PROBE_OUT set, the
event-loop probe of bench/loop_probe.py watches it (bench/agent_day.py sets both for the server it starts)."""

import os

if os.environ.get("LOOP_PROBE_OUT"):
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("loop_probe", os.path.join(os.path.dirname(here), "loop_probe.py"))
    assert spec is not None and spec.loader is not None
    loop_probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop_probe)
    loop_probe.install(f"{os.environ['LOOP_PROBE_OUT']}.{os.getpid()}.json")
