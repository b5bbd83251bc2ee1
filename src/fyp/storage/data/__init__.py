"""The durable store (catalog, graph, event log), opened by URL scheme."""

from __future__ import annotations

from typing import Any

from fyp.storage.data.base import (
    CatalogRow,
    DataStore,
    EventRow,
    LeaseRow,
    LogEvent,
    MigrationStatus,
    ServedRow,
    StoreUnavailable,
    event_row,
    log_event,
)

__all__ = [
    "CatalogRow",
    "DataStore",
    "EventRow",
    "LeaseRow",
    "LogEvent",
    "MigrationStatus",
    "ServedRow",
    "StoreUnavailable",
    "event_row",
    "log_event",
    "open_data_store",
]


def open_data_store(url: str, **options: Any) -> DataStore:
    """Open the backend named by the URL: ``memory://``, ``sqlite:///path``, ``postgresql+psycopg://``."""
    if url.startswith("memory:"):
        from fyp.storage.data.memory import MemoryDataStore

        return MemoryDataStore(url)
    if url.startswith(("sqlite:", "postgresql")):
        from fyp.storage.data.sql import SqlDataStore

        # options (-- scale --): pool_size, pool_timeout_s, connect_timeout_s, statement_timeout_s
        return SqlDataStore(url, **options)
    raise ValueError(
        f"unknown database URL {url!r}: use memory://, sqlite:///path or postgresql+psycopg://..."
    )
