"""The house's walls (ARCHITECTURE.md): who may import whom, and no import circles, read from the source with
`ast` (imports inside functions count too: a lazy import is still a dependency)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lower numbers are lower layers. A module may import its own layer or a lower one, never a higher one.
LAYERS: list[tuple[str, int]] = [
    ("memsweep.errors", 0), ("memsweep.config", 0), ("memsweep.results", 0),
    ("memsweep.storage.ids", 1), ("memsweep.storage.faults", 1), ("memsweep.storage.heap", 1),
    ("memsweep.storage.stores", 2),
    ("memsweep.storage.ingest.embedding", 2),  # a leaf the engine wires (it imports nothing of ours)
    ("memsweep.storage.access", 3), ("memsweep.storage.engine", 3),
    ("memsweep.storage.ingest", 4), ("memsweep.storage.deletion", 4), ("memsweep.storage.admin", 4),
    ("memsweep.storage.lifecycle", 5),
    ("memsweep.api", 6), ("memsweep.install", 6),
    ("memsweep.server", 7),  # state, guard, confirm, errors, auth, http, stop
    ("memsweep.tools", 8),
    ("memsweep.server.app", 9),
    ("memsweep.cli", 10), ("memsweep.__main__", 10),
]  # fmt: skip
FACADES = {"memsweep"}  # the package's lazy re-export of Memory/Settings: a door, not a room


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["memsweep", *parts]) if parts else "memsweep"


def layer(name: str) -> int:
    best = max((p for p, _ in LAYERS if name == p or name.startswith(p + ".")), key=len, default=None)
    if best is None:
        return 1 if name.startswith("memsweep.storage") else 0  # package __init__ files
    return dict(LAYERS)[best]


def imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    sources = [p for d in ("server", "tools", "storage") for p in (ROOT / d).rglob("*.py")]
    sources += [p for p in ROOT.glob("*.py")]
    known = {module_name(p) for p in sources}
    for path in sources:
        name = module_name(path)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("memsweep"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in known else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("memsweep")}
        graph[name] = {m for m in found if m in known and m != name}
    return graph


def test_no_module_imports_a_layer_above_it() -> None:
    wrong = [
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, targets in imports().items()
        if src not in FACADES
        for dst in targets
        if layer(dst) > layer(src)
    ]
    assert wrong == []


def test_no_import_circles() -> None:
    graph = imports()
    graph = {k: v - FACADES for k, v in graph.items() if k not in FACADES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert circles == []


def test_the_layer_map_knows_every_module() -> None:
    unplaced = [m for m in imports() if m not in FACADES and layer(m) == 0 and not m.startswith(("memsweep.errors",
                "memsweep.config", "memsweep.results"))]  # fmt: skip
    assert unplaced == [], "place these modules in LAYERS"
