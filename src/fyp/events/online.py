"""Events → online state: what each stored event changes for the feed's very next request.

The ingestor calls :meth:`OnlineUpdater.on_stored` after the store commits, with the newly
stored events only (never duplicates). Video counters and trending take every event. A user's
part goes only to users whose online state is warm: a cold user (new, expired, or a restarted
in-process backend) is left cold, and their next feed request rebuilds them from the log, which
already holds these events. So ingestion costs the same whatever the users' history (an importer
sending the events of thousands of idle users rebuilds none of them), and the very next request
still sees every event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from fyp.config import Settings
from fyp.pipeline.catalog_index import CatalogIndex, VideoMeta
from fyp.storage.cache import (
    Fold,
    MarkWarm,
    OnlineState,
    OnlineUnavailable,
    Op,
    OpList,
    OpSink,
)
from fyp.storage.cache.base import MuteKind
from fyp.storage.data import DataStore, EventRow, LogEvent, event_row, log_event
from fyp.types import now_ms

log = logging.getLogger("fyp.events")
DAY_MS = 86_400_000
# How much of a positive goes to the creator and the sound (hashtags get all of it).
CREATOR_SHARE = 0.5
SOUND_SHARE = 0.5


class OnlineUpdater:
    """Turns events into online-state updates.

    Args:
        online: the online state.
        catalog: hashtags, sound, creator and region of videos.
        store: the durable store (a cold user's events).
        settings: signal weights (``training.weights``) and online settings.
    """

    def __init__(
        self,
        online: OnlineState,
        catalog: CatalogIndex,
        store: DataStore,
        settings: Settings,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.online = online
        self.catalog = catalog
        self.store = store
        self.settings = settings
        self.clock = clock

    # -- hooks ---------------------------------------------------------------------------------

    def on_stored(self, rows: Sequence[EventRow]) -> None:
        """Post-commit hook: apply newly stored events (a cold user's part waits for the
        rebuild from the log on their next request)."""
        if not rows:
            return
        try:
            now = self.clock()
            warm = self._warm_among({r["user_id"] for r in rows})
            metas = self.catalog.snapshot().by_id
            ops: list[Op] = []
            for r in rows:
                ops.extend(self.ops(log_event(r), now, metas, user=r["user_id"] in warm))
            self.online.apply(ops)
        except OnlineUnavailable as e:
            # The events are durable; the online state misses them until a user goes cold and
            # is rebuilt from the log.
            log.warning("online state missed %d stored events: %s", len(rows), e)

    def warm_user(self, user_id: str, now: int | None = None) -> bool:
        """Rebuild a cold user (one whose state the feed found cold) from the log; returns
        whether the state may have changed (False when rebuilds are off). A user another
        request rebuilt meanwhile is left as it is (``OnlineState.rebuild_user``)."""
        if not self._rebuilds:
            return False
        now = self.clock() if now is None else now
        self.online.rebuild_user(user_id, self._replay(user_id, now))
        return True

    def warm_videos(self, limit: int | None = None) -> int:
        """Rebuild video counters and trending from the newest ``limit`` logged events (an
        in-process backend after a restart). Returns the number of events read."""
        limit = self.settings.online.warm_events if limit is None else limit
        if limit <= 0:
            return 0
        total = self.store.count_events()
        after, n, now = max(0, total - limit), 0, self.clock()
        while True:
            page = self.store.read_events(after_seq=after, limit=5000)
            if not page:
                break
            metas = self.catalog.snapshot().by_id
            ops: list[Op] = []
            for _, e in page:
                ops.extend(self.ops(log_event(event_row(e)), now, metas, user=False))
            self.online.apply(ops)
            n += len(page)
            after = page[-1][0]
        return n

    # -- translation ---------------------------------------------------------------------------

    @property
    def _rebuilds(self) -> bool:
        """Whether cold users are rebuilt from the log; without (``warm_user_events`` 0) every
        user's state is live-only."""
        return self.settings.online.warm_user_events > 0

    def _warm_among(self, user_ids: set[str]) -> set[str]:
        """The users whose state takes live events: all of them when nobody is rebuilt."""
        if not self._rebuilds:
            return user_ids
        return self.online.warm_users(user_ids)

    def _replay(self, user_id: str, now: int) -> list[Op]:
        since = now - int(self.settings.online.user_ttl_days * DAY_MS)
        # An impression moves only the video's counters, which a replay leaves alone: asking
        # without them halves the rows read, and the limit counts only events that matter.
        o = self.settings.online
        events = self.store.user_events(user_id, since, o.warm_user_events, impressions=False)
        # Translated straight into a fold: hundreds of events, never built as ops.
        fold = Fold(o.recent_size, o.affinity_half_life_h * 3_600_000)
        metas = self.catalog.snapshot().by_id  # once: a replay is hundreds of events
        for e in events:
            self.translate(e, now, metas, fold, video=False)
        fold.add(MarkWarm(user_id))
        return fold.result()

    def ops(
        self,
        e: LogEvent,
        now: int,
        metas: Mapping[str, VideoMeta],
        *,
        user: bool = True,
        video: bool = True,
    ) -> list[Op]:
        """The updates one event makes, as ops (see ``translate``)."""
        out = OpList()
        self.translate(e, now, metas, out, user=user, video=video)
        return out.result()

    def translate(
        self,
        e: LogEvent,
        now: int,
        metas: Mapping[str, VideoMeta],
        out: OpSink,
        *,
        user: bool = True,
        video: bool = True,
    ) -> None:
        """Write the updates one event makes to ``out``: per video (``video``) and per user
        (``user``); ``metas`` is the catalog index's records by id (one snapshot for a batch
        of events)."""
        kind = e.type
        if kind == "impression" and not video:
            return  # an impression only counts for the video
        w = self.settings.training.weights
        uid, vid = e.user_id, e.video_id
        ts = min(e.ts_ms, now)
        meta = metas.get(vid) if vid else None
        creator = e.creator_id or (meta.creator_id if meta else None)
        counted = vid if video else None  # the video whose counters and heat this event moves

        def count(name: str, n: int = 1) -> None:
            if counted:
                out.count(counted, name, n)

        def heat(delta: float) -> None:
            if counted and delta:
                out.heat(counted, meta.region if meta else None, delta, ts)

        def taste(weight: float, engage: bool) -> None:
            if not user:
                return
            if engage and vid and weight >= w.min_positive:
                out.engage(uid, vid, weight)
            if meta is not None:
                for t in meta.hashtags:
                    out.affinity(uid, "hashtag", t, weight, ts)
                if meta.sound_id:
                    out.affinity(uid, "sound", meta.sound_id, weight * SOUND_SHARE, ts)
            if creator:
                out.affinity(uid, "creator", creator, weight * CREATOR_SHARE, ts)
                if weight > 0:
                    out.reset(uid, "skip", creator)

        def mute(what: MuteKind, key: str | None) -> None:
            if user and key:
                out.mute(uid, what, key, ts)

        if kind == "impression":
            count("impressions")
        elif kind == "play":
            count("plays")
            duration = meta.duration_ms if meta else None
            watch = e.watch_ms or 0
            if duration:
                completion = watch / duration
                weight = w.play * min(completion, w.completion_cap)
                if completion >= w.complete_threshold:
                    count("completes")
                    weight += w.complete_bonus
            else:
                weight = w.play_unknown_duration
            heat(weight)
            taste(weight, engage=True)
        elif kind in ("like", "share", "comment"):
            count({"like": "likes", "share": "shares", "comment": "comments"}[kind])
            weight = float(getattr(w, kind))
            heat(weight)
            taste(weight, engage=True)
        elif kind == "unlike":
            count("likes", -1)
            taste(-w.like, engage=False)
        elif kind in ("follow", "unfollow"):
            sign = 1.0 if kind == "follow" else -1.0
            if kind == "follow":
                count("follows")
                heat(w.follow)
            if user and creator:
                out.affinity(uid, "creator", creator, sign * 2 * w.follow, ts)
        elif kind == "profile_visit":
            if user and creator:
                out.affinity(uid, "creator", creator, w.profile_visit, ts)
        elif kind == "skip":
            count("skips")
            taste(w.skip, engage=False)
            if user and creator:
                out.affinity(uid, "skip", creator, 1.0, ts)
        elif kind == "not_interested":
            if vid:
                count("not_interested")
                mute("video", vid)
                mute("creator", creator)
                mute("sound", meta.sound_id if meta else None)
            else:
                mute("creator", creator)
                mute("sound", e.sound_id)
                mute("hashtag", e.hashtag)
        elif kind == "report":
            count("reports")
            mute("report", vid)
