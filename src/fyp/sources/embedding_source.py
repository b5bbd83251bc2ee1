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
        found = query.models.search(query.user_vector, quota + min(len(query.served), 1000))
        out = [Candidate(v, self.reason, source_score=s) for v, s in found if v not in query.served]
        return out[:quota]
