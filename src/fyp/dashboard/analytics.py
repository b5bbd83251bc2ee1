"""Dashboard analytics: the event log folded into per-minute, per-video, per-tag aggregates.

The aggregates live in the process and are brought up to date incrementally: each refresh reads
only the events logged since the last one (``DataStore.read_events(after_seq)``), so it works
the same over every backend and costs nothing while nobody watches the dashboard. Time is the
event's own ``ts`` (when the user acted), not when the server received it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fyp.models import Event, Video
from fyp.storage.data import DataStore
from fyp.types import now_ms

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
# What one event adds to a video's engagement (velocity, trending); a completed play counts too.
ENGAGEMENT = {"like": 1.0, "share": 2.0, "comment": 1.5, "follow": 1.5}
COMPLETE_WEIGHT = 0.5
COMPLETE_SHARE = 0.9  # a play reaching this share of the duration completes the video
VIEW_TYPES = frozenset({"impression", "play"})


@dataclass
class _Minute:
    events: int = 0
    users: set[str] = field(default_factory=set)
    watch_ms: int = 0
    plays: int = 0
    completes: int = 0
    skips: int = 0
    impressions: int = 0


@dataclass
class _VideoStats:
    impressions: int = 0
    plays: int = 0
    completes: int = 0
    likes: int = 0
    shares: int = 0
    comments: int = 0
    skips: int = 0
    reports: int = 0
    not_interested: int = 0
    watch_ms: int = 0
    # engagement weight per hour (epoch hour -> weight): velocity and growth
    hourly: dict[int, float] = field(default_factory=lambda: defaultdict(float))


@dataclass
class _CreatorStats:
    viewers: set[str] = field(default_factory=set)
    impressions: int = 0
    plays: int = 0
    completes: int = 0
    watch_ms: int = 0
    likes: int = 0
    followers_gained: int = 0
    followers_lost: int = 0


@dataclass
class _TagStats:
    views: int = 0
    engagement: float = 0.0
    hourly: dict[int, float] = field(default_factory=lambda: defaultdict(float))


@dataclass(frozen=True)
class _VideoInfo:
    creator_id: str
    hashtags: tuple[str, ...]
    sound_id: str | None
    duration_ms: int | None
    caption: str
    moderation: str


def _info(v: Video) -> _VideoInfo:
    return _VideoInfo(
        creator_id=v.creator_id,
        hashtags=tuple(v.hashtags),
        sound_id=v.sound_id,
        duration_ms=v.duration_ms,
        caption=v.caption,
        moderation=v.moderation,
    )


def _rate(num: float, den: float) -> float | None:
    return num / den if den else None


class Analytics:
    """Aggregates of the event log for the dashboard, refreshed on demand.

    Args:
        store: the durable store (events, videos, users).
        refresh_s: a query re-reads the log at most this often.
        max_events: at start-up, only about this many of the newest events are folded in.
        window_hours: per-minute series are kept this long (older minutes are dropped).
        clock: epoch milliseconds (tests pass a fake one).
    """

    def __init__(
        self,
        store: DataStore,
        *,
        refresh_s: float = 2.0,
        max_events: int = 2_000_000,
        window_hours: float = 72.0,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.max_events = max_events
        self.window_ms = int(window_hours * HOUR_MS)
        self._clock = clock
        self._lock = threading.Lock()
        self._seq: int | None = None
        self._checked = -math.inf
        self.minutes: dict[int, _Minute] = defaultdict(_Minute)
        self.by_video: dict[str, _VideoStats] = defaultdict(_VideoStats)
        self.by_creator: dict[str, _CreatorStats] = defaultdict(_CreatorStats)
        self.creator_regions: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_hashtag: dict[str, _TagStats] = defaultdict(_TagStats)
        self.by_sound: dict[str, _TagStats] = defaultdict(_TagStats)
        self.users_seen: set[str] = set()
        self.type_totals: Counter[str] = Counter()
        self._info: dict[str, _VideoInfo | None] = {}
        self._region: dict[str, str | None] = {}
        self._trimmed_hour = -1

    # -- folding the log in --
    def refresh(self, force: bool = False) -> None:
        """Fold in the events logged since the last refresh (at most every ``refresh_s``)."""
        if not force and time.monotonic() - self._checked < self.refresh_s:
            return
        with self._lock:
            if self._seq is None:
                self._seq = max(0, self.store.count_events() - self.max_events)
                self._load_catalog()
            while True:
                page = self.store.read_events(self._seq, 5000)
                for seq, event in page:
                    self._add(event)
                    self._seq = seq
                if len(page) < 5000:
                    break
            self._checked = time.monotonic()
            self._trim()

    def _load_catalog(self, most: int = 100_000) -> None:
        # One query per thousand videos instead of one per video met in the log.
        after: str | None = None
        while len(self._info) < most:
            page = self.store.list_videos(after=after, limit=1000)
            for v in page:
                self._info[v.id] = _info(v)
            if len(page) < 1000:
                break
            after = page[-1].id

    def forget_video(self, video_id: str) -> None:
        """Drop the cached catalog facts of a video (after a moderation change)."""
        with self._lock:
            self._info.pop(video_id, None)

    def _video(self, video_id: str) -> _VideoInfo | None:
        if video_id not in self._info:
            v = self.store.get_video(video_id)
            self._info[video_id] = None if v is None else _info(v)
        return self._info[video_id]

    def _user_region(self, user_id: str) -> str | None:
        if user_id not in self._region:
            u = self.store.get_user(user_id)
            self._region[user_id] = None if u is None else u.region
        return self._region[user_id]

    def _add(self, e: Event) -> None:
        ts = int(e.ts.timestamp() * 1000)
        kind = e.type.value
        self.type_totals[kind] += 1
        self.users_seen.add(e.user_id)
        m = self.minutes[ts // MINUTE_MS]
        m.events += 1
        m.users.add(e.user_id)
        info = self._video(e.video_id) if e.video_id else None
        complete = False
        if kind == "play":
            watch = e.watch_ms or 0
            m.plays += 1
            m.watch_ms += watch
            if info is not None and info.duration_ms:
                complete = watch / info.duration_ms >= COMPLETE_SHARE
            m.completes += complete
        elif kind == "skip":
            m.skips += 1
        elif kind == "impression":
            m.impressions += 1
        if kind in ("follow", "unfollow"):
            creator = e.creator_id or (info.creator_id if info else None)
            if creator:
                c = self.by_creator[creator]
                if kind == "follow":
                    c.followers_gained += 1
                else:
                    c.followers_lost += 1
        if e.video_id is None or info is None:
            return
        weight = ENGAGEMENT.get(kind, 0.0) + (COMPLETE_WEIGHT if complete else 0.0)
        self._video_event(e, kind, ts, info, weight, complete)

    def _video_event(
        self, e: Event, kind: str, ts: int, info: _VideoInfo, weight: float, complete: bool
    ) -> None:
        v = self.by_video[e.video_id or ""]
        c = self.by_creator[info.creator_id]
        hour = ts // HOUR_MS
        if kind == "impression":
            v.impressions += 1
            c.impressions += 1
        elif kind == "play":
            v.plays += 1
            v.watch_ms += e.watch_ms or 0
            v.completes += complete
            c.plays += 1
            c.watch_ms += e.watch_ms or 0
            c.completes += complete
        elif kind == "like":
            v.likes += 1
            c.likes += 1
        elif kind == "share":
            v.shares += 1
        elif kind == "comment":
            v.comments += 1
        elif kind == "skip":
            v.skips += 1
        elif kind == "report":
            v.reports += 1
        elif kind == "not_interested":
            v.not_interested += 1
        if kind in VIEW_TYPES and e.user_id not in c.viewers:
            c.viewers.add(e.user_id)
            region = self._user_region(e.user_id)
            self.creator_regions[info.creator_id][region or "unknown"] += 1
        if weight:
            v.hourly[hour] += weight
        view = kind == "impression"
        tags: Iterable[tuple[dict[str, _TagStats], str]] = [
            *((self.by_hashtag, t) for t in info.hashtags),
            *(((self.by_sound, info.sound_id),) if info.sound_id else ()),
        ]
        for table, key in tags:
            s = table[key]
            s.views += view
            s.engagement += weight
            if weight:
                s.hourly[hour] += weight

    def _trim(self) -> None:
        now = self._clock()
        oldest = (now - self.window_ms) // MINUTE_MS
        for minute in [k for k in self.minutes if k < oldest]:
            del self.minutes[minute]
        # Hourly engagement serves windows of up to window_hours and the same span before
        # them (growth); older hours are dropped once per hour.
        hour = now // HOUR_MS
        if hour == self._trimmed_hour:
            return
        self._trimmed_hour = hour
        first = hour - 2 * (self.window_ms // HOUR_MS) - 1
        tables: list[Iterable[_VideoStats | _TagStats]] = [
            self.by_video.values(),
            self.by_hashtag.values(),
            self.by_sound.values(),
        ]
        for table in tables:
            for stats in table:
                for h in [h for h in stats.hourly if h < first]:
                    del stats.hourly[h]

    # -- queries --
    def overview(self, hours: float = 24.0, step_minutes: int = 15) -> dict[str, Any]:
        """Time series over the last ``hours`` in buckets of ``step_minutes``, plus totals."""
        self.refresh()
        step_minutes = max(1, step_minutes)
        with self._lock:
            end = self._clock() // MINUTE_MS + 1
            start = end - int(hours * 60)
            start -= (start - end) % step_minutes  # buckets end at the current minute
            t: list[int] = []
            epm: list[float] = []
            active: list[int] = []
            watch: list[float | None] = []
            completion: list[float | None] = []
            skip: list[float | None] = []
            users_all: set[str] = set()
            sums = Counter[str]()
            for b in range(start, end, step_minutes):
                ev = plays = completes = skips = imps = watch_ms = 0
                users: set[str] = set()
                for minute in range(b, b + step_minutes):
                    m = self.minutes.get(minute)
                    if m is None:
                        continue
                    ev += m.events
                    users |= m.users
                    watch_ms += m.watch_ms
                    plays += m.plays
                    completes += m.completes
                    skips += m.skips
                    imps += m.impressions
                t.append(b * MINUTE_MS)
                epm.append(ev / step_minutes)
                active.append(len(users))
                watch.append(watch_ms / len(users) if users else None)
                completion.append(_rate(completes, plays))
                skip.append(_rate(skips, imps))
                users_all |= users
                sums.update(
                    events=ev, plays=plays, completes=completes, skips=skips, impressions=imps
                )
                sums["watch_ms"] += watch_ms
            return {
                "now_ms": self._clock(),
                "hours": hours,
                "step_minutes": step_minutes,
                "series": {
                    "t": t,
                    "events_per_minute": epm,
                    "active_users": active,
                    "watch_ms_per_user": watch,
                    "completion_rate": completion,
                    "skip_rate": skip,
                },
                "totals": {
                    "events": sums["events"],
                    "active_users": len(users_all),
                    "plays": sums["plays"],
                    "watch_ms_per_user": _rate(sums["watch_ms"], len(users_all)),
                    "completion_rate": _rate(sums["completes"], sums["plays"]),
                    "skip_rate": _rate(sums["skips"], sums["impressions"]),
                    "events_all_time": sum(self.type_totals.values()),
                    "users_all_time": len(self.users_seen),
                    "by_type": dict(self.type_totals.most_common()),
                },
            }

    def _trend(self, s: _TagStats | _VideoStats, now: int, hours: int) -> tuple[float, float]:
        """(engagement per hour over the last ``hours``, growth against the ``hours`` before).

        The window is the current, partial hour plus the ``hours`` full hours before it, divided
        by the time it really covers; growth compares rates, each smoothed by one engagement.
        """
        now_hour = now // HOUR_MS
        covered = hours + (now % HOUR_MS) / HOUR_MS
        recent = sum(s.hourly.get(h, 0.0) for h in range(now_hour - hours, now_hour + 1))
        before = range(now_hour - 2 * hours, now_hour - hours)
        prior = sum(s.hourly.get(h, 0.0) for h in before)
        rate = recent / covered
        return rate, (rate + 1 / hours) / (prior / hours + 1 / hours)

    def trending(self, hours: int = 6, limit: int = 20) -> dict[str, Any]:
        """Hashtags and sounds by engagement per hour over the last ``hours`` (with growth
        against the ``hours`` before), and rising videos by engagement velocity."""
        self.refresh()
        hours = max(1, hours)
        with self._lock:
            now = self._clock()

            def table(stats: dict[str, _TagStats]) -> list[dict[str, Any]]:
                rows: list[dict[str, Any]] = []
                for name, s in stats.items():
                    velocity, growth = self._trend(s, now, hours)
                    rows.append(
                        {
                            "name": name,
                            "velocity": velocity,
                            "growth": growth,
                            "views": s.views,
                            "engagement": s.engagement,
                        }
                    )
                rows.sort(key=lambda r: (-r["velocity"], -r["engagement"], r["name"]))
                return rows[:limit]

            rising: list[dict[str, Any]] = []
            for vid, v in self.by_video.items():
                velocity, growth = self._trend(v, now, hours)
                if velocity <= 0:
                    continue
                info = self._info.get(vid)
                rising.append(
                    {
                        "video_id": vid,
                        "creator_id": info.creator_id if info else None,
                        "caption": info.caption if info else "",
                        "hashtags": list(info.hashtags) if info else [],
                        "velocity": velocity,
                        "growth": growth,
                        "impressions": v.impressions,
                        "likes": v.likes,
                        "shares": v.shares,
                        "completion_rate": _rate(v.completes, v.plays),
                    }
                )
            rising.sort(key=lambda r: (-r["velocity"], -r["growth"], r["video_id"]))
            return {
                "hours": hours,
                "hashtags": table(self.by_hashtag),
                "sounds": table(self.by_sound),
                "rising": rising[:limit],
            }

    def _creator_row(self, creator_id: str, c: _CreatorStats) -> dict[str, Any]:
        regions = self.creator_regions.get(creator_id, Counter())
        return {
            "creator_id": creator_id,
            "reach": len(c.viewers),
            "impressions": c.impressions,
            "plays": c.plays,
            "completion_rate": _rate(c.completes, c.plays),
            "watch_ms": c.watch_ms,
            "likes": c.likes,
            "followers_gained": c.followers_gained,
            "followers_lost": c.followers_lost,
            "regions": dict(regions.most_common()),
        }

    def creators(self, limit: int = 50) -> dict[str, Any]:
        """Creators by reach (distinct viewers), with completion, followers and audience."""
        self.refresh()
        with self._lock:
            rows = [self._creator_row(k, c) for k, c in self.by_creator.items()]
        rows.sort(key=lambda r: (-r["reach"], r["creator_id"]))
        return {"creators": rows[:limit], "total": len(rows)}

    def creator(self, creator_id: str) -> dict[str, Any] | None:
        """One creator's figures and their videos' figures; None when nothing is known."""
        self.refresh()
        with self._lock:
            c = self.by_creator.get(creator_id)
            if c is None:
                return None
            row = self._creator_row(creator_id, c)
            videos: list[dict[str, Any]] = []
            for vid, info in self._info.items():
                if info is None or info.creator_id != creator_id:
                    continue
                v = self.by_video.get(vid, _VideoStats())
                videos.append(
                    {
                        "video_id": vid,
                        "caption": info.caption,
                        "impressions": v.impressions,
                        "plays": v.plays,
                        "completion_rate": _rate(v.completes, v.plays),
                        "likes": v.likes,
                        "shares": v.shares,
                    }
                )
        videos.sort(key=lambda r: (-r["impressions"], r["video_id"]))
        return {**row, "videos": videos}

    def reports(self) -> dict[str, int]:
        """Video id -> number of report events."""
        self.refresh()
        with self._lock:
            return {vid: v.reports for vid, v in self.by_video.items() if v.reports}
