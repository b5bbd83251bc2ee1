from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase


class EmbeddingSource(StageBase):
    """Collaborative embeddings: ANN search with the user vector folded in from the user's
    recent engagements on this very request. Nothing without models or history."""

    reason = "embedding"

    async def get_candidates(self, query: Query) -> list[Candidate]:
        quota = query.settings.quotas.embedding
        if quota <= 0 or query.models is None or query.user_vector is None:
            return []
        served, ids, reason = query.served, query.models.video_ids, self.reason
        rows, scores = query.models.search_rows(query.user_vector, quota + min(len(served), 1000))
        out: list[Candidate] = []
        for i, s in zip(rows, scores, strict=True):
            v = ids[i]
            if v not in served:
                out.append(Candidate(v, reason, source_score=s))
                if len(out) == quota:
                    break
        return out
