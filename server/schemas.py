"""Tool schemas in the tokens an agent can afford (issue 11.5: `tools/list` was 35,168 characters, about
8.8k tokens, and 59% of it output schemas: the deletion report repeated in five tools).

Pydantic writes a `title` for every property ("Dry Run" next to `dry_run`), a `default` in output
schemas (a result has no defaults to apply), `default: null` for every optional argument, and
`anyOf: [{type: X}, {type: null}]` for every optional field. None of it tells a client more than the
compact form: those are dropped, an optional result field becomes `type: [X, "null"]` (the same set of
values in JSON Schema), an optional argument loses its `null` alternative (omitting it says "none"), and
result fields keep their types but not their descriptions (the deletion report's five copies said the
same sentences five times; the tool descriptions and README say them once).
Validation is unaffected: the SDK validates arguments and results with the pydantic models, not with
these published schemas (tests/test_contract.py validates results against them with a format checker).
"""

from __future__ import annotations

from typing import Any

# Keys whose value maps names to schemas (a property may be *named* "title" or "default").
_NAMED = {"properties", "$defs", "definitions", "patternProperties"}


def compact(schema: dict[str, Any], *, output: bool) -> dict[str, Any]:
    """A copy of `schema` without titles (and, for an output schema, defaults), optional scalars folded."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and (output or value is None):
            continue  # a result applies no defaults; an argument's absent value is null without saying so
        if output and key == "description" and "properties" not in schema:
            continue  # a result field's meaning is in the tool's description and README, once
        if key in _NAMED and isinstance(value, dict):
            out[key] = {name: compact(sub, output=output) for name, sub in value.items()}
        elif isinstance(value, dict):
            out[key] = compact(value, output=output)
        elif isinstance(value, list):
            out[key] = [compact(v, output=output) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return _fold_nullable(out) if output else _drop_null(out)


def _drop_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional argument's schema without its `null` alternative: not giving the argument is how a client
    says "none" (every such argument defaults to null), and the published schema need not spell out a
    second way. The server still accepts an explicit null (its pydantic model allows it)."""
    options = schema.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        (other,) = [o for o in options if o != {"type": "null"}]
        return {**{k: v for k, v in schema.items() if k != "anyOf"}, **other}
    return schema


def _fold_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [{type: X, …}, {type: null}]` → `type: [X, "null"], …` when X is a plain scalar schema."""
    options = schema.get("anyOf")
    if not (isinstance(options, list) and len(options) == 2 and {"type": "null"} in options):
        return schema
    (other,) = [o for o in options if o != {"type": "null"}]
    if not isinstance(other.get("type"), str) or other["type"] in ("object", "array") or "$ref" in other:
        return schema
    folded = {k: v for k, v in schema.items() if k != "anyOf"}
    folded.update({k: v for k, v in other.items() if k != "type"})
    folded["type"] = [other["type"], "null"]
    return folded
