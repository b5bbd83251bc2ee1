"""The multi-objective ranker: one LightGBM binary model per action, trained on what was served
(the features the online path computed at serving time, so there is no train/serve skew) joined
with what the user did next.

An outcome belongs to a served item when the event names the same request and video, or the
same user and video within ``outcome_window_s`` after serving. Actions: ``complete`` (a play
reaching the completion threshold), ``like``, ``share``, ``comment``, ``follow`` (the video, or
its creator within the window), ``skip``, ``not_interested``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fyp.models import Event, VideoBrief
from fyp.models.events import EventType
from fyp.training import native_trees
from fyp.training.native_trees import NativeTrees
from fyp.training.signals import ts_ms

log = logging.getLogger("fyp.training")

ACTIONS = ("complete", "like", "share", "comment", "follow", "skip", "not_interested")
F64 = npt.NDArray[np.float64]


class Served(Protocol):
    """What the ranker needs of a served-log row (``fyp.storage.data.ServedRow`` has it)."""

    @property
    def request_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def video_id(self) -> str: ...
    @property
    def served_ms(self) -> int: ...
    @property
    def features(self) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    type: str
    ts_ms: int
    request_id: str | None
    watch_ms: int | None
    creator_id: str | None


class OutcomeIndex:
    """The events that may be outcomes of served items, indexed by (user, video) and
    (user, creator) for creator-level follows."""

    def __init__(self) -> None:
        self.by_video: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
        self.follows: dict[tuple[str, str], list[Outcome]] = defaultdict(list)

    def add(self, e: Event) -> None:
        self.add_row(
            e.user_id, e.video_id, e.type.value, ts_ms(e), e.request_id, e.watch_ms, e.creator_id
        )

    def add_row(
        self,
        user_id: str,
        video_id: str | None,
        type: str,
        ts_ms: int,
        request_id: str | None,
        watch_ms: int | None,
        creator_id: str | None,
    ) -> None:
        """One logged event, as columns (what :class:`fyp.training.columns.LogPage` holds)."""
        o = Outcome(type, ts_ms, request_id, watch_ms, creator_id)
        if video_id is not None:
            self.by_video[(user_id, video_id)].append(o)
        elif type == EventType.follow.value and creator_id is not None:
            self.follows[(user_id, creator_id)].append(o)


@dataclass
class RankerData:
    feature_names: list[str]
    x: F64
    labels: dict[str, npt.NDArray[np.int8]]
    served_ms: npt.NDArray[np.int64]

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])


def join(
    served: Iterable[Served],
    outcomes: OutcomeIndex,
    briefs: Mapping[str, VideoBrief],
    complete_threshold: float = 0.9,
    window_ms: int = 3_600_000,
) -> RankerData:
    """Served rows as a feature matrix (missing features are NaN) and a 0/1 label per action."""
    rows = list(served)
    names = sorted({n for r in rows for n in r.features})
    col = {n: i for i, n in enumerate(names)}
    x = np.full((len(rows), len(names)), np.nan)
    labels = {a: np.zeros(len(rows), np.int8) for a in ACTIONS}
    when = np.zeros(len(rows), np.int64)
    for i, r in enumerate(rows):
        when[i] = r.served_ms
        for n, v in r.features.items():
            x[i, col[n]] = v
        brief = briefs.get(r.video_id)

        def mine(o: Outcome, r: Served = r) -> bool:
            if o.request_id is not None and o.request_id == r.request_id:
                return True
            return r.served_ms <= o.ts_ms <= r.served_ms + window_ms

        for o in outcomes.by_video.get((r.user_id, r.video_id), ()):
            if not mine(o):
                continue
            if o.type == "play":
                duration = brief.duration_ms if brief else None
                if (
                    duration
                    and o.watch_ms is not None
                    and o.watch_ms / duration >= (complete_threshold)
                ):
                    labels["complete"][i] = 1
            elif o.type in labels:
                labels[o.type][i] = 1
        if brief is not None:
            for o in outcomes.follows.get((r.user_id, brief.creator_id), ()):
                if mine(o):
                    labels["follow"][i] = 1
    return RankerData(names, x, labels, when)


@dataclass
class Ranker:
    """Per-action probability models over named features.

    Attributes:
        feature_names: the columns ``predict`` expects, in order (missing values as NaN).
        actions: the actions with a model (others had too few positives; see ``skipped``).
        skipped: action -> why it has no model.
        native: the same models compiled to native code (``fyp.training.native_trees``), which
            ``predict`` uses when present: set by ``load`` when the saved folder has them.
        build_native: whether ``save`` compiles them (``training.native_ranker``).
    """

    feature_names: list[str]
    boosters: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    native: NativeTrees | None = field(default=None, repr=False, compare=False)
    build_native: bool = field(default=False, repr=False, compare=False)

    @property
    def actions(self) -> list[str]:
        return [a for a in ACTIONS if a in self.boosters]

    def predict(self, x: F64) -> dict[str, F64]:
        """Probability of each action for each row of ``x`` (n x len(feature_names))."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected (n, {len(self.feature_names)}) features, got {x.shape}")
        if self.native is not None and x.shape[0] > 0:
            return self.native.predict(x)
        return {
            a: np.asarray(b.predict(x, num_threads=1), dtype=np.float64)
            for a, b in self.boosters.items()
        }

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for action, booster in self.boosters.items():
            booster.save_model(str(folder / f"{action}.txt"))
        meta = {
            "feature_names": self.feature_names,
            "actions": self.actions,
            "skipped": self.skipped,
            "metrics": self.metrics,
        }
        (folder / "ranker.json").write_text(json.dumps(meta, indent=2))
        if self.build_native:
            native_trees.build(folder, self.actions)

    @classmethod
    def load(cls, folder: Path) -> Ranker:
        import lightgbm as lgb

        meta = json.loads((folder / "ranker.json").read_text())
        boosters = {a: lgb.Booster(model_file=str(folder / f"{a}.txt")) for a in meta["actions"]}
        ranker = cls(meta["feature_names"], boosters, meta["skipped"], meta.get("metrics", {}))
        ranker.native = native_trees.load(folder, ranker.actions)
        return ranker


