"""A synthetic world at benchmark scale (a million videos, ten million events), generated with
numpy in a few minutes and bounded memory.

* Creators have power-law popularity: each has at least one video and the rest of the catalog
  is spread over them by Zipf weights, so the top 1% hold a large share of the videos; their
  videos inherit their popularity (times a per-video lognormal factor and the hidden quality).
* Hashtags belong to topics and have Zipf popularity; a video's first tag is from its topic
  (its creator's main topic, mostly), further tags from the same topic or anywhere. Sounds are
  shared across videos with Zipf popularity.
* Users have latent interests: three favourite topics, four favourite hashtags and three
  favourite creators (from those topics, popularity-weighted), and a lognormal activity level.
* Events come hour by hour over the last ``days`` days (a daily cycle), in time order: each view
  picks a video from a favourite creator, hashtag or topic, or from the global popularity, and
  the user's affinity for it (topic, hashtag and creator match, quality) drives skip or play,
  watch time, like, share, comment, follow and not_interested.

:meth:`World.events` streams the log in chunks, so memory stays bounded whatever the count.
Everything is determined by the seed and ``now_ms``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fyp.demo import LANGUAGES, REGIONS
from fyp.models import User, VideoIn
from fyp.simulator.catalog import TOPICS
from fyp.storage.data import EventRow
from fyp.types import from_ms

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# Codes of EventChunk.kind.
EVENT_TYPES = ("impression", "play", "skip", "like", "share", "comment", "follow", "not_interested")
IMPRESSION, PLAY, SKIP, LIKE, SHARE, COMMENT, FOLLOW, NOT_INTERESTED = range(len(EVENT_TYPES))
TAGS_PER_VIDEO = 4
FAV_TOPICS, FAV_TAGS, FAV_CREATORS = 3, 4, 3
# Where a view's video comes from: a favourite creator, hashtag, topic, or global popularity.
SOURCE_SHARE = (0.15, 0.20, 0.35, 0.30)
TOPIC_PICK = (0.5, 0.3, 0.2)  # the first favourite topic is the main one
REGION_SHARE = (0.35, 0.1, 0.1, 0.15, 0.2, 0.1)  # of fyp.demo.REGIONS


@dataclass(frozen=True)
class WorldSpec:
    """How big the world is; creators, hashtags and sounds default to a share of the videos."""

    videos: int = 1_000_000
    users: int = 100_000
    events: int = 10_000_000
    creators: int = 0  # 0: videos // 25
    hashtags: int = 0  # 0: videos // 20 (at least 4 per topic)
    sounds: int = 0  # 0: videos // 10
    days: float = 14.0
    seed: int = 1

    @property
    def n_creators(self) -> int:
        return self.creators or max(1, self.videos // 25)

    @property
    def n_hashtags(self) -> int:
        return self.hashtags or max(4 * len(TOPICS), self.videos // 20)

    @property
    def n_sounds(self) -> int:
        return self.sounds or max(10, self.videos // 10)

    def __post_init__(self) -> None:
        if min(self.videos, self.users, self.events) < 1 or self.days <= 0:
            raise ValueError("a world needs videos, users, events and a positive number of days")
        if self.n_creators > self.videos:
            raise ValueError("more creators than videos")


@dataclass(frozen=True)
class EventChunk:
    """Consecutive events of the log as columns; event ``first + i`` is row i.

    ``user`` indexes the world's users, ``video`` its videos; ``watch_ms`` is -1 when absent and
    ``creator`` (set on follows) -1 when absent.
    """

    first: int
    user: I32
    video: I32
    kind: I8
    ts_ms: I64
    watch_ms: I32
    creator: I32

    def __len__(self) -> int:
        return int(self.kind.size)


class _Grouped:
    """Weighted sampling of an item within a given group, vectorised: items sorted by group,
    keyed by ``group + cumulative share within the group`` so one searchsorted draws them all."""

    def __init__(self, groups: I64, weights: F64, n_groups: int) -> None:
        order = np.argsort(groups, kind="stable")
        g = groups[order]
        w = weights[order].astype(np.float64)
        cw = np.cumsum(w)
        total = np.bincount(g, weights=w, minlength=n_groups)
        start = np.searchsorted(g, np.arange(n_groups))
        before = np.concatenate([[0.0], cw])[start]
        within = np.minimum((cw - before[g]) / np.maximum(total[g], 1e-300), 1.0)
        last = np.flatnonzero(np.diff(g, append=n_groups))  # each group's last item
        within[last] = 1.0
        self.order = order
        self.key = g + within

    def sample(self, groups: I64, u: F64) -> I64:
        """One item per (group, uniform in [0, 1)); an empty group yields a neighbour's item."""
        pos = np.searchsorted(self.key, groups + u, side="right")
        out: I64 = self.order[np.minimum(pos, self.order.size - 1)]
        return out


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> F64:
    """Zipf weights 1/rank^exponent, assigned to the n items in random order."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    out: F64 = w[rng.permutation(n)]
    return out


def ids(prefix: str, n: int) -> list[str]:
    width = len(str(max(n - 1, 0)))
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


class World:
    """A generated world: catalog, users with latent interests, and the means to stream its log.

    Args:
        spec: the sizes and the seed.
        now_ms: the world's present (epoch ms); events fall in the ``spec.days`` before it.
    """

    def __init__(self, spec: WorldSpec, now_ms: int) -> None:
        self.spec = spec
        self.now_ms = now_ms
        rng = np.random.default_rng([spec.seed, 0])
        n_topics = len(TOPICS)
        self.topics = list(TOPICS)
        self.topic_weight = 1.0 / np.arange(1, n_topics + 1) ** 0.8

        # hashtags: each belongs to a topic, Zipf popularity overall; the topic name itself is
        # its topic's most popular tag
        nh = spec.n_hashtags
        self.hashtag_topic = np.empty(nh, np.int32)
        self.hashtag_topic[:n_topics] = np.arange(n_topics)
        self.hashtag_topic[n_topics:] = rng.choice(
            n_topics, nh - n_topics, p=self.topic_weight / self.topic_weight.sum()
        )
        self.hashtag_weight = _zipf_weights(nh, 1.0, rng)
        self.hashtag_weight[:n_topics] = self.hashtag_weight.max() * self.topic_weight
        self.hashtags = self.topics + [
            f"{self.topics[t]}{i}" for i, t in enumerate(self.hashtag_topic[n_topics:].tolist())
        ]

        # creators: power-law popularity, a main topic and a region
        nc = spec.n_creators
        self.creator_weight = _zipf_weights(nc, 0.8, rng)
        self.creator_topic = rng.choice(
            n_topics, nc, p=self.topic_weight / self.topic_weight.sum()
        ).astype(np.int32)
        self.creator_region = rng.choice(len(REGIONS), nc, p=REGION_SHARE).astype(np.int8)

        # videos: at least one per creator, the rest by creator popularity
        nv = spec.videos
        counts = 1 + rng.multinomial(nv - nc, self.creator_weight / self.creator_weight.sum())
        self.video_creator = np.repeat(np.arange(nc, dtype=np.int32), counts)
        rng.shuffle(self.video_creator)
        own = rng.random(nv) < 0.8
        self.video_topic = np.where(
            own,
            self.creator_topic[self.video_creator],
            rng.choice(n_topics, nv, p=self.topic_weight / self.topic_weight.sum()),
        ).astype(np.int32)
        self.video_tags = self._video_tags(rng)
        sound_w = _zipf_weights(spec.n_sounds, 1.1, rng)
        self.video_sound = np.where(
            rng.random(nv) < 0.8, rng.choice(spec.n_sounds, nv, p=sound_w / sound_w.sum()), -1
        ).astype(np.int32)
        self.video_duration = np.clip(rng.lognormal(9.9, 0.6, nv), 3_000, 180_000).astype(np.int32)
        # most of the catalog predates the event window; 15% is uploaded during it
        window = spec.days * DAY_MS
        age = np.where(
            rng.random(nv) < 0.15,
            rng.uniform(2 * HOUR_MS, window, nv),
            rng.uniform(window, window + 120 * DAY_MS, nv),
        )
        self.video_created = (now_ms - age).astype(np.int64)
        self.video_quality = rng.beta(2, 3, nv).astype(np.float32)
        self.video_weight = (
            self.creator_weight[self.video_creator] ** 0.7
            * rng.lognormal(0.0, 0.8, nv)
            * (0.5 + self.video_quality)
        )

        # users: latent interests and how active they are
        nu = spec.users
        self.user_region = rng.choice(len(REGIONS), nu, p=REGION_SHARE).astype(np.int8)
        self.user_birth_year = rng.integers(1960, 2011, nu).astype(np.int16)
        self.user_topics = self._distinct_topics(rng, nu)
        tag_by_topic = _Grouped(self.hashtag_topic.astype(np.int64), self.hashtag_weight, n_topics)
        pick = self.user_topics[np.arange(nu)[:, None], rng.integers(0, FAV_TOPICS, (nu, FAV_TAGS))]
        self.user_tags = tag_by_topic.sample(
            pick.ravel().astype(np.int64), rng.random(pick.size)
        ).reshape(nu, FAV_TAGS)
        creator_by_topic = _Grouped(
            self.creator_topic.astype(np.int64), self.creator_weight, n_topics
        )
        pick = self.user_topics[:, :FAV_CREATORS]
        self.user_creators = creator_by_topic.sample(
            pick.ravel().astype(np.int64), rng.random(pick.size)
        ).reshape(nu, FAV_CREATORS)
        self.user_activity = rng.lognormal(0.0, 1.0, nu)

        # samplers for the views
        w = self.video_weight
        self._by_creator = _Grouped(self.video_creator.astype(np.int64), w, nc)
        self._by_topic = _Grouped(self.video_topic.astype(np.int64), w, n_topics)
        has = self.video_tags >= 0
        rows = np.nonzero(has)[0]
        self._by_tag = _Grouped(self.video_tags[has].astype(np.int64), w[rows], nh)
        self._by_tag.order = rows[self._by_tag.order]  # items are (video, tag) pairs
        self._global = _Grouped(np.zeros(nv, np.int64), w, 1)

        self.user_ids = ids("u", nu)
        self.creator_ids = ids("c", nc)
        self.video_ids = ids("v", nv)
        self.sound_ids = ids("s", spec.n_sounds)

    def _video_tags(self, rng: np.random.Generator) -> I32:
        """(videos x 4) hashtag indices, -1 padded: one from the topic, then 0-3 more."""
        nv, n_topics = self.spec.videos, len(self.topics)
        by_topic = _Grouped(self.hashtag_topic.astype(np.int64), self.hashtag_weight, n_topics)
        glob = _Grouped(np.zeros(self.hashtag_weight.size, np.int64), self.hashtag_weight, 1)
        tags = np.full((nv, TAGS_PER_VIDEO), -1, np.int64)
        topic = self.video_topic.astype(np.int64)
        tags[:, 0] = by_topic.sample(topic, rng.random(nv))
        extra = rng.binomial(TAGS_PER_VIDEO - 1, 0.5, nv)
        for j in range(1, TAGS_PER_VIDEO):
            same = by_topic.sample(topic, rng.random(nv))
            anywhere = glob.sample(np.zeros(nv, np.int64), rng.random(nv))
            col = np.where(rng.random(nv) < 0.65, same, anywhere)
            dup = (tags[:, :j] == col[:, None]).any(axis=1)
            tags[:, j] = np.where((extra >= j) & ~dup, col, -1)
        # close the gaps a dropped duplicate left, keeping the order
        order = np.argsort(tags < 0, axis=1, kind="stable")
        out: I32 = np.take_along_axis(tags, order, axis=1).astype(np.int32)
        return out

    def _distinct_topics(self, rng: np.random.Generator, n: int) -> I32:
        """``FAV_TOPICS`` distinct topics per user, drawn by topic popularity (Gumbel top-k)."""
        keys = np.log(self.topic_weight)[None, :] + rng.gumbel(size=(n, len(self.topics)))
        out: I32 = np.argsort(-keys, axis=1)[:, :FAV_TOPICS].astype(np.int32)
        return out

    # -- records for the store --

    def video_hashtags(self, v: int) -> list[str]:
        return [self.hashtags[t] for t in self.video_tags[v].tolist() if t >= 0]

    def users(self, batch: int = 5_000) -> Iterator[list[User]]:
        """Creators first (videos need them), then the audience, as store records."""
        created = from_ms(self.now_ms - int((self.spec.days + 150) * DAY_MS))
        for lo in range(0, len(self.creator_ids), batch):
            yield [
                User(id=cid, region=REGIONS[r], language=LANGUAGES[REGIONS[r]], created_at=created)
                for cid, r in zip(
                    self.creator_ids[lo : lo + batch],
                    self.creator_region[lo : lo + batch].tolist(),
                    strict=True,
                )
            ]
        for lo in range(0, len(self.user_ids), batch):
            hi = min(lo + batch, len(self.user_ids))
            yield [
                User(
                    id=self.user_ids[u],
                    region=REGIONS[self.user_region[u]],
                    language=LANGUAGES[REGIONS[self.user_region[u]]],
                    birth_year=int(self.user_birth_year[u]),
                    interests=[self.topics[t] for t in self.user_topics[u].tolist()],
                    created_at=created,
                )
                for u in range(lo, hi)
            ]

    def videos(self, batch: int = 5_000) -> Iterator[list[VideoIn]]:
        for lo in range(0, len(self.video_ids), batch):
            out = []
            for v in range(lo, min(lo + batch, len(self.video_ids))):
                c = int(self.video_creator[v])
                region = REGIONS[self.creator_region[c]]
                s = int(self.video_sound[v])
                out.append(
                    VideoIn(
                        id=self.video_ids[v],
                        creator_id=self.creator_ids[c],
                        hashtags=self.video_hashtags(v),
                        sound_id=self.sound_ids[s] if s >= 0 else None,
                        duration_ms=int(self.video_duration[v]),
                        region=region,
                        language=LANGUAGES[region],
                        created_at=from_ms(int(self.video_created[v])),
                        moderation="approved",
                    )
                )
            yield out

    def event_rows(self, chunk: EventChunk) -> list[EventRow]:
        """The chunk as event-log rows (ids ``e<n>``, time ordered; received when they happened)."""
        width = len(str(self.spec.events))
        rows: list[EventRow] = []
        cols = zip(
            chunk.user.tolist(),
            chunk.video.tolist(),
            chunk.kind.tolist(),
            chunk.ts_ms.tolist(),
            chunk.watch_ms.tolist(),
            chunk.creator.tolist(),
            strict=True,
        )
        for i, (u, v, k, ts, watch, c) in enumerate(cols):
            rows.append(
                {
                    "event_id": f"e{chunk.first + i:0{width}d}",
                    "user_id": self.user_ids[u],
                    "video_id": self.video_ids[v],
                    "creator_id": self.creator_ids[c] if c >= 0 else None,
                    "sound_id": None,
                    "hashtag": None,
                    "type": EVENT_TYPES[k],
                    "ts_ms": ts,
                    "received_ms": ts,
                    "watch_ms": watch if watch >= 0 else None,
                    "request_id": None,
                    "extra": None,
                }
            )
        return rows

    # -- the event log --

    def events(self) -> Iterator[EventChunk]:
        """The whole log, exactly ``spec.events`` events in time order, one chunk per hour."""
        spec = self.spec
        rng = np.random.default_rng([spec.seed, 1])
        start = self.now_ms - int(spec.days * DAY_MS)
        hours = int(np.ceil(spec.days * 24))
        bounds = [start + h * HOUR_MS for h in range(hours)] + [self.now_ms]
        hour_of_day = ((np.asarray(bounds[:-1]) // HOUR_MS) % 24).astype(np.float64)
        length = np.diff(np.asarray(bounds, np.float64))
        share = length * (1 + 0.6 * np.cos(2 * np.pi * (hour_of_day - 20) / 24))
        due = np.round(np.cumsum(share) / share.sum() * spec.events).astype(np.int64)
        p_user = self.user_activity / self.user_activity.sum()
        emitted = 0
        for h in range(hours):
            target = int(due[h]) - emitted
            if target <= 0:
                continue
            chunk = self._hour(rng, bounds[h], bounds[h + 1], target, p_user, emitted)
            emitted += len(chunk)
            yield chunk

    def _hour(
        self, rng: np.random.Generator, lo: int, hi: int, target: int, p_user: F64, first: int
    ) -> EventChunk:
        parts: list[dict[str, npt.NDArray[np.generic]]] = []
        have = 0
        while have < target:
            views = self._views(rng, lo, hi, max(16, int((target - have) / 1.9) + 16), p_user)
            n_ev = views["n_events"]
            cum = np.cumsum(n_ev)
            keep = int(
                np.searchsorted(cum, target - have, side="left")
            )  # views wholly or partly in
            if keep < cum.size:
                views = {k: a[: keep + 1] for k, a in views.items()}
                before = int(cum[keep - 1]) if keep else 0
                views["n_events"] = views["n_events"].copy()
                views["n_events"][keep] = target - have - before  # the last view may be cut
            have += int(views["n_events"].sum())
            parts.append(views)
        views = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self._events_of(views, first)

    def _views(
        self, rng: np.random.Generator, lo: int, hi: int, n: int, p_user: F64
    ) -> dict[str, npt.NDArray[np.generic]]:
        """``n`` views in [lo, hi): who, which video, when, and what each view causes."""
        user = rng.choice(self.spec.users, n, p=p_user)
        # leave room for the longest view's follow-up events inside the hour
        span = max(1, hi - lo - 7 * 60_000)
        ts = lo + (rng.random(n) * span).astype(np.int64)
        video = self._pick(rng, user)
        for _ in range(5):  # a video cannot be watched before its upload: draw again
            early = np.flatnonzero(self.video_created[video] >= ts)
            if early.size == 0:
                break
            video[early] = self._pick(rng, user[early])
        ok = self.video_created[video] < ts
        user, video, ts = user[ok], video[ok], ts[ok]
        n = user.size

        topic = self.video_topic[video]
        match_topic = (self.user_topics[user] == topic[:, None]).any(axis=1)
        tags = self.video_tags[video]
        fav = self.user_tags[user]
        match_tag = ((tags[:, :, None] == fav[:, None, :]) & (tags[:, :, None] >= 0)).any(
            axis=(1, 2)
        )
        creator = self.video_creator[video]
        match_creator = (self.user_creators[user] == creator[:, None]).any(axis=1)
        q = self.video_quality[video].astype(np.float64)
        a = np.clip(
            0.05 + 0.3 * match_topic + 0.25 * match_tag + 0.3 * match_creator + 0.2 * (q - 0.4),
            0.0,
            1.0,
        )
        skip = rng.random(n) < np.clip(0.65 - 0.6 * a, 0.05, 0.9)
        play = ~skip
        completion = np.clip(rng.gamma(2.0, (0.15 + 0.6 * a) / 2.0), 0.02, 2.0)
        watch = (completion * self.video_duration[video]).astype(np.int64)
        a2 = a * a * (0.5 + q)
        like = play & (rng.random(n) < 0.01 + 0.25 * a2)
        share = play & (rng.random(n) < 0.002 + 0.03 * a2)
        comment = play & (rng.random(n) < 0.002 + 0.02 * a2)
        follow = play & (rng.random(n) < 0.001 + 0.02 * a2)
        not_interested = skip & (rng.random(n) < 0.04 * (1 - a))
        n_events = (
            2 + like.astype(np.int64) + share + comment + follow + not_interested.astype(np.int64)
        )
        return {
            "user": user,
            "video": video,
            "ts": ts,
            "watch": np.where(play, watch, 0),
            "skip": skip,
            "like": like,
            "share": share,
            "comment": comment,
            "follow": follow,
            "not_interested": not_interested,
            "n_events": n_events,
        }

    def _pick(self, rng: np.random.Generator, user: I64) -> I64:
        n = user.size
        src = rng.choice(len(SOURCE_SHARE), n, p=SOURCE_SHARE)
        u = rng.random(n)
        video = np.empty(n, np.int64)
        m = src == 0
        c = self.user_creators[user[m], rng.integers(0, FAV_CREATORS, int(m.sum()))]
        video[m] = self._by_creator.sample(c.astype(np.int64), u[m])
        m = src == 1
        t = self.user_tags[user[m], rng.integers(0, FAV_TAGS, int(m.sum()))]
        video[m] = self._by_tag.sample(t.astype(np.int64), u[m])
        m = src == 2
        t = self.user_topics[user[m], rng.choice(FAV_TOPICS, int(m.sum()), p=TOPIC_PICK)]
        video[m] = self._by_topic.sample(t.astype(np.int64), u[m])
        m = src == 3
        video[m] = self._global.sample(np.zeros(int(m.sum()), np.int64), u[m])
        return video

    def _events_of(self, v: dict[str, npt.NDArray[np.generic]], first: int) -> EventChunk:
        """Each view's events in a fixed order (impression, play or skip, like, share, comment,
        follow, not_interested), cut where the view's ``n_events`` says, then sorted by time."""
        n = v["user"].size
        ts = np.asarray(v["ts"], np.int64)
        watch = np.asarray(v["watch"], np.int64)
        skip = np.asarray(v["skip"], bool)
        after = np.where(skip, 1_000 + (ts % 2_000), watch)  # when the view's outcome is known
        cols: list[tuple[Bool, int, I64, I64]] = []  # (which views, kind, ts, rank in the view)
        rank = np.zeros(n, np.int64)
        everyone = np.ones(n, bool)
        cols.append((everyone, IMPRESSION, ts, rank.copy()))
        rank += 1
        cols.append((skip, SKIP, ts + after, rank.copy()))
        cols.append((~skip, PLAY, ts + after, rank.copy()))
        rank += 1
        for name, code, delay in (
            ("like", LIKE, 1),
            ("share", SHARE, 2_000),
            ("comment", COMMENT, 3_000),
            ("follow", FOLLOW, 4_000),
            ("not_interested", NOT_INTERESTED, 500),
        ):
            mask = np.asarray(v[name], bool)
            at = ts + (watch // 2 + delay if code == LIKE else after + delay)
            cols.append((mask, code, at, rank.copy()))
            rank += mask
        n_events = np.asarray(v["n_events"], np.int64)
        view_idx = np.concatenate([np.flatnonzero(m) for m, _, _, _ in cols])
        kind = np.concatenate([np.full(int(m.sum()), k, np.int8) for m, k, _, _ in cols])
        at = np.concatenate([t[m] for m, _, t, _ in cols])
        r = np.concatenate([rk[m] for m, _, _, rk in cols])
        keep = r < n_events[view_idx]
        view_idx, kind, at = view_idx[keep], kind[keep], at[keep]
        order = np.lexsort((kind, view_idx, at))
        view_idx, kind, at = view_idx[order], kind[order], at[order]
        video = np.asarray(v["video"], np.int64)[view_idx]
        return EventChunk(
            first=first,
            user=np.asarray(v["user"], np.int64)[view_idx].astype(np.int32),
            video=video.astype(np.int32),
            kind=kind,
            ts_ms=at,
            watch_ms=np.where(kind == PLAY, watch[view_idx], -1).astype(np.int32),
            creator=np.where(kind == FOLLOW, self.video_creator[video], -1).astype(np.int32),
        )
