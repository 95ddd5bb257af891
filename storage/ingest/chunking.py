"""Chunking and the built-in entity extractor (used only when the caller gives no entities).

The extractor is deliberately simple: runs of capitalised words ("New York", "Alice") minus sentence-
initial function words, and a `mentioned_with` relation between entities of one sentence. The calling
agent is an LLM and extracts better; this keeps the graph from being empty for plain text.
"""

from __future__ import annotations

import re

CHUNK_CHARS = 800
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_CAPS = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of|de|van|von|the)?\s*[A-Z][\w'’-]*)*")
_STOP = {
    "A", "An", "And", "As", "At", "But", "By", "For", "From", "He", "Her", "His", "How", "I", "If", "In",
    "It", "Its", "My", "No", "Not", "Of", "On", "Or", "Our", "She", "So", "That", "The", "Their", "Then",
    "There", "These", "They", "This", "Those", "To", "We", "What", "When", "Where", "Which", "Who", "Why",
    "With", "Yes", "You", "Your", "Also", "After", "Before", "Today", "Yesterday", "Tomorrow",
}  # fmt: skip


def chunk_text(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Sentences packed into chunks of at most `limit` characters (a longer sentence is split)."""
    chunks: list[str] = []
    current = ""
    for sentence in (s.strip() for s in _SENTENCE.split(text)):
        if not sentence:
            continue
        while len(sentence) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(sentence[:limit])
            sentence = sentence[limit:]
        if current and len(current) + 1 + len(sentence) > limit:
            chunks.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        chunks.append(current)
    return chunks or ([text[:limit]] if text.strip() else [])


def extract_entities(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Names and co-occurrence pairs, in order of first appearance."""
    names: list[str] = []
    pairs: list[tuple[str, str]] = []
    for sentence in _SENTENCE.split(text):
        found: list[str] = []
        for match in _CAPS.finditer(sentence):
            words = match.group(0).split()
            while words and words[0] in _STOP:
                words = words[1:]
            name = " ".join(words).strip(" '’-")
            if len(name) < 2 or name in found:
                continue
            found.append(name)
        for name in found:
            if name not in names:
                names.append(name)
        pairs += [(a, b) for i, a in enumerate(found) for b in found[i + 1 :]]
    return names[:200], pairs[:400]
