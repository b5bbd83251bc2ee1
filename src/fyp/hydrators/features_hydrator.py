from __future__ import annotations

import math

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase
from fyp.storage.cache import VideoStats

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
_EMPTY = VideoStats()


class FeaturesHydrator(StageBase):
    """Computes the named ranker features of each candidate: the same dict is used by the
    scorer and logged with the served item, so the ranker trains on exactly what it will see.
    """

    async def hydrate(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        st = query.state
        tags = st.affinities.get("hashtag", {})
        creators = st.affinities.get("creator", {})
        sounds = st.affinities.get("sound", {})
        skips = st.affinities.get("skip", {})
        interests = set(query.user.interests)
        emb: list[float] = [math.nan] * len(cands)
        if query.models is not None and query.user_vector is not None:
            emb = [
                float(x)
                for x in query.models.affinity(query.user_vector, [c.video_id for c in cands])
            ]
        n_recent = float(len(st.recent))
        following, region, language = query.following, query.region, query.language
        now, log1p, nan = query.now_ms, math.log1p, math.nan
        pc, pl, ps, pk, pn = (
            PRIORS[a] * PRIOR_N for a in ("complete", "like", "share", "skip", "not_interested")
        )
        src_names = {name: f"src_{name}" for name in SOURCES}
        out: list[dict[str, float]] = []
        for c, e in zip(cands, emb, strict=True):
            m = c.meta
            st_ = c.stats or _EMPTY
            n = st_.counts.get
            plays = n("plays", 0)
            shown = max(n("impressions", 0), plays)
            # One dict literal (much cheaper than item by item); smoothed rates are
            # (hits + prior * PRIOR_N) / (shown + PRIOR_N).
            f: dict[str, float] = {
                "source_score": c.source_score,
                "rank_frac": c.rank_frac,
                "n_sources": float(len(c.sources)),
                "emb_score": e,
                "u_recent": n_recent,
                "v_impressions_log": log1p(shown),
                "v_complete_rate": (n("completes", 0) + pc) / (plays + PRIOR_N),
                "v_like_rate": (n("likes", 0) + pl) / (shown + PRIOR_N),
                "v_share_rate": (n("shares", 0) + ps) / (shown + PRIOR_N),
                "v_skip_rate": (n("skips", 0) + pk) / (shown + PRIOR_N),
                "v_ni_rate": (n("not_interested", 0) + n("reports", 0) + pn) / (shown + PRIOR_N),
                "v_velocity_log": log1p(max(0.0, st_.velocity)),
            }
            for name in c.sources:
                src = src_names.get(name)
                if src is not None:
                    f[src] = 1.0
            if m is not None:
                tag_aff = [tags.get(t, 0.0) for t in m.hashtags] if tags else []
                creator = m.creator_id
                f.update(
                    {
                        "aff_hashtag_max": max(tag_aff, default=0.0),
                        "aff_hashtag_sum": sum(tag_aff),
                        "aff_creator": creators.get(creator, 0.0),
                        "aff_sound": sounds.get(m.sound_id, 0.0) if m.sound_id else 0.0,
                        "skip_streak": skips.get(creator, 0.0),
                        "interest_match": (
                            float(len(interests.intersection(m.hashtags))) if interests else 0.0
                        ),
                        "following": 1.0 if creator in following else 0.0,
                        "age_h_log": log1p(max(0, now - m.created_ms) / 3_600_000),
                        "duration_s": m.duration_ms / 1000 if m.duration_ms else nan,
                        "region_match": float(m.region is not None and m.region == region),
                        "language_match": float(m.language is not None and m.language == language),
                    }
                )
            out.append(f)
        for c, f in zip(cands, out, strict=True):
            c.features = f
        return cands
