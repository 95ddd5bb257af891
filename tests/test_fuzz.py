"""Hostile input through the MCP client: Hypothesis over the tools' arguments (wrong types, NUL bytes,
over-long strings, confusables, traversal, injection-shaped ids and names). Expected every time: a clear
error or a harmless preview, never a crash, and nothing deleted."""

import os
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from memsweep.config import Settings
from memsweep.server.app import create_server

from tests.pgserver import module_database

HOSTILE = st.sampled_from(
    ["x' OR '1'='1", "*", "../..", "../../etc/passwd", "%", "'; DROP TABLE data; --", "\x00", "a\x00b",
     "ｎｏｔｅｓ", "notes\u200b", "NOTES", "123e4567-e89b-12d3-a456-426614174000", "", " ", "null", "{}", "$ids"]
)  # fmt: skip
STRINGS = st.one_of(HOSTILE, st.text(max_size=40), st.text(min_size=300, max_size=400), st.just("y" * 70_000))
ANY = st.one_of(STRINGS, st.integers(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2), st.floats())
TOOLS = {
    "delete_data": ["dataset_id", "data_id", "dry_run", "erase"],
    "empty_dataset": ["dataset_id", "dry_run", "confirm_token", "erase"],
    "delete_all": ["dry_run", "confirm_token", "erase"],
    "forget": ["data_id", "dataset", "everything", "memory_only", "dry_run", "confirm_token", "erase"],
    "prune": ["files", "graph", "vector", "metadata", "cache", "dry_run", "confirm_token"],
    "list_data": ["dataset_id", "cursor", "limit"],
    "search": ["query", "dataset", "limit"],
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pg_server: object | None):
    # One store for the module, so on PostgreSQL a database of its own that outlives each test's.
    with module_database() as url:
        yield from _live(
            Settings(
                data_dir=tmp_path_factory.mktemp("fuzz") / "d",
                user="alice",
                allow_prune=True,
                **({"metadata_url": url} if url else {}),
            )
        )


def _live(s: Settings):  # type: ignore[no-untyped-def]
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(Client(create_server(s), mode="legacy")) as client:
            for text in ("Alice moved to New York.", "Bob flew to Paris.", "Carol likes tea."):
                r = portal.call(client.call_tool, "add", {"dataset": "notes", "text": text})
                assert not r.is_error
            yield portal, client


def _state(portal, client) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    r = portal.call(client.call_tool, "list_datasets", {})
    return [(d["name"], d["items"]) for d in r.structured_content["datasets"]]


@given(tool=st.sampled_from(sorted(TOOLS)), data=st.data())
@settings(
    max_examples=int(os.environ.get("MEMSWEEP_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_hostile_arguments_delete_nothing(live, tool: str, data: st.DataObject) -> None:
    portal, client = live
    keys = data.draw(st.lists(st.sampled_from(TOOLS[tool]), unique=True, max_size=len(TOOLS[tool])))
    args = {k: data.draw(ANY) for k in keys}
    if tool in ("empty_dataset", "delete_all", "forget", "prune") and args.get("dry_run") is not True:
        args.setdefault("confirm_token", data.draw(HOSTILE))  # never a real token: nothing may run
    before = _state(portal, client)
    r = portal.call(client.call_tool, tool, args)
    if r.is_error:
        text = r.content[0].text
        assert text.strip() and text != f"Error executing tool {tool}", text  # a clear error, not a crash
    assert _state(portal, client) == before


def test_paths_that_must_not_be_read(live, tmp_path: Path) -> None:
    portal, client = live
    link_dir = tmp_path / "dirlink"
    link_dir.symlink_to(tmp_path)
    bad = [
        "../../etc/passwd",
        "relative.txt",
        str(tmp_path),
        str(link_dir),
        "/dev/zero",
        "/proc/self/mem",
        "/nonexistent/x",
    ]
    for path in bad:
        r = portal.call(client.call_tool, "add", {"dataset": "notes", "path": path})
        assert r.is_error and "Invalid input" in r.content[0].text, (path, r.content[0].text)
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 50_000_001)
    r = portal.call(client.call_tool, "add", {"dataset": "notes", "path": str(big)})
    assert r.is_error and "limit" in r.content[0].text


PLAIN = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=2000)


@given(text=st.one_of(PLAIN, st.lists(st.sampled_from(["Quarterly", "Planning", "Review", "Meeting", "Notes",
                                                       "For", "The", "Atlas", "Project", "Team", "Alice",
                                                       "O'Neil", "São", "Paulo", "X", "-", "."]),
                                      max_size=400).map(" ".join)))  # fmt: skip
@settings(
    max_examples=int(os.environ.get("MEMSWEEP_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_extractor_never_makes_an_add_fail(live, text: str) -> None:
    """No entities passed: whatever the built-in extractor finds in a text within the limits, the add works."""
    portal, client = live
    r = portal.call(client.call_tool, "add", {"dataset": "extracted", "text": text})
    if text.strip():
        assert not r.is_error, r.content[0].text
    else:
        assert r.is_error and "empty" in r.content[0].text


def test_long_capitalised_runs_are_stored(live) -> None:
    portal, client = live
    agenda = "Agenda: " + " ".join(["Quarterly Planning Review Meeting Notes For The Atlas Project Team"] * 6)
    guests = "Guests: " + ", ".join(f"Alexander Hamilton{i} Washington Jefferson Madison" for i in range(40))
    for text in (agenda, guests):
        r = portal.call(client.call_tool, "add", {"dataset": "extracted", "text": text})
        assert not r.is_error, r.content[0].text
