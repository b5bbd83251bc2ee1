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


def rate(hits: int, shown: int, prior: float) -> float:
    return (hits + prior * PRIOR_N) / (shown + PRIOR_N)


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
        out: list[dict[str, float]] = []
        for c, e in zip(cands, emb, strict=True):
            m = c.meta
            s = c.stats or _EMPTY
            f: dict[str, float] = {f"src_{name}": 1.0 for name in c.sources if name in SOURCES}
            f["source_score"] = c.source_score
            f["rank_frac"] = c.rank_frac
            f["n_sources"] = float(len(c.sources))
            f["emb_score"] = e
            f["u_recent"] = n_recent
            if m is not None:
                tag_aff = [tags.get(t, 0.0) for t in m.hashtags]
                f["aff_hashtag_max"] = max(tag_aff, default=0.0)
                f["aff_hashtag_sum"] = sum(tag_aff)
                f["aff_creator"] = creators.get(m.creator_id, 0.0)
                f["aff_sound"] = sounds.get(m.sound_id, 0.0) if m.sound_id else 0.0
                f["skip_streak"] = skips.get(m.creator_id, 0.0)
                f["interest_match"] = float(len(interests.intersection(m.hashtags)))
                f["following"] = 1.0 if m.creator_id in query.following else 0.0
                f["age_h_log"] = math.log1p(max(0, query.now_ms - m.created_ms) / 3_600_000)
                f["duration_s"] = m.duration_ms / 1000 if m.duration_ms else math.nan
                f["region_match"] = float(m.region is not None and m.region == query.region)
                f["language_match"] = float(m.language is not None and m.language == query.language)
            shown = max(s.get("impressions"), s.get("plays"))
            f["v_impressions_log"] = math.log1p(shown)
            f["v_complete_rate"] = rate(s.get("completes"), s.get("plays"), PRIORS["complete"])
            f["v_like_rate"] = rate(s.get("likes"), shown, PRIORS["like"])
            f["v_share_rate"] = rate(s.get("shares"), shown, PRIORS["share"])
            f["v_skip_rate"] = rate(s.get("skips"), shown, PRIORS["skip"])
            f["v_ni_rate"] = rate(
                s.get("not_interested") + s.get("reports"), shown, PRIORS["not_interested"]
            )
            f["v_velocity_log"] = math.log1p(max(0.0, s.velocity))
            out.append(f)
        for c, f in zip(cands, out, strict=True):
            c.features = f
        return cands
