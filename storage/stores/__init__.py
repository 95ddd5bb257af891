"""The stores, one module each behind its Protocol: metadata (the truth, with its schema), files, graph,
vectors, the embedding cache, and the lock that shares one data directory between processes. Nothing here
imports anything above it."""
