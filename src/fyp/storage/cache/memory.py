"""The in-process online state: one worker's dicts behind a lock, bounded by an LRU of users."""

from __future__ import annotations

import heapq
import math
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np

from fyp.config import OnlineSettings
from fyp.storage.cache.base import (
    COUNTER_INDEX,
    COUNTERS,
    GLOBAL,
    Affinity,
    Count,
    Engage,
    Heat,
    MarkWarm,
    Mute,
    Op,
    Reset,
    UserState,
    VideoCounters,
    decay_add,
    decayed,
)
from fyp.types import now_ms

H = 3_600_000.0


@dataclass(slots=True)
class _User:
    touched_ms: int
    recent: deque[tuple[str, float]]
    scores: dict[str, dict[str, tuple[float, int]]] = field(default_factory=dict)
    mutes: dict[str, dict[str, int]] = field(default_factory=dict)
    served: dict[str, int] | None = None  # None: cold, fall back to the durable log
    warm: bool = False


class _Trending:
    """Scores kept as ``delta * 2 ** ((ts - base) / hl)``: adding never rewrites old entries, and
    the order is the decayed order.

    The top ``keep`` entries are maintained as events arrive (every score outside them is at
    most ``floor``), so a read sorts a few hundred entries instead of selecting from every
    video's score: with events flowing, the old cache was dropped on each one and a million-
    video catalog was re-ranked on nearly every request. Only a drop in a top entry's score, a
    rebase or a read of more than ``keep`` re-select from everything.
    """

    def __init__(self, half_life_ms: float, keep: int = 500) -> None:
        self.hl = half_life_ms
        self.keep = keep
        self.base: int | None = None
        self.scores: dict[str, float] = {}
        self.top: dict[str, float] | None = None  # None: re-select on the next read
        self.floor = -math.inf
        self.ranked: list[tuple[str, float]] | None = None  # ``top`` sorted, until it changes

    def add(self, video_id: str, delta: float, ts_ms: int) -> None:
        if self.base is None:
            self.base = ts_ms
        exp = (ts_ms - self.base) / self.hl
        if exp > 500:  # rebase before floats overflow; a uniform rescale keeps the order
            shift = 2.0 ** (-exp)
            self.scores = {v: s * shift for v, s in self.scores.items()}
            self.base, exp = ts_ms, 0.0
            self.top = None
        new = self.scores.get(video_id, 0.0) + delta * 2.0**exp
        self.scores[video_id] = new
        top = self.top
        if top is None:
            return
        old = top.get(video_id)
        if old is not None:
            if new < old:
                self.top = None  # an outsider may now rank above it
                return
            top[video_id] = new
            if old == self.floor:  # it was the lowest kept: the floor may rise
                self.floor = min(top.values())
        elif new > self.floor or len(top) < self.keep:
            top[video_id] = new
            if len(top) > self.keep:
                del top[min(top, key=top.__getitem__)]
            if len(top) >= self.keep:
                self.floor = min(top.values())
        else:
            return
        self.ranked = None

    def _select(self, keep: int) -> None:
        self.keep = keep
        best = heapq.nlargest(keep, self.scores.items(), key=itemgetter(1))
        self.top = dict(best)
        self.floor = best[-1][1] if len(best) >= keep else -math.inf
        self.ranked = None

    def best(self, k: int, now: int) -> list[tuple[str, float]]:
        if self.base is None:
            return []
        if self.top is None or k > self.keep:
            self._select(max(k, self.keep))
        if self.ranked is None:
            assert self.top is not None
            self.ranked = sorted(self.top.items(), key=itemgetter(1), reverse=True)
        scale = 2.0 ** (-(now - self.base) / self.hl)
        return [(v, s * scale) for v, s in self.ranked[:k] if s > 0]


class _VideoTable:
    """Every counted video's counters and velocity as rows of arrays (row 0: zeros, for the
    videos nobody counted yet), so a read of a few hundred videos is one dict look-up each and
    one gather, not an object per video. Rows double when full."""

    def __init__(self) -> None:
        self.row: dict[str, int] = {}
        self.counts = np.zeros((1024, len(COUNTERS)), dtype=np.int64)
        self.vel = np.zeros(1024)  # decayed velocity, as of vel_ts
        self.vel_ts = np.zeros(1024, dtype=np.int64)

    def of(self, video_id: str) -> int:
        r = self.row.get(video_id)
        if r is None:
            # keyed by the interned id, the object the catalog index and the models hold too
            video_id = sys.intern(video_id)
            r = len(self.row) + 1
            if r == len(self.vel):
                grow = len(self.vel)
                self.counts = np.concatenate([self.counts, np.zeros_like(self.counts[:grow])])
                self.vel = np.concatenate([self.vel, np.zeros(grow)])
                self.vel_ts = np.concatenate([self.vel_ts, np.zeros(grow, dtype=np.int64)])
            self.row[video_id] = r
        return r

    def gather(self, video_ids: Sequence[str], now_ms: int, half_life_ms: float) -> VideoCounters:
        get = self.row.get
        rows = np.fromiter((get(v, 0) for v in video_ids), np.intp, len(video_ids))
        vel, ts = self.vel[rows], self.vel_ts[rows]
        # decayed(): a past write never grows; rows never written hold 0 at ts 0
        velocity = vel * np.exp2(-np.maximum(0, now_ms - ts) / half_life_ms)
        return VideoCounters(self.counts[rows], velocity)


