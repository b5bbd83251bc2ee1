from __future__ import annotations

import bisect
import random
from operator import itemgetter

import numpy as np

from fyp.config import ServingSettings
from fyp.pipeline.candidate import Candidate
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.pipeline.query import Query
from fyp.pipeline.stages import StageBase
from fyp.storage.cache import OnlineState
from fyp.storage.cache.base import COUNTER_INDEX

# Videos drawn per request: the whole window when it is smaller, else a uniform sample of it
# (seeded by the request), so every young video keeps being drawn while a large catalog's
# thousands of uploads a day cost no more than this many stats reads and Beta draws.
SAMPLE_PER_SLOT = 8
MIN_SAMPLE = 200
_COLUMNS = ("impressions", "plays", "completes", "likes", "shares", "not_interested")


class FreshSource(StageBase):
    """The fresh pool: young videos that have had fewer than ``fresh_max_impressions``
    impressions, ranked by Thompson sampling on Beta posteriors of their observed completion and
    like rates (so a brand-new video with no events still gets drawn). Every candidate is an
    exploration candidate; a video leaves the pool when its impressions run out, and the ones
    that did well keep being found by trending."""

    reason = "fresh"

    def __init__(
        self, catalog: CatalogIndex, online: OnlineState, serving: ServingSettings
    ) -> None:
        self.catalog = catalog
        self.online = online
        self.serving = serving

    async def get_candidates(self, query: Query) -> list[Candidate]:
        quota = query.settings.quotas.fresh
        if quota <= 0:
            return []
        snap = self.catalog.snapshot()
        oldest = query.now_ms - int(self.serving.fresh_window_h * 3_600_000)
        newest = snap.newest
        # newest is ordered by (-created_ms, id): the window is a prefix of it
        window = bisect.bisect_right(newest, -oldest, key=lambda m: -m.created_ms)
        # Seeded by the request: the same request samples and draws the same.
        gen = np.random.default_rng(random.Random(query.request_id).getrandbits(64))
        n = max(MIN_SAMPLE, SAMPLE_PER_SLOT * quota)
        if window <= n:
            picks = newest[:window]
        else:  # n distinct positions, gathered in one call (a loop of list look-ups cost more)
            picks = list(itemgetter(*gen.choice(window, n, replace=False).tolist())(newest))
        served = query.served
        pool = [m for m in picks if m.id not in served] if served else picks
        if not pool:
            return []
        ids = [m.id for m in pool]
        counters = self.online.video_counters(ids, query.now_ms)
        c = counters.counts[:, [COUNTER_INDEX[k] for k in _COLUMNS]].astype(np.float64)
        shown = np.maximum(c[:, 0], c[:, 1])
        bad = np.maximum(0.0, shown - c[:, 2]) + 3 * c[:, 5]
        good = c[:, 2] + c[:, 3] + 2 * c[:, 4]
        draw = gen.beta(1.0 + good, 1.0 + bad)
        age = np.maximum(0, query.now_ms - np.array([m.created_ms for m in pool]))
        half_life = query.settings.freshness_half_life_h * 3_600_000
        score = draw * (0.5 + 0.5 * np.exp2(-age / half_life))
        score[shown >= self.serving.fresh_max_impressions] = -1.0  # retired
        order = np.argsort(-score, kind="stable")[:quota]
        return [
            Candidate(ids[i], self.reason, source_score=float(draw[i]), exploration=True)
            for i in order.tolist()
            if score[i] >= 0
        ]
