"""The ingest step of the data flow: app events → validation → the durable event log.

A batch is judged event by event: valid events are stored (idempotently, by ``event_id``), and
each invalid one is reported with its index and a reason. Only the shape of the whole request
(not a list, too many events) refuses the batch outright.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from fyp.config import IngestSettings
from fyp.models import BatchRefused, Rejection, describe
from fyp.models.events import EventIn, EventType
from fyp.storage.data import DataStore, EventRow
from fyp.types import now_ms, to_ms

_EVENT = TypeAdapter(EventIn)
log = logging.getLogger("fyp.events")


@dataclass(slots=True)
class IngestResult:
    received: int
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    stored_ids: list[str] = field(default_factory=list)


class EventIngestor:
    def __init__(
        self,
        store: DataStore,
        settings: IngestSettings,
        clock: Callable[[], int] = now_ms,
        on_stored: Callable[[Sequence[EventRow]], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        # -- post-commit hook -- called with the newly stored rows (no duplicates) after the
        # store commits, so online state never runs ahead of the durable log.
        self.on_stored = on_stored

    def parse(self, payload: Any) -> list[Any]:
        """Accept ``{"events": [...]}`` (or a bare list) and check the batch size."""
        items = payload.get("events") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise BatchRefused(422, "invalid_batch", 'the body must be {"events": [...]}')
        if len(items) > self.settings.max_batch:
            raise BatchRefused(
                413,
                "batch_too_large",
                f"a batch holds at most {self.settings.max_batch} events; this one has "
                f"{len(items)}: split it",
            )
        return items

    def ingest(self, payload: Any) -> IngestResult:
        items = self.parse(payload)
        result = IngestResult(received=len(items))
        now = self.clock()
        horizon = now + int(self.settings.max_future_skew_s * 1000)

        valid: list[tuple[int, EventIn]] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            try:
                ev = _EVENT.validate_python(item)
            except ValidationError as e:
                eid = item.get("event_id") if isinstance(item, dict) else None
                result.rejected.append(
                    Rejection(i, eid if isinstance(eid, str) else None, describe(e))
                )
                continue
            if to_ms(ev.ts) > horizon:
                result.rejected.append(
                    Rejection(i, ev.event_id, "ts is further in the future than the server allows")
                )
                continue
            if ev.event_id in seen:
                result.duplicates += 1
                continue
            seen.add(ev.event_id)
            valid.append((i, ev))

        rows = self._resolve(valid, now, result)
        if rows:
            result.stored_ids = self.store.append_events(rows)
            result.stored = len(result.stored_ids)
            result.duplicates += len(rows) - result.stored
            if self.on_stored is not None and result.stored_ids:
                self._post_commit(rows, result.stored_ids)
        result.rejected.sort(key=lambda r: r.index)
        return result

    def _post_commit(self, rows: list[EventRow], stored_ids: list[str]) -> None:
        # The events are durable already: a failing hook must not fail the request. Rows are
        # unique by event_id here (the batch was de-duplicated before the store saw it).
        fresh = set(stored_ids)
        first = [r for r in rows if r["event_id"] in fresh]
        try:
            assert self.on_stored is not None
            self.on_stored(first)
        except Exception:
            log.exception("online state update failed for %d stored events", len(first))

    def _resolve(
        self, valid: list[tuple[int, EventIn]], now: int, result: IngestResult
    ) -> list[EventRow]:
        """Check that users, videos and creators exist; fill a follow's creator from its video."""
        user_ids = {ev.user_id for _, ev in valid}
        creator_ids = {ev.creator_id for _, ev in valid if ev.creator_id}
        video_ids = {ev.video_id for _, ev in valid if ev.video_id}
        known_users = self.store.existing_user_ids(user_ids | creator_ids)
        briefs = self.store.video_briefs(video_ids)
        auto = self.settings.auto_create_users
        to_create: set[str] = set()

        rows: list[EventRow] = []
        for i, ev in valid:
            new_user = ev.user_id not in known_users
            if new_user and not auto:
                result.rejected.append(Rejection(i, ev.event_id, f"unknown user {ev.user_id!r}"))
                continue
            creator = ev.creator_id
            if ev.video_id is not None:
                brief = briefs.get(ev.video_id)
                if brief is None:
                    result.rejected.append(
                        Rejection(i, ev.event_id, f"unknown video {ev.video_id!r}")
                    )
                    continue
                if creator is None and ev.type in (EventType.follow, EventType.unfollow):
                    creator = brief.creator_id
            if creator == ev.user_id and ev.type in (EventType.follow, EventType.unfollow):
                result.rejected.append(Rejection(i, ev.event_id, "a user cannot follow themselves"))
                continue
            if ev.creator_id is not None and ev.creator_id not in known_users:
                result.rejected.append(
                    Rejection(i, ev.event_id, f"unknown creator {ev.creator_id!r}")
                )
                continue
            if new_user:
                to_create.add(ev.user_id)
            rows.append(
                {
                    "event_id": ev.event_id,
                    "user_id": ev.user_id,
                    "video_id": ev.video_id,
                    "creator_id": creator,
                    "sound_id": ev.sound_id,
                    "hashtag": ev.hashtag,
                    "type": ev.type.value,
                    "ts_ms": to_ms(ev.ts),
                    "received_ms": now,
                    "watch_ms": ev.watch_ms,
                    "request_id": ev.request_id,
                    "extra": ev.extra,
                }
            )
        if to_create:
            self.store.create_missing_users(to_create)
        return rows