def train(
    data: RankerData,
    min_positives: int = 20,
    rounds: int = 100,
    leaves: int = 31,
    seed: int = 42,
    learning_rate: float = 0.1,
    actions: Sequence[str] = ACTIONS,
) -> Ranker | None:
    """Fit one model per action with enough positives; the latest 20% of rows (by serving time)
    are held out for early stopping and the AUC recorded in ``metrics``.

    Returns None when there are no features or no action could be trained.
    """
    import lightgbm as lgb

    skipped: dict[str, str] = {}
    if data.rows == 0 or not data.feature_names:
        return None
    order = np.argsort(data.served_ms, kind="stable")
    cut = int(data.rows * 0.8)
    fit_rows, hold_rows = order[:cut], order[cut:]
    boosters: dict[str, Any] = {}
    metrics: dict[str, dict[str, float]] = {}
    for action in actions:
        y = data.labels[action]
        positives = int(y.sum())
        if positives < min_positives:
            skipped[action] = f"{positives} positive outcomes (< {min_positives})"
            continue
        if positives == data.rows:
            skipped[action] = "every served row is positive"
            continue
        params = {
            "objective": "binary",
            "num_leaves": leaves,
            "learning_rate": learning_rate,
            "min_data_in_leaf": 20,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.9,
            "bagging_freq": 1,
            "seed": seed,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        }
        train_set = lgb.Dataset(
            data.x[fit_rows], y[fit_rows], feature_name=data.feature_names, free_raw_data=False
        )
        held_ok = hold_rows.size > 0 and 0 < y[hold_rows].sum() < hold_rows.size
        callbacks: list[Any] = []
        valid_sets = []
        if held_ok:
            valid_sets = [lgb.Dataset(data.x[hold_rows], y[hold_rows], reference=train_set)]
            callbacks = [lgb.early_stopping(20, verbose=False)]
        booster = lgb.train(
            params, train_set, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks
        )
        boosters[action] = booster
        m: dict[str, float] = {"positives": positives, "rows": data.rows}
        if held_ok:
            held = np.asarray(booster.predict(data.x[hold_rows]), dtype=np.float64)
            m["holdout_auc"] = auc(y[hold_rows], held)
        metrics[action] = m
    if not boosters:
        log.info("ranker: no action had enough positive outcomes: %s", skipped)
        return None
    return Ranker(data.feature_names, boosters, skipped, metrics)


def auc(y: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve (ties count half)."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size)
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))
