"""Bulk loading: JSONL/CSV files and the real data sets, resumable and idempotent."""

from fyp.importers.runner import ImportKind, ImportSummary, run_import

__all__ = ["ImportKind", "ImportSummary", "run_import"]
