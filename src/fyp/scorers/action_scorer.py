from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fyp.pipeline.candidate import Candidate, feature_matrix, rows_of
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase

ACTIONS = ("complete", "like", "share", "comment", "follow", "skip", "not_interested")


def _g(f: dict[str, float], name: str) -> float:
    v = f.get(name, 0.0)
    return 0.0 if math.isnan(v) else v


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def heuristic(f: dict[str, float]) -> dict[str, float]:
    """Predicted action probabilities from the same features the ranker sees, for when no
    ranker is trained: the video's smoothed rates, bent by the user's affinity for it."""
    emb = f.get("emb_score", math.nan)
    taste = (
        0.5 * _g(f, "aff_hashtag_max")
        + 0.2 * _g(f, "aff_hashtag_sum")
        + 0.5 * _g(f, "aff_creator")
        + 0.3 * _g(f, "aff_sound")
        + 0.4 * _g(f, "interest_match")
        + 1.0 * _g(f, "following")
        + (0.0 if math.isnan(emb) else 0.5 * emb)
    )
    pers = math.tanh(taste / 2)
    neg = math.tanh(0.7 * _g(f, "skip_streak"))
    complete = _g(f, "v_complete_rate")
    like = _g(f, "v_like_rate")
    share = _g(f, "v_share_rate")
    return {
        "complete": _clip(complete * (1 + 0.8 * pers - 0.5 * neg)),
        "like": _clip(like * (1 + 1.5 * pers - 0.5 * neg)),
        "share": _clip(share * (1 + pers)),
        "comment": _clip(0.5 * like * (1 + pers)),
        "follow": _clip(0.01 * (1 + pers) * (1 - _g(f, "following"))),
        "skip": _clip(_g(f, "v_skip_rate") * (1 - 0.6 * pers) + 0.25 * neg),
        "not_interested": _clip(_g(f, "v_ni_rate") * (1 + neg)),
    }


TASTE = (
    ("aff_hashtag_max", 0.5),
    ("aff_hashtag_sum", 0.2),
    ("aff_creator", 0.5),
    ("aff_sound", 0.3),
    ("interest_match", 0.4),
    ("following", 1.0),
)
COLUMNS = (
    *(name for name, _ in TASTE),
    "emb_score",
    "skip_streak",
    "v_complete_rate",
    "v_like_rate",
    "v_share_rate",
    "v_skip_rate",
    "v_ni_rate",
)


def heuristic_batch(x: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.float64]]:
    """``heuristic`` over many candidates at once (same numbers, one numpy pass): ``x`` holds
    their ``COLUMNS`` features, NaN where missing (see ``feature_matrix``)."""
    col = {c: i for i, c in enumerate(COLUMNS)}
    emb = x[:, col["emb_score"]]
    x = np.nan_to_num(x, nan=0.0)
    taste = sum(w * x[:, col[name]] for name, w in TASTE) + 0.5 * np.nan_to_num(emb, nan=0.0)
    pers = np.tanh(np.asarray(taste) / 2)
    neg = np.tanh(0.7 * x[:, col["skip_streak"]])
    like = x[:, col["v_like_rate"]]
    following = x[:, col["following"]]
    out = {
        "complete": x[:, col["v_complete_rate"]] * (1 + 0.8 * pers - 0.5 * neg),
        "like": like * (1 + 1.5 * pers - 0.5 * neg),
        "share": x[:, col["v_share_rate"]] * (1 + pers),
        "comment": 0.5 * like * (1 + pers),
        "follow": 0.01 * (1 + pers) * (1 - following),
        "skip": x[:, col["v_skip_rate"]] * (1 - 0.6 * pers) + 0.25 * neg,
        "not_interested": x[:, col["v_ni_rate"]] * (1 + neg),
    }
    return {a: np.clip(v, 0.0, 1.0) for a, v in out.items()}


class ActionScorer(StageBase):
    """Predicts each action's probability: the active ranker's models where it has them (one
    batched call over the named features, missing ones as NaN), the heuristic elsewhere (not
    computed at all when the ranker has every action)."""

    writes = ("predictions",)

    def score(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        if not cands:
            return cands
        ranker = query.models.ranker if query.models is not None else None
        ranked: dict[str, npt.NDArray[np.float64]] = {}
        if ranker is not None:
            x = feature_matrix(cands, list(ranker.feature_names))
            for action, values in ranker.predict(x).items():
                ranked[action] = np.asarray(values, dtype=np.float64)
        if all(a in ranked for a in ACTIONS):  # the heuristic would be overwritten everywhere
            preds = {a: ranked[a] for a in ACTIONS}
        else:
            preds = heuristic_batch(feature_matrix(cands, COLUMNS))
        preds.update(ranked)
        actions = list(preds)
        table = np.column_stack([preds[a] for a in actions])
        for c, row in zip(cands, rows_of(table, actions), strict=True):
            c.predictions = row
        return cands
