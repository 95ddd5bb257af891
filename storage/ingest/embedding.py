"""Embedders. The default works offline with no model download: it is a feature-hashing embedder, not a
language model. Words and character trigrams are hashed (blake2b, stable across processes) into a signed
256-dimensional vector, log-scaled and L2-normalised. It finds texts that share words and spellings, and
cannot know that "car" and "automobile" are related. Install `memsweep[sentence-transformers]` and set
`MEMSWEEP_EMBEDDER=sentence-transformers` for a semantic model (loaded from the local cache only).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # numpy is imported where vectors are made: a process that only lists never loads it
    import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


class HashingEmbedder:
    name = "hashing-ngram-256-v1"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _features(self, text: str) -> list[str]:
        words = [w.casefold() for w in _WORD.findall(text)]
        feats = [f"w:{w}" for w in words]
        feats += [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
        for w in words:
            padded = f"^{w}$"
            feats += [f"c:{padded[i : i + 3]}" for i in range(max(1, len(padded) - 2))]
        return feats

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            counts: dict[int, float] = {}
            for feat in self._features(text):
                digest = hashlib.blake2b(feat.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                index = value % self.dim
                sign = 1.0 if (value >> 63) & 1 else -1.0
                counts[index] = counts.get(index, 0.0) + sign
            for index, count in counts.items():
                out[row, index] = np.sign(count) * np.log1p(abs(count))
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out


class SentenceTransformerEmbedder:
    def __init__(self, model: str = "all-MiniLM-L6-v2") -> None:
        from sentence_transformers import SentenceTransformer  # optional extra

        self._model = SentenceTransformer(model, local_files_only=True)
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.name = f"st-{model}"

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        return np.asarray(self._model.encode(texts, normalize_embeddings=True), dtype=np.float32)


def make_embedder(kind: str) -> Embedder:
    if kind == "sentence-transformers":
        return SentenceTransformerEmbedder()
    return HashingEmbedder()
