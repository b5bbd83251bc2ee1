"""Event ingestion: validate a batch one event at a time, store the good ones durably."""

from fyp.events.ingest import EventIngestor, IngestResult

__all__ = ["EventIngestor", "IngestResult"]
