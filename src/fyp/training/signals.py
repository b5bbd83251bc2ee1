"""From the event log to training signals: weighted user x video interactions, negatives, and
each user's ordered positives.

Rules (weights in :class:`fyp.config.SignalWeights`, like = 1 is the unit):

* ``play`` adds ``play x completion`` (watch_ms / duration_ms, replays count past 1.0 up to
  ``completion_cap``) plus ``complete_bonus`` from ``complete_threshold`` on; with the duration
  unknown it adds ``play_unknown_duration``.
* ``like``, ``share``, ``comment``, ``follow`` (naming a video) and ``profile_visit`` add their
  weight; ``unlike`` cancels the pair's likes and ``unfollow`` of a creator cancels the follows
  credited to that creator's videos.
* ``skip`` subtracts; ``not_interested`` and ``report`` on a video veto the pair for good. A
  vetoed pair, or one whose weight stays under ``min_positive`` after a skip, is a negative;
  negatives are never positives.
* ``impression`` adds ``impression`` (0 by default: being shown is not a preference).

A pair's total is capped at ``max_pair_weight`` and it is a positive from ``min_positive`` up (so
a play watched under half way is neither positive nor negative by default).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from fyp.config import SignalWeights
from fyp.models import Event, Video, VideoBrief
from fyp.models.events import EventType
from fyp.storage.data import DataStore

I64 = npt.NDArray[np.int64]

POSITIVE_TYPES = frozenset(
    {
        EventType.play,
        EventType.like,
        EventType.share,
        EventType.comment,
        EventType.follow,
        EventType.profile_visit,
    }
)


def ts_ms(event: Event) -> int:
    return int(event.ts.timestamp() * 1000)


def read_pages(
    store: DataStore, page_size: int = 10_000, after_seq: int = 0
) -> Iterator[list[tuple[int, Event]]]:
    """The event log after ``after_seq`` in log order, one page at a time."""
    seq = after_seq
    while True:
        page = store.read_events(seq, page_size)
        if not page:
            return
        yield page
        seq = page[-1][0]
        if len(page) < page_size:
            return


@dataclass
class _Pair:
    weight: float = 0.0  # everything but likes and follows, which can be cancelled
    likes: int = 0
    follows: int = 0
    skips: int = 0
    vetoed: bool = False
    first_positive: tuple[int, int] | None = None  # (ts_ms, seq) of its first positive event


@dataclass
class Interactions:
    """Training signals over a catalog, with users and videos as matrix indices.

    Attributes:
        user_ids, video_ids: index -> id.
        weights: users x videos CSR of positive weights (only pairs at or over min_positive).
        negatives: users x videos CSR, 1 where the pair is a negative.
        sequences: per user index, the video indices of their positives in the order of each
            pair's first positive event (time, then log order).
        times: the matching epoch-millisecond times of ``sequences``.
    """

    user_ids: list[str]
    video_ids: list[str]
    weights: sp.csr_matrix
    negatives: sp.csr_matrix
    sequences: list[I64]
    times: list[I64]
    counts: dict[str, int] = field(default_factory=dict)
    first_seq: int = 0
    last_seq: int = 0
    first_ts_ms: int | None = None
    last_ts_ms: int | None = None

    @property
    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids)}

    @property
    def video_index(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.video_ids)}


class SignalBuilder:
    """Folds events, in log order, into per-pair weights (see the module doc for the rules).

    Args:
        weights: the per-type weights.
        briefs: looks up creator and duration for video ids (e.g. ``store.video_briefs``).
        catalog: video ids known up front (all get an index even without events).
    """

    def __init__(
        self,
        weights: SignalWeights,
        briefs: Callable[[set[str]], dict[str, VideoBrief]],
        catalog: list[str] | None = None,
    ) -> None:
        self.w = weights
        self._briefs_of = briefs
        self._briefs: dict[str, VideoBrief | None] = {}
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._follow_credit: dict[tuple[str, str], set[str]] = {}
        self._videos: dict[str, None] = dict.fromkeys(catalog or [])
        self.counts: Counter[str] = Counter()
        self.first_seq = 0
        self.last_seq = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def add_page(self, page: list[tuple[int, Event]]) -> None:
        self.briefs_for({e.video_id for _, e in page if e.video_id})
        for seq, event in page:
            self.add(seq, event)

    def briefs_for(self, video_ids: set[str]) -> dict[str, VideoBrief]:
        """Creator and duration of these videos (from what was looked up, else the store)."""
        missing = {v for v in video_ids if v not in self._briefs}
        if missing:
            found = self._briefs_of(missing)
            for vid in missing:
                self._briefs[vid] = found.get(vid)
        return {v: b for v in video_ids if (b := self._briefs.get(v)) is not None}

    def brief(self, video_id: str) -> VideoBrief | None:
        if video_id not in self._briefs:
            self._briefs[video_id] = self._briefs_of({video_id}).get(video_id)
        return self._briefs[video_id]

    def add(self, seq: int, e: Event) -> None:
        t = ts_ms(e)
        self.counts[e.type.value] += 1
        self.first_seq = self.first_seq or seq
        self.last_seq = max(self.last_seq, seq)
        self.first_ts = t if self.first_ts is None else min(self.first_ts, t)
        self.last_ts = t if self.last_ts is None else max(self.last_ts, t)
        if e.type is EventType.unfollow and e.creator_id:
            for vid in self._follow_credit.pop((e.user_id, e.creator_id), set()):
                self._pairs[(e.user_id, vid)].follows = 0
            return
        if e.video_id is None:
            return  # creator-, sound- or hashtag-level events shape online filters, not models
        brief = self.brief(e.video_id)
        if brief is None:
            return  # a video no longer in the catalog
        self._videos.setdefault(e.video_id, None)
        pair = self._pairs.setdefault((e.user_id, e.video_id), _Pair())
        w = self.w
        match e.type:
            case EventType.impression:
                pair.weight += w.impression
            case EventType.play:
                pair.weight += self.play_weight(e.watch_ms, brief.duration_ms)
            case EventType.like:
                pair.likes += 1
            case EventType.unlike:
                pair.likes = 0
            case EventType.share:
                pair.weight += w.share
            case EventType.comment:
                pair.weight += w.comment
            case EventType.follow:
                pair.follows += 1
                creator = e.creator_id or brief.creator_id
                self._follow_credit.setdefault((e.user_id, creator), set()).add(e.video_id)
            case EventType.unfollow:
                pair.follows = 0
            case EventType.profile_visit:
                pair.weight += w.profile_visit
            case EventType.skip:
                pair.weight += w.skip
                pair.skips += 1
            case EventType.not_interested | EventType.report:
                pair.vetoed = True
        if (
            e.type in POSITIVE_TYPES
            and pair.first_positive is None
            and (e.type is not EventType.play or self.play_weight(e.watch_ms, brief.duration_ms))
        ):
            pair.first_positive = (t, seq)

    def play_weight(self, watch_ms: int | None, duration_ms: int | None) -> float:
        w = self.w
        if not duration_ms or watch_ms is None:
            return w.play_unknown_duration
        completion = min(watch_ms / duration_ms, w.completion_cap)
        bonus = w.complete_bonus if completion >= w.complete_threshold else 0.0
        return w.play * completion + bonus

    def pair_weight(self, pair: _Pair) -> float:
        if pair.vetoed:
            return 0.0
        total = (
            pair.weight + self.w.like * min(pair.likes, 1) + self.w.follow * min(pair.follows, 1)
        )
        return min(total, self.w.max_pair_weight)

    def build(self) -> Interactions:
        users = sorted({u for u, _ in self._pairs})
        videos = sorted(self._videos)
        u_index = {u: i for i, u in enumerate(users)}
        v_index = {v: i for i, v in enumerate(videos)}
        pos_r: list[int] = []
        pos_c: list[int] = []
        pos_w: list[float] = []
        neg_r: list[int] = []
        neg_c: list[int] = []
        ordered: list[list[tuple[int, int, int]]] = [[] for _ in users]
        for (u, v), pair in self._pairs.items():
            r, c = u_index[u], v_index[v]
            weight = self.pair_weight(pair)
            if weight >= self.w.min_positive:
                pos_r.append(r)
                pos_c.append(c)
                pos_w.append(weight)
                if pair.first_positive is not None:
                    ordered[r].append((*pair.first_positive, c))
            elif pair.vetoed or pair.skips:
                neg_r.append(r)
                neg_c.append(c)
        shape = (len(users), len(videos))
        weights = sp.csr_matrix(
            (np.asarray(pos_w, np.float32), (pos_r, pos_c)), shape=shape, dtype=np.float32
        )
        negatives = sp.csr_matrix(
            (np.ones(len(neg_r), np.float32), (neg_r, neg_c)), shape=shape, dtype=np.float32
        )
        for seq_list in ordered:
            seq_list.sort()
        return Interactions(
            user_ids=users,
            video_ids=videos,
            weights=weights,
            negatives=negatives,
            sequences=[np.asarray([c for _, _, c in s], np.int64) for s in ordered],
            times=[np.asarray([t for t, _, _ in s], np.int64) for s in ordered],
            counts=dict(self.counts),
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            first_ts_ms=self.first_ts,
            last_ts_ms=self.last_ts,
        )


def catalog(store: DataStore, page: int = 1000) -> list[Video]:
    """Every video in the store (any moderation state), in id order."""
    videos: list[Video] = []
    after: str | None = None
    while True:
        chunk = store.list_videos(after=after, limit=page)
        videos += chunk
        if len(chunk) < page:
            return videos
        after = chunk[-1].id
