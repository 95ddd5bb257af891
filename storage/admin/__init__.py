"""Reading and looking after the store: the read paths (datasets, pages of items, search, the audit log) and
maintenance (doctor: every store checked against the metadata, and its repair)."""
