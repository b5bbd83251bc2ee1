from __future__ import annotations

import math

import numpy as np

from fyp.pipeline.candidate import Candidate, Row
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
    "aff_hashtag_max",
    "aff_hashtag_sum",
    "aff_creator",
    "aff_sound",
    "skip_streak",
    "interest_match",
    "following",
    "age_h_log",
    "duration_s",
    "region_match",
    "language_match",
)
FEATURE_INDEX = {name: j for j, name in enumerate(FEATURES)}
_SRC = {name: FEATURE_INDEX[f"src_{name}"] for name in SOURCES}
_META = FEATURE_INDEX["aff_hashtag_max"]  # the columns from here on need the catalog data


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

        # -- per candidate: what only Python can gather (dict look-ups), as tuples --
        base: list[tuple[float, ...]] = []
        found_i: list[int] = []  # (candidate, source column) of each source that found it
        found_j: list[int] = []
        meta_rows: list[int] = []
        meta: list[tuple[float, ...]] = []
        src = _SRC.get
        for i, c in enumerate(cands):
            base.append((c.source_score, c.rank_frac, len(c.sources)))
            for name in c.sources:
                j = src(name)
                if j is not None:
                    found_i.append(i)
                    found_j.append(j)
            m = c.meta
            if m is None:
                continue
            tag_aff = [tags.get(t, 0.0) for t in m.hashtags] if tags else []
            creator = m.creator_id
            meta_rows.append(i)
            meta.append(
                (
                    max(tag_aff, default=0.0),
                    sum(tag_aff),
                    creators.get(creator, 0.0),
                    sounds.get(m.sound_id, 0.0) if m.sound_id else 0.0,
                    skips.get(creator, 0.0),
                    float(len(interests.intersection(m.hashtags))) if interests else 0.0,
                    1.0 if creator in following else 0.0,
                    m.created_ms,
                    m.duration_ms or math.nan,
                    float(m.region is not None and m.region == region),
                    float(m.language is not None and m.language == language),
                )
            )

        # -- the arithmetic, column by column --
        x[found_i, found_j] = 1.0
        b = np.array(base, dtype=np.float64)
        col = FEATURE_INDEX
        x[:, col["source_score"]] = b[:, 0]
        x[:, col["rank_frac"]] = b[:, 1]
        x[:, col["n_sources"]] = b[:, 2]
        v = self.online.video_counters([c.video_id for c in cands], query.now_ms)
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
            x[:, col["emb_score"]] = query.models.affinity(
                query.user_vector, [c.video_id for c in cands]
            )
        if meta_rows:
            mm = np.array(meta, dtype=np.float64)
            rows = np.array(meta_rows, dtype=np.intp)
            x[rows, _META : _META + 7] = mm[:, :7]  # aff_* .. following: in FEATURES order
            age_ms = np.maximum(0.0, query.now_ms - mm[:, 7])
            x[rows, col["age_h_log"]] = np.log1p(age_ms / 3_600_000)
            x[rows, col["duration_s"]] = mm[:, 8] / 1000
            x[rows, col["region_match"]] = mm[:, 9]
            x[rows, col["language_match"]] = mm[:, 10]
        for i, c in enumerate(cands):
            c.features = Row(x, FEATURES, FEATURE_INDEX, i)
        return cands
