"""An in-process index of the servable catalog: videos by id, hashtag, sound and creator, and the
newest first. Sources read it instead of the store.

The first load pages through the whole catalog; after that, every ``refresh_s`` a background
thread reads only the videos whose record changed since the last read (``videos_changed``, an
indexed keyset read) and applies them in place: an upload joins the lists, a moderation change
moves a video in or out. Only ``approved`` and ``limited`` videos are indexed. The feed re-reads
the videos it finally serves from the store, so a moderation change takes effect at once even
before a refresh.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from sys import intern

from fyp.config import ModerationState
from fyp.storage.data import CatalogRow, DataStore

log = logging.getLogger("fyp.feed")
SERVABLE: tuple[ModerationState, ...] = ("approved", "limited")
# Changes are re-read this far back: a write whose transaction commits after a refresh read
# past its updated_ms (or a writer whose clock lags) is still picked up by the next refresh.
OVERLAP_MS = 60_000
# More changes than this in one refresh (a bulk upload) rebuild the index instead.
REBUILD_ABOVE = 5_000
PAGE = 5_000


@dataclass(frozen=True, slots=True)
class VideoMeta:
    """What ranking needs of a video (the response re-reads the full record)."""

    id: str
    creator_id: str
    hashtags: tuple[str, ...]
    sound_id: str | None
    duration_ms: int | None
    language: str | None
    region: str | None
    created_ms: int
    moderation: str
    allowed_regions: tuple[str, ...] | None

    @classmethod
    def of_row(cls, r: CatalogRow) -> VideoMeta:
        # Creators, hashtags, sounds, languages and regions repeat across the catalog: one
        # shared copy of each string (and of each hashtag tuple) instead of one per video.
        # The id is interned too: the models and the in-process online state intern theirs, so
        # a candidate's id is the very key object of every map it is looked up in.
        return cls(
            id=intern(r.id),
            creator_id=intern(r.creator_id),
            hashtags=_shared_tuple(r.hashtags),
            sound_id=intern(r.sound_id) if r.sound_id else r.sound_id,
            duration_ms=r.duration_ms,
            language=intern(r.language) if r.language else r.language,
            region=intern(r.region) if r.region else r.region,
            created_ms=r.created_ms,
            moderation=intern(r.moderation),
            allowed_regions=(
                _shared_tuple(r.allowed_regions) if r.allowed_regions is not None else None
            ),
        )


_TUPLES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared_tuple(items: Iterable[str]) -> tuple[str, ...]:
    t = tuple(intern(x) for x in items)
    if len(_TUPLES) > 1_000_000:  # a bound, not a cache policy: distinct tag sets are few
        _TUPLES.clear()
    return _TUPLES.setdefault(t, t)


def _newest_first(m: VideoMeta) -> tuple[int, str]:
    return -m.created_ms, m.id


class _Snapshot:
    """``newest`` holds the records themselves (newest first), so the sources that walk it
    (fresh, backfill) read a video's fields without a look-up by id per video."""

    def __init__(self, metas: list[VideoMeta]) -> None:
        self.by_id = {m.id: m for m in metas}
        newest = sorted(metas, key=_newest_first)
        self.newest: list[VideoMeta] = newest
        self.by_hashtag: dict[str, list[str]] = {}
        self.by_sound: dict[str, list[str]] = {}
        self.by_creator: dict[str, list[str]] = {}
        for m in newest:
            for tag in m.hashtags:
                self.by_hashtag.setdefault(tag, []).append(m.id)
            if m.sound_id:
                self.by_sound.setdefault(m.sound_id, []).append(m.id)
            self.by_creator.setdefault(m.creator_id, []).append(m.id)

    def _order(self, vid: str) -> tuple[int, str]:
        return -self.by_id[vid].created_ms, vid

    def _lists(self, m: VideoMeta) -> list[list[str]]:
        out = [self.by_creator.setdefault(m.creator_id, [])]
        out.extend(self.by_hashtag.setdefault(t, []) for t in dict.fromkeys(m.hashtags))
        if m.sound_id:
            out.append(self.by_sound.setdefault(m.sound_id, []))
        return out

    def apply(self, m: VideoMeta | None, vid: str) -> None:
        """Put ``m`` in place of video ``vid`` (None: it is no longer servable). Readers on
        other threads see each list change at once (single list operations under the GIL)."""
        old = self.by_id.get(vid)
        if old == m:
            return
        if old is not None:
            # Found by its key in O(log n), not by a scan of a million records.
            at = bisect.bisect_left(self.newest, _newest_first(old), key=_newest_first)
            if at < len(self.newest) and self.newest[at] is old:
                del self.newest[at]
            for lst in self._lists(old):
                with contextlib.suppress(ValueError):
                    lst.remove(vid)
            del self.by_id[vid]
        if m is not None:
            self.by_id[vid] = m
            bisect.insort(self.newest, m, key=_newest_first)
            for lst in self._lists(m):
                bisect.insort(lst, vid, key=self._order)


