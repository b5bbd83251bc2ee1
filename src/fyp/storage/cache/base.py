"""The online state's contract: what the feed reads on every request and ingest writes on every
event (seen sets, recent interests, negatives, per-video counters, trending).

Every backend (memory, Redis) passes ``tests/storage/test_online_state_contract.py``. Signals
decay with a half-life: a value ``v`` written at ``ts`` is worth ``v * 2 ** (-(now - ts) / hl)``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

# Decayed per-user scores: tastes for hashtags, creators and sounds, and the creator skip streak.
AffinityKind = Literal["hashtag", "creator", "sound", "skip"]
# Negatives: a muted video, creator, sound or hashtag (not_interested), a reported video.
MuteKind = Literal["video", "creator", "sound", "hashtag", "report"]
COUNTERS = (
    "impressions",
    "plays",
    "completes",
    "likes",
    "shares",
    "comments",
    "follows",
    "skips",
    "not_interested",
    "reports",
)
COUNTER_INDEX = {name: j for j, name in enumerate(COUNTERS)}
GLOBAL = "*"  # the trending list over every region


# The updates below are plain messages, not frozen: a cold user's rebuild makes thousands of
# them and a frozen dataclass's __init__ costs about three times as much (1.15 against 0.34 us).


class OnlineUnavailable(RuntimeError):
    """The online state cannot answer now; callers degrade (the durable store still works)."""


@dataclass(slots=True)
class Engage:
    """A positive engagement: (video, weight) joins the user's recent list."""

    user_id: str
    video_id: str
    weight: float


@dataclass(slots=True)
class Affinity:
    """Add ``delta`` (may be negative) to a decayed per-user score."""

    user_id: str
    kind: AffinityKind
    key: str
    delta: float
    ts_ms: int


@dataclass(slots=True)
class Reset:
    """Forget one per-user score (e.g. a creator's skip streak after a positive)."""

    user_id: str
    kind: AffinityKind
    key: str


@dataclass(slots=True)
class Mute:
    """A negative at ``ts_ms``; the feed decides per request how long it lasts."""

    user_id: str
    kind: MuteKind
    key: str
    ts_ms: int


@dataclass(slots=True)
class Count:
    """Add ``n`` to one of a video's counters (see ``COUNTERS``)."""

    video_id: str
    counter: str
    n: int = 1


@dataclass(slots=True)
class Heat:
    """Engagement velocity: decayed per video, and trending per region and globally."""

    video_id: str
    region: str | None
    delta: float
    ts_ms: int


@dataclass(slots=True)
class MarkWarm:
    """The user's state now reflects their logged history (see ``OnlineState.warm_users``)."""

    user_id: str


Op = Engage | Affinity | Reset | Mute | Count | Heat | MarkWarm


class OpSink(Protocol):
    """Where the translation of events into updates writes (``OnlineUpdater.translate``): a
    list of ops to apply (``OpList``), or a ``Fold`` that compacts them as they come."""

    def count(self, video_id: str, counter: str, n: int) -> None: ...
    def heat(self, video_id: str, region: str | None, delta: float, ts_ms: int) -> None: ...
    def engage(self, user_id: str, video_id: str, weight: float) -> None: ...
    def affinity(
        self, user_id: str, kind: AffinityKind, key: str, delta: float, ts_ms: int
    ) -> None: ...
    def reset(self, user_id: str, kind: AffinityKind, key: str) -> None: ...
    def mute(self, user_id: str, kind: MuteKind, key: str, ts_ms: int) -> None: ...


class OpList:
    """The updates as ops, in order (what ingestion applies): ``result()``."""

    __slots__ = ("_ops",)

    def __init__(self) -> None:
        self._ops: list[Op] = []

    def result(self) -> list[Op]:
        return self._ops

    def count(self, video_id: str, counter: str, n: int) -> None:
        self._ops.append(Count(video_id, counter, n))

    def heat(self, video_id: str, region: str | None, delta: float, ts_ms: int) -> None:
        self._ops.append(Heat(video_id, region, delta, ts_ms))

    def engage(self, user_id: str, video_id: str, weight: float) -> None:
        self._ops.append(Engage(user_id, video_id, weight))

    def affinity(
        self, user_id: str, kind: AffinityKind, key: str, delta: float, ts_ms: int
    ) -> None:
        self._ops.append(Affinity(user_id, kind, key, delta, ts_ms))

    def reset(self, user_id: str, kind: AffinityKind, key: str) -> None:
        self._ops.append(Reset(user_id, kind, key))

    def mute(self, user_id: str, kind: MuteKind, key: str, ts_ms: int) -> None:
        self._ops.append(Mute(user_id, kind, key, ts_ms))


