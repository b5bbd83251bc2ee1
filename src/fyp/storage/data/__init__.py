"""The durable store (catalog, graph, event log), opened by URL scheme."""

from __future__ import annotations

from fyp.storage.data.base import DataStore, EventRow, MigrationStatus, StoreUnavailable

__all__ = ["DataStore", "EventRow", "MigrationStatus", "StoreUnavailable", "open_data_store"]


def open_data_store(url: str) -> DataStore:
    """Open the backend named by the URL: ``memory://``, ``sqlite:///path``, ``postgresql+psycopg://``."""
    if url.startswith("memory:"):
        from fyp.storage.data.memory import MemoryDataStore

        return MemoryDataStore(url)
    if url.startswith(("sqlite:", "postgresql")):
        from fyp.storage.data.sql import SqlDataStore

        return SqlDataStore(url)
    raise ValueError(
        f"unknown database URL {url!r}: use memory://, sqlite:///path or postgresql+psycopg://..."
    )