class CatalogIndex:
    """Servable videos in memory, kept current from ``store`` at most every ``refresh_s``.

    Args:
        store: the durable store (read with keyset pagination on (updated_ms, id)).
        refresh_s: staleness allowed; 0 re-reads what changed on every access (tests).
    """

    def __init__(
        self,
        store: DataStore,
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.clock = clock
        self._snap = _Snapshot([])
        self._loaded = -float("inf")
        self._high = -1  # the newest updated_ms read so far; -1: never loaded
        self._preloaded = False
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the full load has happened (a serving process does it at start-up)."""
        return self._preloaded or self._loaded != -float("inf")

    def preload(self) -> None:
        """The full load, now (a serving process at start-up, so that no request pays for it).
        The first ``snapshot()`` still catches up in the caller, as it did when it loaded: it
        reads only what changed since, so videos stored right before the first feed request
        are in it, as they were when that request did the whole load."""
        with self._lock:
            self._update()
            self._preloaded = True

    def snapshot(self) -> _Snapshot:
        """The current index. Only the first load (and every refresh with ``refresh_s`` 0)
        happens in the caller; later refreshes run in a background thread, so a slow store
        never stalls a feed or an ingest request."""
        if self._loaded == -float("inf") or self.refresh_s == 0:
            with self._lock:
                if self._loaded == -float("inf") or self.refresh_s == 0:
                    self._update()
                    self._loaded = self.clock()
        elif self.clock() - self._loaded >= self.refresh_s and self._lock.acquire(blocking=False):
            threading.Thread(target=self._refresh, name="catalog-index", daemon=True).start()
        return self._snap

    def _refresh(self) -> None:
        try:
            self._update()
        except Exception:
            log.exception("catalog index refresh failed; serving the previous one")
        finally:
            self._loaded = self.clock()  # a failed refresh also waits refresh_s before retrying
            self._lock.release()

    def _pages(self, since_ms: int) -> Iterator[list[CatalogRow]]:
        """Rows changed at or after ``since_ms``, a page at a time (keyset on (updated_ms, id))."""
        after: tuple[int, str] | None = None
        while True:
            page = self.store.videos_changed(since_ms, after=after, limit=PAGE)
            yield page
            if len(page) < PAGE:
                return
            after = (page[-1].updated_ms, page[-1].id)

    def _changes(self, since_ms: int, stop_above: int) -> list[CatalogRow] | None:
        """Rows changed at or after ``since_ms``; None once more than ``stop_above`` of them
        are newer than the newest change already applied (the overlap window re-reads the
        rest, which a bulk load can make large, and they must not force a rebuild forever)."""
        rows: list[CatalogRow] = []
        new = 0
        for page in self._pages(since_ms):
            rows.extend(page)
            new += sum(1 for r in page if r.updated_ms > self._high)
            if new > stop_above:
                return None
        return rows

    def _update(self) -> None:
        t0 = time.perf_counter()
        rows = None
        if self._high >= 0:
            rows = self._changes(self._high - OVERLAP_MS, REBUILD_ABOVE)
        high = -1
        if rows is None:  # the first load, or too much changed: rebuild
            # Page by page: a million rows held at once would leave the allocator's arenas
            # holding their memory after they are freed (a million videos: 1,147 MB -> 471 MB).
            metas: list[VideoMeta] = []
            n = 0
            for page in self._pages(0):
                n += len(page)
                high = max(high, max((r.updated_ms for r in page), default=-1))
                metas.extend(VideoMeta.of_row(r) for r in page if r.moderation in SERVABLE)
            self._snap = _Snapshot(metas)
            how = "loaded"
        else:
            snap = self._snap
            for r in rows:
                snap.apply(VideoMeta.of_row(r) if r.moderation in SERVABLE else None, r.id)
                high = max(high, r.updated_ms)
            n, how = len(rows), "updated"
        self._high = max(self._high, high)
        ms = (time.perf_counter() - t0) * 1000
        if ms > 100:
            log.info("catalog index %s from %d videos in %.0f ms", how, n, ms)

    def get(self, video_id: str) -> VideoMeta | None:
        return self.snapshot().by_id.get(video_id)