class MemoryOnlineState:
    def __init__(self, settings: OnlineSettings, clock: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._users: OrderedDict[str, _User] = OrderedDict()
        self._videos = _VideoTable()
        self._trending: dict[str, _Trending] = {}
        self._aff_hl = settings.affinity_half_life_h * H
        self._tr_hl = settings.trending_half_life_h * H
        self._ttl = settings.user_ttl_days * 24 * H

    # -- users ---------------------------------------------------------------------------------

    def _user(self, user_id: str, create: bool) -> _User | None:
        now = self.clock()
        u = self._users.get(user_id)
        if u is not None and now - u.touched_ms > self._ttl:
            del self._users[user_id]
            u = None
        if u is None:
            if not create:
                return None
            u = _User(touched_ms=now, recent=deque(maxlen=self.settings.recent_size))
            self._users[user_id] = u
            while len(self._users) > self.settings.max_users:
                self._users.popitem(last=False)
        self._users.move_to_end(user_id)
        if create:
            u.touched_ms = now
        return u

    def apply(self, ops: Sequence[Op]) -> None:
        with self._lock:
            self._apply_all(ops)

    def rebuild_user(self, user_id: str, ops: Sequence[Op]) -> bool:
        with self._lock:  # the check and the writes as one step
            u = self._user(user_id, create=False)
            if u is not None and u.warm:
                return False
            self._apply_all(ops)
            return True

    def _apply_all(self, ops: Sequence[Op]) -> None:
        last: tuple[str, _User] | None = None  # a replay is hundreds of one user's ops
        for op in ops:
            if isinstance(op, (Count, Heat)):
                self._apply(op)
                continue
            if last is None or last[0] != op.user_id:
                u = self._user(op.user_id, create=True)
                assert u is not None
                last = (op.user_id, u)
            self._apply_user(last[1], op)

    def _apply(self, op: Count | Heat) -> None:
        if isinstance(op, Count):
            vt = self._videos
            r = vt.of(op.video_id)  # first: it may grow (replace) the arrays
            vt.counts[r, COUNTER_INDEX[op.counter]] += op.n
        elif isinstance(op, Heat):
            vt = self._videos
            vid = sys.intern(op.video_id)  # trending's ids: the catalog's objects (_VideoTable.of)
            r = vt.of(vid)
            have = (float(vt.vel[r]), int(vt.vel_ts[r]))  # a new row: 0 at ts 0, which adds 0
            vt.vel[r], vt.vel_ts[r] = decay_add(have, op.delta, op.ts_ms, self._tr_hl)
            for region in {GLOBAL, op.region or GLOBAL}:
                tr = self._trending.get(region)
                if tr is None:
                    tr = self._trending[region] = _Trending(self._tr_hl)
                tr.add(vid, op.delta, op.ts_ms)

    def _apply_user(self, u: _User, op: Op) -> None:
        if isinstance(op, Engage):
            u.recent.append((op.video_id, op.weight))
        elif isinstance(op, Affinity):
            kind = u.scores.setdefault(op.kind, {})
            kind[op.key] = decay_add(kind.get(op.key), op.delta, op.ts_ms, self._aff_hl)
        elif isinstance(op, Reset):
            u.scores.get(op.kind, {}).pop(op.key, None)
        elif isinstance(op, Mute):
            kind_m = u.mutes.setdefault(op.kind, {})
            kind_m[op.key] = max(kind_m.get(op.key, 0), op.ts_ms)
        elif isinstance(op, MarkWarm):
            u.warm = True

    def user_state(self, user_id: str, now_ms: int) -> UserState:
        with self._lock:
            u = self._user(user_id, create=False)
            if u is None:
                return UserState()
            aff = {
                kind: {k: decayed(v, ts, now_ms, self._aff_hl) for k, (v, ts) in scores.items()}
                for kind, scores in u.scores.items()
            }
            return UserState(
                recent=list(u.recent),
                affinities=aff,
                mutes={k: dict(v) for k, v in u.mutes.items()},
                warm=u.warm,
            )

    def warm_users(self, user_ids: Collection[str]) -> set[str]:
        with self._lock:
            return {
                uid
                for uid in user_ids
                if (u := self._user(uid, create=False)) is not None and u.warm
            }

    def served_since(self, user_id: str, since_ms: int) -> set[str] | None:
        with self._lock:
            u = self._user(user_id, create=False)
            if u is None or u.served is None:
                return None
            return {v for v, ts in u.served.items() if ts >= since_ms}

    def mark_served(self, user_id: str, video_ids: Collection[str], ts_ms: int) -> None:
        with self._lock:
            u = self._user(user_id, create=True)
            assert u is not None
            if u.served is None:
                u.served = {}
            for v in video_ids:
                u.served[v] = ts_ms
            self._trim(u)

    def prime_served(self, user_id: str, served: dict[str, int]) -> None:
        with self._lock:
            u = self._user(user_id, create=True)
            assert u is not None
            merged = dict(served)
            for v, ts in (u.served or {}).items():
                merged[v] = max(ts, merged.get(v, 0))
            u.served = merged
            self._trim(u)

    def _trim(self, u: _User) -> None:
        assert u.served is not None
        extra = len(u.served) - self.settings.max_served
        if extra > 0:
            for v, _ in sorted(u.served.items(), key=lambda kv: kv[1])[:extra]:
                del u.served[v]

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self._users.pop(user_id, None)

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return {
                "users": len(self._users),
                "videos": len(self._videos.row),
                "regions": len(self._trending),
            }

    # -- videos --------------------------------------------------------------------------------

    def video_counters(self, video_ids: Sequence[str], now_ms: int) -> VideoCounters:
        with self._lock:  # a write may be growing the arrays
            return self._videos.gather(video_ids, now_ms, self._tr_hl)

    def trending(self, region: str, k: int, now_ms: int) -> list[tuple[str, float]]:
        with self._lock:
            tr = self._trending.get(region)
            return tr.best(k, now_ms) if tr is not None else []

    def close(self) -> None:
        pass
