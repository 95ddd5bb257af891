"""The delete path, one for every deleting call: targets (what a call names), the planner (what goes and what
stays), the deleter (journal, derived stores, purge, erase), the report, prune, and recovery (resume after a
crash, roll back half-done adds, finish a pending erase)."""