class Fold(OpList):
    """Updates compacted as they arrive: ``result()`` has the same effect on any state as
    applying them in turn, in fewer ops (one per score key, per mute and per kept engagement).

    A cold user's rebuild translates hundreds of logged events straight into a fold, so the
    thousand-odd score updates they make are never built as ops (about a third of a rebuild's
    CPU went to making ``Affinity`` objects and dispatching on them again here).

    Affinity adds to one key fold into one (decay is linear, so their decayed sum at the newest
    ts is what applying them in turn leaves); a Reset keeps only what follows it (and is kept
    itself, since it also clears what the state held before); a mute keeps its newest ts; only
    the last ``recent_size`` engagements survive the recent list's bound anyway. Video ops
    (counters, heat) pass through in order.
    """

    __slots__ = ("engages", "half_life_ms", "mutes", "recent_size", "resets", "scores", "warm")

    def __init__(self, recent_size: int, half_life_ms: float) -> None:
        super().__init__()  # its list: the video ops, which pass through in order
        self.recent_size = recent_size
        self.half_life_ms = half_life_ms
        self.engages: list[Engage] = []
        self.scores: dict[tuple[str, str, str], tuple[float, int]] = {}
        self.resets: dict[tuple[str, str, str], Reset] = {}
        self.mutes: dict[tuple[str, str, str], Mute] = {}
        self.warm: dict[str, MarkWarm] = {}

    def engage(self, user_id: str, video_id: str, weight: float) -> None:
        self.engages.append(Engage(user_id, video_id, weight))

    def affinity(
        self, user_id: str, kind: AffinityKind, key: str, delta: float, ts_ms: int
    ) -> None:
        k = (user_id, kind, key)
        scores = self.scores
        scores[k] = decay_add(scores.get(k), delta, ts_ms, self.half_life_ms)

    def reset(self, user_id: str, kind: AffinityKind, key: str) -> None:
        k = (user_id, kind, key)
        self.scores.pop(k, None)
        self.resets[k] = Reset(user_id, kind, key)

    def mute(self, user_id: str, kind: MuteKind, key: str, ts_ms: int) -> None:
        k = (user_id, kind, key)
        old = self.mutes.get(k)
        if old is None or ts_ms > old.ts_ms:
            self.mutes[k] = Mute(user_id, kind, key, ts_ms)

    def add(self, op: Op) -> None:
        """Fold one op."""
        if isinstance(op, Affinity):
            self.affinity(op.user_id, op.kind, op.key, op.delta, op.ts_ms)
        elif isinstance(op, Engage):
            self.engages.append(op)
        elif isinstance(op, Reset):
            self.reset(op.user_id, op.kind, op.key)
        elif isinstance(op, Mute):
            self.mute(op.user_id, op.kind, op.key, op.ts_ms)
        elif isinstance(op, MarkWarm):
            self.warm[op.user_id] = op
        else:
            self._ops.append(op)

    def result(self) -> list[Op]:
        """The folded updates: video ops, kept engagements, resets, scores, mutes, MarkWarm."""
        out = list(self._ops)
        if self.recent_size > 0:
            # the bound is per user: keep each user's last recent_size, in order
            kept: dict[str, int] = {}
            tail: list[Engage] = []
            for op in reversed(self.engages):
                if kept.get(op.user_id, 0) < self.recent_size:
                    kept[op.user_id] = kept.get(op.user_id, 0) + 1
                    tail.append(op)
            out.extend(reversed(tail))
        out.extend(self.resets.values())
        out.extend(
            Affinity(u, kind, key, v, t)  # type: ignore[arg-type]
            for (u, kind, key), (v, t) in self.scores.items()
        )
        out.extend(self.mutes.values())
        out.extend(self.warm.values())
        return out


def compact(ops: Sequence[Op], recent_size: int, half_life_ms: float) -> list[Op]:
    """Fewer ops with the same effect on any state (see ``Fold``)."""
    fold = Fold(recent_size, half_life_ms)
    for op in ops:
        fold.add(op)
    return fold.result()


@dataclass(frozen=True, slots=True)
class UserState:
    """One user's online state as of ``now``.

    Attributes:
        recent: (video_id, weight) of recent positive engagements, oldest first.
        affinities: kind -> key -> decayed score (skip streaks under ``"skip"``).
        mutes: kind -> key -> ts_ms of the newest negative.
        warm: False when nothing is known (a new user, or one whose state expired).
    """

    recent: list[tuple[str, float]] = field(default_factory=list)
    affinities: dict[str, dict[str, float]] = field(default_factory=dict)
    mutes: dict[str, dict[str, int]] = field(default_factory=dict)
    warm: bool = False

    def affinity(self, kind: AffinityKind, key: str) -> float:
        return self.affinities.get(kind, {}).get(key, 0.0)


