"""Feed rows to the catalog or the event ingestor in batches, with progress and a summary.

Progress is committed per batch: an interrupted import resumes after the last committed batch,
and re-running a finished import stores nothing new (upserts and event ids are idempotent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Any

from fyp.catalog import Catalog
from fyp.events import EventIngestor
from fyp.models import Rejection
from fyp.storage.data import DataStore


class ImportKind(StrEnum):
    users = "users"
    videos = "videos"
    events = "events"


@dataclass
class ImportSummary:
    kind: ImportKind
    read: int = 0
    skipped: int = 0  # rows already committed by an earlier, interrupted run
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add_rejections(self, rejected: list[Rejection], first_row: int) -> None:
        self.rejected += len(rejected)
        for r in rejected:
            # Group reasons by their shape, not their ids, so the summary stays short.
            self.reasons[r.reason.split("'")[0].strip()] += 1
            if len(self.examples) < 10:
                self.examples.append(f"row {first_row + r.index + 1}: {r.reason}")


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(rows, size)):
        yield batch


def run_import(
    kind: ImportKind,
    rows: Iterable[Any],
    store: DataStore,
    catalog: Catalog,
    ingestor: EventIngestor,
    *,
    source: str,
    batch_size: int = 1000,
    on_progress: Callable[[int], None] = lambda n: None,
) -> ImportSummary:
    """Import ``rows``; ``source`` names the input for resuming (include a file fingerprint)."""
    summary = ImportSummary(kind=kind)
    done = store.import_progress(source)
    it = iter(rows)
    if done:
        summary.skipped = sum(1 for _ in islice(it, done))
        on_progress(summary.skipped)
    position = summary.skipped
    for batch in _batches(it, batch_size):
        summary.read += len(batch)
        if kind is ImportKind.events:
            result = ingestor.ingest(batch)
            summary.stored += result.stored
            summary.duplicates += result.duplicates
            summary.add_rejections(result.rejected, position)
        else:
            upsert = catalog.upsert_users if kind is ImportKind.users else catalog.upsert_videos
            bulk = upsert(batch)
            summary.stored += bulk.stored
            summary.add_rejections(bulk.rejected, position)
        position += len(batch)
        store.set_import_progress(source, position)
        on_progress(len(batch))
    return summary
