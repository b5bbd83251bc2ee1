from __future__ import annotations

import math

import numpy as np

from fyp.pipeline.candidate import Candidate, rows_of
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase
from fyp.storage.cache import OnlineState

SOURCES = (
    "embedding",
    "item_neighbours",
    "following",
    "trending",
    "affinity",
    "content",
    "fresh",
    "backfill",
)
# Smoothed rates shrink towards these priors with the weight of PRIOR_N observations.
PRIORS = {"complete": 0.3, "like": 0.05, "share": 0.01, "skip": 0.3, "not_interested": 0.005}
PRIOR_N = 5.0


# The user's taste for a video's hashtags, creator and sound (0 where the user has none).
_TASTE = (
    "aff_hashtag_max",
    "aff_hashtag_sum",
    "aff_creator",
    "aff_sound",
    "skip_streak",
    "interest_match",
    "following",
)
# The features, in the order of the request's feature matrix (``Row``).
FEATURES = (
    "source_score",
    "rank_frac",
    "n_sources",
    "emb_score",
    "u_recent",
    "v_impressions_log",
    "v_complete_rate",
    "v_like_rate",
    "v_share_rate",
    "v_skip_rate",
    "v_ni_rate",
    "v_velocity_log",
    *(f"src_{name}" for name in SOURCES),
    *_TASTE,
    "age_h_log",
    "duration_s",
    "region_match",
    "language_match",
)
FEATURE_INDEX = {name: j for j, name in enumerate(FEATURES)}
_SRC = {name: FEATURE_INDEX[f"src_{name}"] for name in SOURCES}
# The columns that need the catalog data and the user's state (0 where the user has none).
_META_COLUMNS = (*_TASTE, "region_match", "language_match")


class FeaturesHydrator(StageBase):
    """Computes the named ranker features of every candidate as one matrix (``FEATURES``
    columns) from the candidate, its catalog data, the user's online state and the videos'
    online counters (one batched read, as a matrix); each candidate's ``features`` is its row.
    The same values go to the scorers and to the served log, so the ranker trains on exactly
    what it will see.
    """

    writes = ("features",)

    def __init__(self, online: OnlineState) -> None:
        self.online = online

    async def hydrate(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        n = len(cands)
        x = np.full((n, len(FEATURES)), math.nan)
        if n == 0:
            return cands
        st = query.state
        tags = st.affinities.get("hashtag", {})
        creators = st.affinities.get("creator", {})
        sounds = st.affinities.get("sound", {})
        skips = st.affinities.get("skip", {})
        interests = set(query.user.interests)
        following, region, language = query.following, query.region, query.language

        # -- what only Python can gather (attribute and dict look-ups), a column at a time: a
        # comprehension per column is cheaper than one loop building a tuple per candidate,
        # and a column the user has no signal for (no affinities of a kind) costs nothing --
        col = FEATURE_INDEX
        x[:, col["source_score"]] = [c.source_score for c in cands]
        x[:, col["rank_frac"]] = [c.rank_frac for c in cands]
        x[:, col["n_sources"]] = [len(c.sources) for c in cands]
        found = [(i, _SRC[name]) for i, c in enumerate(cands) for name in c.sources if name in _SRC]
        if found:
            fi, fj = zip(*found, strict=True)
            x[list(fi), list(fj)] = 1.0  # the sources that found each candidate
        ids = [c.video_id for c in cands]
        v = self.online.video_counters(ids, query.now_ms)
        x[:, col["v_velocity_log"]] = np.log1p(np.maximum(0.0, v.velocity))
        imp, plays, completes, likes, shares, skips_n, ni, reports = (
            v.column(name).astype(np.float64)
            for name in (
                "impressions",
                "plays",
                "completes",
                "likes",
                "shares",
                "skips",
                "not_interested",
                "reports",
            )
        )
        shown = np.maximum(imp, plays)
        # smoothed rates: (hits + prior * PRIOR_N) / (shown + PRIOR_N)
        x[:, col["v_impressions_log"]] = np.log1p(shown)
        x[:, col["v_complete_rate"]] = (completes + PRIORS["complete"] * PRIOR_N) / (
            plays + PRIOR_N
        )
        x[:, col["v_like_rate"]] = (likes + PRIORS["like"] * PRIOR_N) / (shown + PRIOR_N)
        x[:, col["v_share_rate"]] = (shares + PRIORS["share"] * PRIOR_N) / (shown + PRIOR_N)
        x[:, col["v_skip_rate"]] = (skips_n + PRIORS["skip"] * PRIOR_N) / (shown + PRIOR_N)
        x[:, col["v_ni_rate"]] = (ni + reports + PRIORS["not_interested"] * PRIOR_N) / (
            shown + PRIOR_N
        )
        x[:, col["u_recent"]] = float(len(st.recent))
        if query.models is not None and query.user_vector is not None:
            x[:, col["emb_score"]] = query.models.affinity(query.user_vector, ids)
        rows = [i for i, c in enumerate(cands) if c.meta is not None]
        if rows:
            metas = [m for c in cands if (m := c.meta) is not None]
            by = {name: np.zeros(len(metas)) for name in _META_COLUMNS}
            creator_of = [m.creator_id for m in metas]
            if tags:
                # All candidates' hashtags as one flat column and a candidate number for each:
                # a nested comprehension (a list per candidate) cost twice as much. bincount
                # adds in order, so the sums are the ones a Python sum per candidate gives.
                get, m_n = tags.get, len(metas)
                lens = np.fromiter(map(len, (m.hashtags for m in metas)), np.intp, m_n)
                flat = np.fromiter(
                    (get(t, 0.0) for m in metas for t in m.hashtags), np.float64, int(lens.sum())
                )
                owner = np.repeat(np.arange(m_n), lens)
                by["aff_hashtag_sum"][:] = np.bincount(owner, weights=flat, minlength=m_n)
                some = lens > 0
                if flat.size:
                    starts = np.cumsum(lens) - lens
                    by["aff_hashtag_max"][some] = np.maximum.reduceat(flat, starts[some])
            if creators:
                by["aff_creator"][:] = [creators.get(cr, 0.0) for cr in creator_of]
            if sounds:
                by["aff_sound"][:] = [
                    sounds.get(m.sound_id, 0.0) if m.sound_id else 0.0 for m in metas
                ]
            if skips:
                by["skip_streak"][:] = [skips.get(cr, 0.0) for cr in creator_of]
            if interests:
                by["interest_match"][:] = [len(interests.intersection(m.hashtags)) for m in metas]
            if following:
                by["following"][:] = [cr in following for cr in creator_of]
            if region is not None:
                by["region_match"][:] = [m.region == region for m in metas]
            if language is not None:
                by["language_match"][:] = [m.language == language for m in metas]
            at = np.array(rows, dtype=np.intp)
            for name, values in by.items():
                x[at, col[name]] = values
            created = np.array([m.created_ms for m in metas], dtype=np.float64)
            age_ms = np.maximum(0.0, query.now_ms - created)
            x[at, col["age_h_log"]] = np.log1p(age_ms / 3_600_000)
            duration = [m.duration_ms or math.nan for m in metas]
            x[at, col["duration_s"]] = np.array(duration, dtype=np.float64) / 1000
        for c, row in zip(cands, rows_of(x, FEATURES, FEATURE_INDEX), strict=True):
            c.features = row
        return cands
