from __future__ import annotations

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase

# A declared interest counts like this much decayed affinity (cold start).
INTEREST_WEIGHT = 1.0
MAX_KEYS = 8


class AffinitySource(StageBase):
    """Newest unseen videos of the hashtags, sounds and creators the user likes now (decayed
    affinities from events), and of their declared interests; the quota is shared by weight."""

    reason = "affinity"

    def __init__(self, catalog: CatalogIndex) -> None:
        self.catalog = catalog

    async def get_candidates(self, query: Query) -> list[Candidate]:
        quota = query.settings.quotas.affinity
        if quota <= 0:
            return []
        snap = self.catalog.snapshot()
        st = query.state
        keys: dict[tuple[str, str], float] = {}
        for tag in query.user.interests:
            keys[("hashtag", tag)] = INTEREST_WEIGHT
        for kind in ("hashtag", "sound", "creator"):
            for key, w in st.affinities.get(kind, {}).items():
                keys[(kind, key)] = keys.get((kind, key), 0.0) + w
        muted = st.mutes
        best = sorted(((w, k) for k, w in keys.items() if w > 0), reverse=True)[:MAX_KEYS]
        total = sum(w for w, _ in best)
        out: list[Candidate] = []
        taken: set[str] = set()
        for w, (kind, key) in best:
            if key in muted.get(kind, {}):
                continue
            lists = {"hashtag": snap.by_hashtag, "sound": snap.by_sound, "creator": snap.by_creator}
            share = max(1, round(quota * w / total))
            n = 0
            for vid in lists[kind].get(key, ()):
                if vid in query.served or vid in taken:
                    continue
                taken.add(vid)
                out.append(Candidate(vid, self.reason, source_score=w))
                n += 1
                if n >= share:
                    break
        out.sort(key=lambda c: -c.source_score)
        return out[:quota]
