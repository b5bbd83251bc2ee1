"""An in-process index of the servable catalog: videos by id, hashtag, sound and creator, and the
newest first. Sources read it instead of the store; it re-reads the store when stale.

Only ``approved`` and ``limited`` videos are indexed. The feed re-reads the videos it finally
serves from the store, so a moderation change takes effect at once even before a refresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fyp.config import ModerationState
from fyp.models import Video
from fyp.storage.data import DataStore
from fyp.types import to_ms

log = logging.getLogger("fyp.feed")
SERVABLE: tuple[ModerationState, ...] = ("approved", "limited")


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
    def of(cls, v: Video) -> VideoMeta:
        return cls(
            id=v.id,
            creator_id=v.creator_id,
            hashtags=tuple(v.hashtags),
            sound_id=v.sound_id,
            duration_ms=v.duration_ms,
            language=v.language,
            region=v.region,
            created_ms=to_ms(v.created_at),
            moderation=v.moderation,
            allowed_regions=tuple(v.allowed_regions) if v.allowed_regions is not None else None,
        )


class _Snapshot:
    def __init__(self, metas: list[VideoMeta]) -> None:
        self.by_id = {m.id: m for m in metas}
        newest = sorted(metas, key=lambda m: (-m.created_ms, m.id))
        self.newest = [m.id for m in newest]
        self.by_hashtag: dict[str, list[str]] = {}
        self.by_sound: dict[str, list[str]] = {}
        self.by_creator: dict[str, list[str]] = {}
        for m in newest:
            for tag in m.hashtags:
                self.by_hashtag.setdefault(tag, []).append(m.id)
            if m.sound_id:
                self.by_sound.setdefault(m.sound_id, []).append(m.id)
            self.by_creator.setdefault(m.creator_id, []).append(m.id)


class CatalogIndex:
    """Servable videos in memory, refreshed from ``store`` at most every ``refresh_s``.

    Args:
        store: the durable store (read with keyset pagination).
        refresh_s: staleness allowed; 0 re-reads on every access (tests).
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
        self._lock = threading.Lock()

    def snapshot(self) -> _Snapshot:
        """The current index. Only the first load (and every load with ``refresh_s`` 0)
        happens in the caller; later refreshes run in a background thread, so a slow store
        never stalls a feed or an ingest request."""
        if self._loaded == -float("inf") or self.refresh_s == 0:
            with self._lock:
                if self._loaded == -float("inf") or self.refresh_s == 0:
                    self._snap = self._load()
                    self._loaded = self.clock()
        elif self.clock() - self._loaded >= self.refresh_s and self._lock.acquire(blocking=False):
            threading.Thread(target=self._refresh, name="catalog-index", daemon=True).start()
        return self._snap

    def _refresh(self) -> None:
        try:
            self._snap = self._load()
        except Exception:
            log.exception("catalog index refresh failed; serving the previous one")
        finally:
            self._loaded = self.clock()  # a failed refresh also waits refresh_s before retrying
            self._lock.release()

    def _load(self) -> _Snapshot:
        t0 = time.perf_counter()
        metas: list[VideoMeta] = []
        for state in SERVABLE:
            after: str | None = None
            while True:
                page = self.store.list_videos(moderation=state, after=after, limit=1000)
                metas.extend(VideoMeta.of(v) for v in page)
                if len(page) < 1000:
                    break
                after = page[-1].id
        snap = _Snapshot(metas)
        ms = (time.perf_counter() - t0) * 1000
        if ms > 100:
            log.info("catalog index: %d videos loaded in %.0f ms", len(metas), ms)
        return snap

    def get(self, video_id: str) -> VideoMeta | None:
        return self.snapshot().by_id.get(video_id)
