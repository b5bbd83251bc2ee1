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

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from fyp.config import SignalWeights
from fyp.models import Event, VideoBrief
from fyp.models.events import EventType
from fyp.training.columns import LogPage, catalog, read_pages, ts_ms

__all__ = [
    "POSITIVE_TYPES",
    "Interactions",
    "SignalBuilder",
    "catalog",
    "read_pages",
    "ts_ms",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

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
# Event types as small codes for the columns the builder keeps.
TYPES = list(EventType)
_CODE = {e.value: i for i, e in enumerate(TYPES)}
_T = {e: i for i, e in enumerate(TYPES)}


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
    """Folds the event log, in log order, into per-pair weights (see the module doc for the
    rules).

    Pages are kept as compact columns (integer codes) and folded in one vectorised pass by
    :meth:`build`, a few bytes per event instead of a Python object per pair.

    Args:
        weights: the per-type weights.
        briefs: looks up creator and duration for video ids (e.g. ``store.video_briefs``).
        catalog: video ids known up front (all get an index even without events).
        known: briefs already at hand (e.g. from the catalog read), so they are not looked up.
    """

    def __init__(
        self,
        weights: SignalWeights,
        briefs: Callable[[set[str]], Mapping[str, VideoBrief]],
        catalog: list[str] | None = None,
        known: Mapping[str, VideoBrief] | None = None,
    ) -> None:
        self.w = weights
        self._briefs_of = briefs
        self._briefs: dict[str, VideoBrief | None] = dict(known or {})
        # videos by code: the catalog first, then any video met in the log whose brief exists
        self._video_code: dict[str | None, int] = {}
        self._video_ids: list[str] = []
        for vid in dict.fromkeys(catalog or []):
            self._video_code[vid] = len(self._video_ids)
            self._video_ids.append(vid)
        self._user_code: dict[str, int] = {}
        self._creator_code: dict[str | None, int] = {}
        self._cols: list[tuple[npt.NDArray[np.integer[Any]], ...]] = []
        self.counts: Counter[str] = Counter()
        self.first_seq = 0
        self.last_seq = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def add_page(self, page: Sequence[tuple[int, Event]]) -> None:
        """A page of event records (``store.read_events``)."""
        self.add_log(LogPage.from_events(page))

    def add_log(self, page: LogPage) -> None:
        """A page of the log as columns (:func:`fyp.training.columns.read_log`)."""
        n = len(page)
        if n == 0:
            return
        vcode, ucode, ccode = self._video_code, self._user_code, self._creator_code
        unknown = set(page.video_id).difference(vcode)
        unknown.discard(None)
        if unknown:
            # videos outside the catalog get a code when the store knows them (an unfollow
            # naming a creator is about the creator: its video, if any, does not count)
            self._resolve(
                {
                    v
                    for v, k, c in zip(page.video_id, page.type, page.creator_id, strict=True)
                    if v is not None and v in unknown and not (k == "unfollow" and c is not None)
                }
            )
        for uid in set(page.user_id).difference(ucode):
            ucode[uid] = len(ucode)
        for cid in set(page.creator_id).difference(ccode):
            if cid is not None:
                ccode[cid] = len(ccode)
        # the per-row work stays in C: map over dict lookups, None -> NaN -> -1
        seq = np.asarray(page.seq, np.int64)
        ts = np.asarray(page.ts_ms, np.int64)
        kind = np.fromiter(map(_CODE.__getitem__, page.type), np.int8, n)
        video = np.fromiter(map(vcode.get, page.video_id, itertools.repeat(-1)), np.int32, n)
        user = np.fromiter(map(ucode.__getitem__, page.user_id), np.int32, n)
        creator = np.fromiter(map(ccode.get, page.creator_id, itertools.repeat(-1)), np.int32, n)
        watch = np.nan_to_num(np.asarray(page.watch_ms, np.float64), nan=-1).astype(np.int32)
        self._cols.append((user, video, creator, kind, ts, watch))
        codes, n_by_code = np.unique(kind, return_counts=True)
        for code, count in zip(codes.tolist(), n_by_code.tolist(), strict=True):
            self.counts[TYPES[code].value] += count
        self.first_seq = self.first_seq or int(seq[0])
        self.last_seq = max(self.last_seq, int(seq.max()))
        lo, hi = int(ts.min()), int(ts.max())
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)

    def _resolve(self, video_ids: set[str]) -> None:
        """Give the videos met in the log a code when the store knows them."""
        found = self.briefs_for(video_ids)
        for vid in sorted(found):
            self._video_code[vid] = len(self._video_ids)
            self._video_ids.append(vid)

    def briefs_for(self, video_ids: Iterable[str]) -> dict[str, VideoBrief]:
        """Creator and duration of these videos (from what was looked up, else the store)."""
        wanted = set(video_ids)
        missing = sorted(v for v in wanted if v not in self._briefs)
        for i in range(0, len(missing), 1000):  # bounded IN lists
            batch = set(missing[i : i + 1000])
            found = self._briefs_of(batch)
            for vid in batch:
                self._briefs[vid] = found.get(vid)
        return {v: b for v in wanted if (b := self._briefs.get(v)) is not None}

    def _video_briefs(self, codes: I64) -> tuple[npt.NDArray[np.bool_], F64, I64]:
        """Of every coded video (filled in for ``codes``): whether the store knows it, its
        duration (NaN when unknown) and its creator's code."""
        n = len(self._video_ids)
        ids = [self._video_ids[c] for c in codes.tolist()]
        self.briefs_for(ids)
        known = np.zeros(n, bool)
        duration = np.full(n, np.nan)
        creator = np.full(n, -1, np.int64)
        for code, vid in zip(codes.tolist(), ids, strict=True):
            b = self._briefs.get(vid)
            if b is None:
                continue  # a catalog video the store no longer has: its events are ignored
            known[code] = True
            if b.duration_ms:
                duration[code] = b.duration_ms
            creator[code] = self._creator_code.setdefault(b.creator_id, len(self._creator_code))
        return known, duration, creator

    def play_weights(self, watch: I64, duration: F64) -> F64:
        """``play x completion`` (capped) plus the completion bonus; the flat weight when the
        duration or the watch time is unknown (watch -1, duration NaN)."""
        w = self.w
        known = (watch >= 0) & ~np.isnan(duration)
        completion = np.minimum(
            np.where(known, watch, 0) / np.where(known, duration, 1.0), w.completion_cap
        )
        bonus = np.where(completion >= w.complete_threshold, w.complete_bonus, 0.0)
        return np.where(known, w.play * completion + bonus, w.play_unknown_duration)

    def build(self) -> Interactions:
        empty = np.zeros(0, np.int64)
        user, video, creator, kind, ts, watch = (
            [np.concatenate(c).astype(np.int64) for c in zip(*self._cols, strict=True)]
            if self._cols
            else [empty] * 6
        )
        w = self.w
        n_log = kind.size
        pos = np.arange(n_log, dtype=np.int64)  # log order

        # unfollow naming a creator: cancels the follows credited to that creator's videos
        creator_unfollow = (kind == _T[EventType.unfollow]) & (creator >= 0)
        known, duration, video_creator = self._video_briefs(
            np.unique(video[(video >= 0) & ~creator_unfollow])
        )
        n_creators = max(len(self._creator_code), 1)
        # every other event naming a known video belongs to a (user, video) pair
        on_pair = (video >= 0) & ~creator_unfollow
        on_pair[on_pair] = known[video[on_pair]]
        p_pos, p_user, p_video = pos[on_pair], user[on_pair], video[on_pair]
        p_kind, p_watch, p_creator = kind[on_pair], watch[on_pair], creator[on_pair]
        key = p_user * len(self._video_ids) + p_video
        pair_key, pair = np.unique(key, return_inverse=True)
        n_pairs = pair_key.size
        pair_user = pair_key // max(len(self._video_ids), 1)
        pair_video = pair_key % max(len(self._video_ids), 1)

        def is_(*types: EventType) -> npt.NDArray[np.bool_]:
            return np.isin(p_kind, [_T[x] for x in types])

        # additive contributions, summed per pair in log order (np.bincount adds in array
        # order, exactly as the event-by-event fold did)
        contrib = np.zeros(p_pos.size)
        for etype, value in (
            (EventType.impression, w.impression),
            (EventType.share, w.share),
            (EventType.comment, w.comment),
            (EventType.profile_visit, w.profile_visit),
            (EventType.skip, w.skip),
        ):
            contrib[p_kind == _T[etype]] = value
        plays = p_kind == _T[EventType.play]
        play_w = self.play_weights(p_watch[plays], duration[p_video[plays]])
        contrib[plays] = play_w
        weight = np.bincount(pair, weights=contrib, minlength=n_pairs)

        def last(mask: npt.NDArray[np.bool_]) -> I64:
            out = np.full(n_pairs, -1, np.int64)
            np.maximum.at(out, pair[mask], p_pos[mask])
            return out

        liked = last(is_(EventType.like)) > last(is_(EventType.unlike))
        followed = self._follows_standing(
            pair, p_pos, p_user, p_video, p_kind, p_creator, video_creator, n_creators,
            pos[creator_unfollow], user[creator_unfollow], creator[creator_unfollow], last,
        )  # fmt: skip
        skips = np.bincount(pair[is_(EventType.skip)], minlength=n_pairs)
        vetoed = np.zeros(n_pairs, bool)
        vetoed[pair[is_(EventType.not_interested, EventType.report)]] = True

        total = weight + w.like * liked + w.follow * followed
        pair_w = np.where(vetoed, 0.0, np.minimum(total, w.max_pair_weight))
        positive = pair_w >= w.min_positive
        negative = ~positive & (vetoed | (skips > 0))

        # each pair's first positive event (a play only if it carried weight)
        pos_event = is_(*POSITIVE_TYPES)
        pos_event[np.flatnonzero(plays)[play_w == 0]] = False
        first = np.full(n_pairs, n_log, np.int64)
        np.minimum.at(first, pair[pos_event], p_pos[pos_event])

        has_pair = np.zeros(len(self._user_code), bool)
        has_pair[pair_user] = True
        users = sorted(u for u, code in self._user_code.items() if has_pair[code])
        videos = sorted(self._video_ids)
        user_rank = np.full(len(self._user_code), -1, np.int64)
        user_rank[[self._user_code[u] for u in users]] = np.arange(len(users))
        video_rank = np.full(len(self._video_ids), -1, np.int64)
        video_rank[[self._video_code[v] for v in videos]] = np.arange(len(videos))
        rows, cols_ = user_rank[pair_user], video_rank[pair_video]
        shape = (len(users), len(videos))
        weights = sp.csr_matrix(
            (pair_w[positive].astype(np.float32), (rows[positive], cols_[positive])),
            shape=shape,
            dtype=np.float32,
        )
        negatives = sp.csr_matrix(
            (np.ones(int(negative.sum()), np.float32), (rows[negative], cols_[negative])),
            shape=shape,
            dtype=np.float32,
        )
        # per user, positives in the order of their first positive event (time, then log)
        ordered = positive & (first < n_log)
        o_user, o_col, o_first = rows[ordered], cols_[ordered], first[ordered]
        o_ts = ts[o_first]
        order = np.lexsort((o_first, o_ts, o_user))
        o_user, o_col, o_ts = o_user[order], o_col[order], o_ts[order]
        bounds = np.searchsorted(o_user, np.arange(len(users) + 1)).tolist()
        spans = list(itertools.pairwise(bounds))
        return Interactions(
            user_ids=users,
            video_ids=videos,
            weights=weights,
            negatives=negatives,
            sequences=[o_col[a:b].copy() for a, b in spans],
            times=[o_ts[a:b].copy() for a, b in spans],
            counts=dict(self.counts),
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            first_ts_ms=self.first_ts,
            last_ts_ms=self.last_ts,
        )

    @staticmethod
    def _follows_standing(
        pair: I64,
        p_pos: I64,
        p_user: I64,
        p_video: I64,
        p_kind: I64,
        p_creator: I64,
        video_creator: I64,
        n_creators: int,
        u_pos: I64,
        u_user: I64,
        u_creator: I64,
        last: Callable[[npt.NDArray[np.bool_]], I64],
    ) -> npt.NDArray[np.bool_]:
        """Whether each pair's follow still stands at the end of the log.

        A follow naming a video is credited to the event's creator (else the video's); an
        unfollow naming the video cancels the pair's follows, and an unfollow naming a creator
        cancels the follows credited to it since that creator's previous unfollow. So the
        pair's latest follow stands unless a video unfollow came after it, or some follow of the
        pair is cancelled by a creator unfollow that comes after that latest follow.
        """
        follows = p_kind == _T[EventType.follow]
        latest = last(follows)
        standing = latest > last(p_kind == _T[EventType.unfollow])
        if u_pos.size == 0 or not follows.any():
            return standing
        f_pos = p_pos[follows]
        credit = np.where(
            p_creator[follows] >= 0, p_creator[follows], video_creator[p_video[follows]]
        )
        f_key = p_user[follows] * n_creators + credit
        u_key = u_user * n_creators + u_creator
        _, inverse = np.unique(np.concatenate([u_key, f_key]), return_inverse=True)
        span = int(max(p_pos.max(initial=0), u_pos.max()) + 1)
        u_comp = np.sort(inverse[: u_key.size] * span + u_pos)
        f_group = inverse[u_key.size :]
        at = np.searchsorted(u_comp, f_group * span + f_pos, side="right")
        hit = at < u_comp.size
        nxt = np.where(hit, u_comp[np.minimum(at, u_comp.size - 1)], -1)
        cancelled_at = np.where(hit & (nxt // span == f_group), nxt % span, -1)
        cancelled = np.full(latest.size, -1, np.int64)
        np.maximum.at(cancelled, pair[follows], cancelled_at)
        return standing & (cancelled < latest)
