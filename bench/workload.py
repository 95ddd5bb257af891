"""The shared workload: N small texts in 10 datasets, entities from a shared vocabulary (many shared
nodes), 5% identical texts across datasets. Imported by memsweep's and Cognee's runners alike."""

import contextlib
import json
import random
import shutil
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

DATASETS = 10
VOCAB = [f"Entity{i:04d}" for i in range(500)]
SHARED_TEXT = "This exact note is stored in several datasets."


def item(i: int) -> dict:
    rng = random.Random(i)
    if i % 20 == 0:  # 5% identical content across datasets
        return {
            "dataset": f"ds{i % DATASETS}",
            "text": SHARED_TEXT + f" ({i % 7})",
            "entities": [{"name": "Entity0000"}],
        }
    names = rng.sample(VOCAB, 3)
    text = f"Note {i}. {names[0]} met {names[1]} at {names[2]}. They discussed topic {rng.randint(0, 999)} at length."
    return {"dataset": f"ds{i % DATASETS}", "text": text, "entities": [{"name": n} for n in names]}


def ms(xs: list[float]) -> dict:
    """Median, 95th percentile and count, in milliseconds, of durations in seconds."""
    xs = sorted(x * 1000 for x in xs)
    return {
        "p50_ms": round(statistics.median(xs), 2),
        "p95_ms": round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 2),
        "n": len(xs),
    }


def save(out: str | None, result: dict) -> None:
    """Write a benchmark's result as JSON when --out was given."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))


@contextlib.contextmanager
def scratch(prefix: str, given: str | None = None) -> Iterator[Path]:
    """`given` as is, or a new temporary directory removed when the run ends, however it ends (the
    benchmarks used to leave theirs: ~100 MB per floor run and 84 MB per agent day, kept in /tmp)."""
    if given:
        yield Path(given)
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
