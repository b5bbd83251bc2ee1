"""The event-by-event fold the vectorised :class:`fyp.training.signals.SignalBuilder` replaced,
kept as the oracle its results are compared with (tests/training/test_signals.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fyp.config import SignalWeights
from fyp.models import Event, VideoBrief
from fyp.models.events import EventType
from fyp.training.signals import POSITIVE_TYPES, Interactions, ts_ms


@dataclass
class _Pair:
    weight: float = 0.0
    likes: int = 0
    follows: int = 0
    skips: int = 0
    vetoed: bool = False
    first_positive: tuple[int, int] | None = None


class ReferenceBuilder:
    def __init__(
        self,
        weights: SignalWeights,
        briefs: Callable[[set[str]], dict[str, VideoBrief]],
        catalog: list[str],
    ) -> None:
        self.w = weights
        self._briefs_of = briefs
        self._briefs: dict[str, VideoBrief | None] = {}
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._follow_credit: dict[tuple[str, str], set[str]] = {}
        self._videos: dict[str, None] = dict.fromkeys(catalog)
        self.counts: Counter[str] = Counter()
        self.first_seq = 0
        self.last_seq = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

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
            return
        brief = self.brief(e.video_id)
        if brief is None:
            return
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
