"""The features hydrator's matrix and the scorers' blend against plain per-candidate
references, and the scorers' gather of named values from the stages' matrices."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from fyp.config import OnlineSettings
from fyp.hydrators.features_hydrator import FEATURES, PRIOR_N, PRIORS, FeaturesHydrator
from fyp.models import User
from fyp.pipeline.candidate import Candidate, Row, feature_matrix, rows_of
from fyp.scorers.action_scorer import ActionScorer
from fyp.scorers.blend_scorer import BlendScorer
from fyp.scorers.feedback_scorer import BOOST, STREAK_PENALTY, FeedbackScorer
from fyp.scorers.freshness_scorer import WEIGHT as FRESH_WEIGHT
from fyp.scorers.freshness_scorer import FreshnessScorer
from fyp.storage.cache import Count, Heat, Op, UserState
from fyp.storage.cache.memory import MemoryOnlineState
from tests.pipeline.support import NOW, cand, make_query

# The videos' online counters and velocity (as of NOW) in the world below.
COUNTS: dict[str, tuple[dict[str, int], float]] = {
    "v1": ({"impressions": 40, "plays": 30, "completes": 12}, 3.0),
    "v2": ({"plays": 9, "likes": 4, "reports": 1, "skips": 2}, 0.0),
}


def reference(query: Any, c: Candidate, emb: float) -> dict[str, float]:
    """The features of one candidate written out plainly (what the hydrator must compute)."""
    st = query.state
    counts, velocity = COUNTS.get(c.video_id, ({}, 0.0))
    n = counts.get
    plays = n("plays", 0)
    shown = max(n("impressions", 0), plays)
    f = {
        "source_score": c.source_score,
        "rank_frac": c.rank_frac,
        "n_sources": float(len(c.sources)),
        "emb_score": emb,
        "u_recent": float(len(st.recent)),
        "v_impressions_log": math.log1p(shown),
        "v_complete_rate": (n("completes", 0) + PRIORS["complete"] * PRIOR_N) / (plays + PRIOR_N),
        "v_like_rate": (n("likes", 0) + PRIORS["like"] * PRIOR_N) / (shown + PRIOR_N),
        "v_share_rate": (n("shares", 0) + PRIORS["share"] * PRIOR_N) / (shown + PRIOR_N),
        "v_skip_rate": (n("skips", 0) + PRIORS["skip"] * PRIOR_N) / (shown + PRIOR_N),
        "v_ni_rate": (n("not_interested", 0) + n("reports", 0) + PRIORS["not_interested"] * PRIOR_N)
        / (shown + PRIOR_N),
        "v_velocity_log": math.log1p(max(0.0, velocity)),
    }
    for name in c.sources:
        if f"src_{name}" in FEATURES:
            f[f"src_{name}"] = 1.0
    m = c.meta
    if m is not None:
        aff = st.affinities
        tags = [aff.get("hashtag", {}).get(t, 0.0) for t in m.hashtags]
        f |= {
            "aff_hashtag_max": max(tags, default=0.0),
            "aff_hashtag_sum": sum(tags),
            "aff_creator": aff.get("creator", {}).get(m.creator_id, 0.0),
            "aff_sound": aff.get("sound", {}).get(m.sound_id, 0.0) if m.sound_id else 0.0,
            "skip_streak": aff.get("skip", {}).get(m.creator_id, 0.0),
            "interest_match": float(len(set(query.user.interests) & set(m.hashtags))),
            "following": float(m.creator_id in query.following),
            "age_h_log": math.log1p(max(0, query.now_ms - m.created_ms) / 3_600_000),
            "duration_s": m.duration_ms / 1000 if m.duration_ms else math.nan,
            "region_match": float(m.region is not None and m.region == query.region),
            "language_match": float(m.language is not None and m.language == query.language),
        }
    return {k: v for k, v in f.items() if not math.isnan(v)}


def online() -> MemoryOnlineState:
    state = MemoryOnlineState(OnlineSettings())
    ops: list[Op] = []
    for vid, (counts, velocity) in COUNTS.items():
        ops.extend(Count(vid, name, k) for name, k in counts.items())
        if velocity:
            ops.append(Heat(vid, None, velocity, NOW))
    state.apply(ops)
    return state


def hydrator() -> FeaturesHydrator:
    return FeaturesHydrator(online())


def world() -> tuple[Any, list[Candidate]]:
    state = UserState(
        recent=[("v9", 1.0), ("v8", 0.5)],
        affinities={
            "hashtag": {"t1": 2.0, "t2": -1.0},
            "creator": {"c2": 1.5},
            "skip": {"c3": 2.0},
        },
        warm=True,
    )
    query = make_query(
        user=User(id="u1", region="US", language="en", interests=["t1"]),
        state=state,
        following={"c4"},
    )
    cands = [cand(i) for i in range(8)]
    cands[3].sources = {"fresh": 0.4, "trending": 0.2, "unknown": 1.0}
    cands[3].source_score, cands[3].rank_frac = 0.4, 0.25
    assert cands[4].meta is not None and cands[5].meta is not None
    cands[4].meta = dataclasses.replace(
        cands[4].meta, region="US", language="en", duration_ms=None, hashtags=("t1", "t2")
    )
    cands[5].meta = dataclasses.replace(cands[5].meta, created_ms=NOW + 5_000)  # clock skew
    cands[6].meta = None  # not servable: only the video-side features
    assert cands[1].meta is not None and cands[7].meta is not None
    # several hashtags (one unknown to the user, one disliked), and none at all
    cands[1].meta = dataclasses.replace(cands[1].meta, hashtags=("t2", "zz", "t1"))
    cands[7].meta = dataclasses.replace(cands[7].meta, hashtags=())
    return query, cands


def test_the_matrix_holds_what_the_plain_reference_computes() -> None:
    query, cands = world()
    out = asyncio.run(hydrator().hydrate(query, cands))
    assert out is cands
    for c in out:
        assert isinstance(c.features, Row)
        expected = reference(query, c, math.nan)
        assert dict(c.features) == pytest.approx(expected), c.video_id
        for name in ("aff_hashtag_max", "aff_hashtag_sum"):  # exactly what Python computes
            assert c.features.get(name) == expected.get(name), (c.video_id, name)
        assert c.features.get("emb_score", -1.0) == -1.0  # no models: missing, not zero
    assert "aff_creator" not in cands[6].features and cands[6].features["v_like_rate"] > 0
    assert cands[2].features["aff_creator"] == 1.5 and cands[3].features["skip_streak"] == 2.0
    assert cands[4].features["following"] == 1.0 and cands[4].features["interest_match"] == 1.0
    assert (cands[1].features["aff_hashtag_max"], cands[1].features["aff_hashtag_sum"]) == (
        2.0,
        1.0,
    )
    assert (cands[7].features["aff_hashtag_max"], cands[7].features["aff_hashtag_sum"]) == (
        0.0,
        0.0,
    )


def test_feature_matrix_gathers_the_same_from_rows_or_mappings() -> None:
    query, cands = world()
    hydrated = asyncio.run(hydrator().hydrate(query, cands))
    names = ["v_like_rate", "nope", "aff_creator", "src_fresh", "duration_s", "source_score"]
    fast = feature_matrix(hydrated, names)
    plain = [dataclasses.replace(c, features=dict(c.features)) for c in hydrated]
    slow = feature_matrix(plain, names)
    assert fast.shape == (len(cands), len(names))
    np.testing.assert_array_equal(fast, slow)  # NaN where missing, on both paths
    assert np.isnan(fast[:, 1]).all()
    # a subset, reordered, still reads each candidate's own row
    sub = [hydrated[5], hydrated[1]]
    np.testing.assert_array_equal(feature_matrix(sub, names), slow[[5, 1]])
    # candidates from two hydrations fall back to the name-by-name path
    again = asyncio.run(hydrator().hydrate(query, [dataclasses.replace(hydrated[0])]))
    mixed = feature_matrix([hydrated[1], *again], names)
    np.testing.assert_array_equal(mixed, slow[[1, 0]])
    assert feature_matrix([], names).shape == (0, len(names))


def _plain_scores(query: Any, cands: list[Candidate]) -> list[tuple[float, dict[str, float]]]:
    """The blend, feedback and freshness scorers written out per candidate with dicts."""
    fs = query.settings
    out = []
    for c in cands:
        parts = {a: w * c.predictions.get(a, 0.0) for a, w in fs.blend.model_dump().items()}
        score = sum(parts.values())
        f = {k: c.features.get(k, 0.0) for k in ("aff_hashtag_max", "aff_creator", "aff_sound")}
        streak = c.features.get("skip_streak", 0.0)
        taste = f["aff_hashtag_max"] + 0.5 * f["aff_creator"] + 0.3 * f["aff_sound"]
        adj = BOOST * math.tanh(taste / 2) - STREAK_PENALTY * math.tanh(0.7 * streak)
        parts["feedback"] = adj
        score += adj
        if c.meta is not None:
            hl = fs.freshness_half_life_h * 3_600_000
            bonus = FRESH_WEIGHT * 2.0 ** (-max(0, query.now_ms - c.meta.created_ms) / hl)
            parts["freshness"] = bonus
            score += bonus
        out.append((score, parts))
    return out


def test_the_scorers_match_a_plain_per_candidate_blend() -> None:
    query, cands = world()
    cands = asyncio.run(hydrator().hydrate(query, cands))
    cands = ActionScorer().score(query, cands)
    assert all(isinstance(c.predictions, Row) for c in cands)
    cands[2].predictions = {"complete": 0.5, "like": 0.1}  # any mapping: the others count as 0
    want = _plain_scores(query, cands)
    for s in (BlendScorer(), FeedbackScorer(), FreshnessScorer()):
        cands = s.score(query, cands)
    for c, (score, parts) in zip(cands, want, strict=True):
        assert c.score == pytest.approx(score, rel=1e-12), c.video_id
        assert dict(c.parts) == pytest.approx(parts, rel=1e-12), c.video_id
    assert "freshness" not in cands[6].parts  # no catalog data: no freshness part
    # a new mapping per stage (the runner restores a skipped stage's references), also when
    # a part is added again (the per-candidate path)
    before = cands[0].parts
    FeedbackScorer().score(query, cands)
    assert cands[0].parts is not before
    assert dict(before) == pytest.approx(want[0][1], rel=1e-12)


def test_a_row_reads_as_the_mapping_of_its_named_non_missing_values() -> None:
    m = np.array([[1.0, math.nan, -2.5], [math.nan, math.nan, math.nan]])
    first, empty = rows_of(m, ("a", "b", "c"))
    want = {"a": 1.0, "c": -2.5}
    assert first.as_dict() == want and dict(first) == want
    assert list(first) == list(first.keys()) == ["a", "c"]
    assert list(first.items()) == [("a", 1.0), ("c", -2.5)] and list(first.values()) == [1.0, -2.5]
    assert first.keys() & {"c", "z"} == {"c"}  # still set-like views
    assert ("a", 1.0) in first.items() and "b" not in first and first.get("b", 7.0) == 7.0
    assert len(first) == 2 and first == want  # Mapping equality with a dict
    assert empty.as_dict() == {} and not list(empty.items()) and len(empty) == 0