@dataclass(frozen=True, slots=True)
class VideoCounters:
    """Several videos' counters as one matrix, row ``i`` for the ``i``-th video asked for:
    the feed reads a few hundred videos' counters a request and computes on whole columns, so
    no per-video object is built (unknown videos: a row of zeros).

    Attributes:
        counts: (videos x ``COUNTERS``) counts, in ``COUNTERS`` order.
        velocity: each video's decayed engagement velocity, as of the read's ``now_ms``.
    """

    counts: npt.NDArray[np.int64]
    velocity: npt.NDArray[np.float64]

    @classmethod
    def empty(cls, n: int) -> VideoCounters:
        return cls(np.zeros((n, len(COUNTERS)), dtype=np.int64), np.zeros(n))

    def column(self, counter: str) -> npt.NDArray[np.int64]:
        """One counter of every video (see ``COUNTERS``)."""
        return self.counts[:, COUNTER_INDEX[counter]]

    def of(self, i: int) -> dict[str, int]:
        """Row ``i``'s non-zero counters by name."""
        return {
            name: int(n) for name, n in zip(COUNTERS, self.counts[i].tolist(), strict=True) if n
        }


class OnlineState(Protocol):
    """Per-user and per-video state on the hot path. Reads must be cheap (one round trip);
    writes come in batches from the ingest path after the store commits.

    A user's state expires ``user_ttl_days`` after their last write, so inactive users cost
    nothing; the feed rebuilds a cold user from the durable store.
    """

    def apply(self, ops: Sequence[Op]) -> None:
        """Apply a batch of updates (in order)."""

    def rebuild_user(self, user_id: str, ops: Sequence[Op]) -> bool:
        """Apply a cold user's rebuild (``ops``: only this user's, ending with ``MarkWarm``)
        unless the user is warm already, the check and the writes as one step: two requests
        (or workers) rebuilding the same cold user at once apply it once, instead of doubling
        their affinities and recent list. Returns whether these ops were applied."""

    def user_state(self, user_id: str, now_ms: int) -> UserState: ...

    def warm_users(self, user_ids: Collection[str]) -> set[str]:
        """Which of these users' states reflect their logged history (``MarkWarm`` applied and
        not expired since), in one round trip and without reading the states."""

    def served_since(self, user_id: str, since_ms: int) -> set[str] | None:
        """Videos served to the user at or after ``since_ms``; None when the served set is cold
        (never primed or expired), so the caller falls back to the durable served log."""

    def mark_served(self, user_id: str, video_ids: Collection[str], ts_ms: int) -> None:
        """Add served videos (a cold set becomes warm with just these: prime it first)."""

    def prime_served(self, user_id: str, served: dict[str, int]) -> None:
        """Load a cold served set from the durable log (video_id -> served_ms); marks it warm."""

    def video_counters(self, video_ids: Sequence[str], now_ms: int) -> VideoCounters:
        """The counters and velocity of the given videos, row by row in their order (one round
        trip; unknown videos get zeros)."""

    def trending(self, region: str, k: int, now_ms: int) -> list[tuple[str, float]]:
        """The k hottest videos of ``region`` (``GLOBAL`` for all), best first, decayed score."""

    def forget_user(self, user_id: str) -> None: ...

    def sizes(self) -> dict[str, int]:
        """How much the state holds, by kind (for the ``fyp_online_state_size`` gauge): the
        in-process state counts users, videos and trending regions; Redis its keys and bytes."""

    def close(self) -> None: ...


def decay_add(
    have: tuple[float, int] | None, delta: float, ts_ms: int, half_life_ms: float
) -> tuple[float, int]:
    """A decayed score ``have`` (value, as of its ts; None: nothing yet) plus ``delta`` written
    at ``ts_ms``, as of the newer of the two: the older side decays to the newer (one power
    instead of two ``decayed`` calls; a cold user's rebuild folds thousands of these)."""
    if have is None:
        return delta, ts_ms
    v, ts = have
    if ts_ms >= ts:
        return v * 2.0 ** ((ts - ts_ms) / half_life_ms) + delta, ts_ms
    return v + delta * 2.0 ** ((ts_ms - ts) / half_life_ms), ts


def decayed(value: float, ts_ms: int, now_ms: int, half_life_ms: float) -> float:
    """``value`` written at ``ts_ms``, as worth at ``now_ms`` (never grows for past writes)."""
    age = max(0, now_ms - ts_ms)
    return float(value * 2.0 ** (-age / half_life_ms))
