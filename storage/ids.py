"""Ids: validation of caller-supplied UUIDs and deterministic entity ids."""

from __future__ import annotations

import re
import unicodedata
import uuid

from memsweep.errors import InvalidInput

_ENTITY_NS = uuid.UUID("6f1d3c56-4b1e-4f53-9a57-5b7f0f0d2c11")
_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = " \t\r\n.,;:!?\"'`()[]{}<>"


def new_id() -> str:
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower() and len(value) == 36
    except (ValueError, AttributeError, TypeError):
        return False


def parse_uuid(value: object, what: str) -> str:
    """The canonical form of a caller-supplied UUID, or `InvalidInput` (never pasted into a query)."""
    if not isinstance(value, str) or not is_uuid(value.strip()):
        shown = repr(value)[:80]
        raise InvalidInput(
            f"{what} {shown} is not a valid id (expected a UUID such as "
            f"'123e4567-e89b-12d3-a456-426614174000'). Nothing was changed; "
            "call list_datasets or list_data to find the id."
        )
    return str(uuid.UUID(value.strip()))


def normalise_name(name: str) -> str:
    """Entity identity: NFKC, case-folded, inner whitespace collapsed, edge punctuation stripped."""
    text = unicodedata.normalize("NFKC", name)
    text = _SPACE.sub(" ", text).strip(_EDGE_PUNCT)
    return text.casefold()


def entity_id(owner_id: str, norm: str) -> str:
    """One node per (owner, normalised name): "New York" twice for one owner is one node."""
    return str(uuid.uuid5(_ENTITY_NS, f"{owner_id}\x00{norm}"))
