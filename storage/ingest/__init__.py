"""Getting memories in: reading what the caller gave (text, or a file read safely), chunking and the built-in
entity extractor, embedding, adding (rows, file, vectors, graph, in the order recovery can undo), and
rebuilding the derived stores from metadata."""
