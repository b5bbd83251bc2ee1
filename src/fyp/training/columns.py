"""What training reads of the store, as plain columns: the event log and the catalog.

The store's own reads build one record per row (``read_events`` a pydantic ``Event`` with
datetimes, ``list_videos`` a ``Video``), which costs tens of microseconds a row: over ten
million events that was most of a training run. On the SQL backends training reads the columns
it needs with one keyset-paged SELECT instead (about a microsecond a row, measured by
``bench/feed.py``); any other store is read through its records.

The SQL reads open their own short-lived engine on ``store.url`` (read only). The natural home
of :func:`read_log` and :func:`read_catalog` is the ``DataStore`` contract itself; they live here
until the store grows column reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa

from fyp.models import Event, Video
from fyp.storage.data import DataStore
from fyp.storage.data import schema as t


def ts_ms(event: Event) -> int:
    return int(event.ts.timestamp() * 1000)


def read_pages(
    store: DataStore, page_size: int = 10_000, after_seq: int = 0
) -> Iterator[list[tuple[int, Event]]]:
    """The event log after ``after_seq`` in log order, one page of records at a time."""
    seq = after_seq
    while True:
        page = store.read_events(seq, page_size)
        if not page:
            return
        yield page
        seq = page[-1][0]
        if len(page) < page_size:
            return


def catalog(store: DataStore, page: int = 1000) -> list[Video]:
    """Every video in the store (any moderation state), in id order, as records."""
    videos: list[Video] = []
    after: str | None = None
    while True:
        chunk = store.list_videos(after=after, limit=page)
        videos += chunk
        if len(chunk) < page:
            return videos
        after = chunk[-1].id


@dataclass(frozen=True, slots=True)
class LogPage:
    """Consecutive events of the log, one list per column, in log order."""

    seq: Sequence[int]
    user_id: Sequence[str]
    video_id: Sequence[str | None]
    creator_id: Sequence[str | None]
    type: Sequence[str]
    ts_ms: Sequence[int]
    watch_ms: Sequence[int | None]
    request_id: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.seq)

    @classmethod
    def from_events(cls, page: Sequence[tuple[int, Event]]) -> LogPage:
        return cls(
            seq=[s for s, _ in page],
            user_id=[e.user_id for _, e in page],
            video_id=[e.video_id for _, e in page],
            creator_id=[e.creator_id for _, e in page],
            type=[e.type.value for _, e in page],
            ts_ms=[ts_ms(e) for _, e in page],
            watch_ms=[e.watch_ms for _, e in page],
            request_id=[e.request_id for _, e in page],
        )


class CatalogVideo(NamedTuple):
    """What training needs of a video: its brief (creator, duration) and its content tokens."""

    id: str
    creator_id: str
    caption: str
    hashtags: list[str]
    sound_id: str | None
    duration_ms: int | None


def _sql(store: DataStore) -> bool:
    from fyp.storage.data.sql import SqlDataStore

    return isinstance(store, SqlDataStore)


def read_log(store: DataStore, page_size: int = 10_000, after_seq: int = 0) -> Iterator[LogPage]:
    """The event log after ``after_seq`` in log order, ``page_size`` events at a time."""
    if not _sql(store):
        for page in read_pages(store, page_size, after_seq):
            yield LogPage.from_events(page)
        return
    c = t.events.c
    cols = (c.seq, c.user_id, c.video_id, c.creator_id, c.type, c.ts_ms, c.watch_ms, c.request_id)
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            seq = after_seq
            while True:
                q = sa.select(*cols).where(c.seq > seq).order_by(c.seq).limit(page_size)
                rows = conn.execute(q).all()
                if not rows:
                    return
                yield LogPage(*zip(*rows, strict=True))
                seq = rows[-1][0]
                if len(rows) < page_size:
                    return
    finally:
        engine.dispose()


def read_catalog(store: DataStore, page_size: int = 50_000) -> list[CatalogVideo]:
    """Every video in the store (any moderation state), in id order."""
    if not _sql(store):
        return [
            CatalogVideo(v.id, v.creator_id, v.caption, v.hashtags, v.sound_id, v.duration_ms)
            for v in catalog(store)
        ]
    c = t.videos.c
    cols = (c.id, c.creator_id, c.caption, c.hashtags, c.sound_id, c.duration_ms)
    out: list[CatalogVideo] = []
    engine = sa.create_engine(store.url, json_deserializer=orjson.loads)
    try:
        with engine.connect() as conn:
            after: Any = None
            while True:
                q = sa.select(*cols).order_by(c.id).limit(page_size)
                if after is not None:
                    q = q.where(c.id > after)
                rows = conn.execute(q).all()
                out += [CatalogVideo(*r) for r in rows]
                if len(rows) < page_size:
                    return out
                after = rows[-1][0]
    finally:
        engine.dispose()
