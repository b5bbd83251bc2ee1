from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase
from fyp.storage.data import DataStore, ServedRow

log = logging.getLogger("fyp.feed")
MAX_PENDING = 100_000


class ServedLogSideEffect(StageBase):
    """Appends the served items to the durable served log with the features they were ranked
    on, their source, score and experiment arms (what the ranker trains on, what experiments
    attribute events with, and what never-repeat falls back on after a restart).

    With ``flush_ms > 0`` rows are written in batches by a background thread (one commit per
    batch instead of one per request, which on SQLite with synchronous=FULL is an fsync each);
    ``close()`` writes what is left. With 0, each request's rows are written at once.
    """

    def __init__(self, store: DataStore, flush_ms: float = 0.0) -> None:
        self.store = store
        self.flush_s = flush_ms / 1000
        self.blocks = self.flush_s <= 0  # batched: run() only appends to the pending rows
        self._pending: list[ServedRow] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def run(self, query: Query, served: list[Candidate]) -> None:
        rows = [
            ServedRow(
                request_id=query.request_id,
                user_id=query.user.id,
                video_id=c.video_id,
                position=query.offset + i,
                served_ms=query.now_ms,
                source=c.source,
                score=c.score if math.isfinite(c.score) else None,
                # JSON has no NaN: missing features are left out (the ranker reads them as NaN).
                features={k: v for k, v in c.features.items() if math.isfinite(v)},
                arms=dict(query.arms),
            )
            for i, c in enumerate(served)
        ]
        if self.flush_s <= 0 or self._closed:
            self.store.log_served(rows)
            return
        with self._cond:
            if len(self._pending) >= MAX_PENDING:
                log.warning("served log backlog full; dropping %d rows", len(rows))
                return
            self._pending.extend(rows)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="served-log", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(self.flush_s)
                batch, self._pending = self._pending, []
                closed = self._closed
            self._write(batch)
            if closed:
                return

    def _write(self, batch: Sequence[ServedRow]) -> None:
        if not batch:
            return
        try:
            self.store.log_served(batch)
        except Exception:
            log.exception("served log write of %d rows failed", len(batch))

    def close(self) -> None:
        """Write what is pending and stop the writer thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        with self._cond:
            batch, self._pending = self._pending, []
        self._write(batch)
