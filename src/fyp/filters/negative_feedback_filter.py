from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import FilterResult, StageBase

DAY_MS = 86_400_000


class NegativeFeedbackFilter(StageBase):
    """Acts on negatives at once: a reported or not-interested video never comes back; a
    not-interested creator, sound or hashtag is muted for ``not_interested_days``."""

    def filter(self, query: Query, cands: list[Candidate]) -> FilterResult:
        mutes = query.state.mutes
        gone = set(mutes.get("report", {})) | set(mutes.get("video", {}))
        since = query.now_ms - int(query.settings.not_interested_days * DAY_MS)
        creators = {k for k, ts in mutes.get("creator", {}).items() if ts >= since}
        sounds = {k for k, ts in mutes.get("sound", {}).items() if ts >= since}
        tags = {k for k, ts in mutes.get("hashtag", {}).items() if ts >= since}
        if not (gone or creators or sounds or tags):  # most users: nothing to check
            return FilterResult(kept=list(cands))
        res = FilterResult(kept=[])
        for c in cands:
            m = c.meta
            bad = c.video_id in gone or (
                m is not None
                and (
                    m.creator_id in creators
                    or (m.sound_id is not None and m.sound_id in sounds)
                    or any(t in tags for t in m.hashtags)
                )
            )
            (res.removed if bad else res.kept).append(c)
        return res
