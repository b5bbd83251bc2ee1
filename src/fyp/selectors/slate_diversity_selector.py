from __future__ import annotations

import math

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import Selector, StageBase
from fyp.selectors.top_k_score_selector import TopKScoreSelector, by_score

SHORTLIST_PER_SLOT = 10
REPEAT_PENALTY = 10.0


def _tokens(c: Candidate) -> frozenset[str]:
    m = c.meta
    if m is None:
        return frozenset()
    return frozenset((*m.hashtags, f"\x00{m.sound_id}" if m.sound_id else "\x00"))


def exploration_slots(k: int, share: float, available: int) -> list[int]:
    """Positions of the exploration slots, spread evenly over the page."""
    n = min(available, round(k * share))
    if share > 0 and available and k >= 2 and n == 0:
        n = 1
    return [((j + 1) * k) // (n + 1) for j in range(n)]


class SlateDiversitySelector(StageBase):
    """Builds the page greedily: maximal marginal relevance over hashtags and sounds (trade-off
    ``diversity``), no creator twice within ``creator_spacing`` consecutive positions, and
    ``exploration_share`` of the positions given to fresh-pool candidates. Falls back to
    ``TopKScoreSelector`` when all three are off.

    The spacing is kept whenever any remaining candidate allows it; only when none does (a
    catalog of one creator) is a repeat placed.
    """

    def __init__(self, fallback: Selector | None = None) -> None:
        self.fallback = fallback or TopKScoreSelector()

    def select(self, query: Query, cands: list[Candidate], k: int) -> list[Candidate]:
        fs = query.settings
        lam = fs.diversity
        window = max(0, fs.creator_spacing - 1)
        if k <= 0 or not cands:
            return []
        if lam == 0 and window == 0 and fs.exploration_share == 0:
            return self.fallback.select(query, cands, k)
        order = sorted(cands, key=by_score)
        shortlist = order[: max(k * SHORTLIST_PER_SLOT, 100)]
        n = len(shortlist)
        rel = {id(c): 1.0 - i / n for i, c in enumerate(shortlist)}
        explore = sorted(
            (c for c in cands if c.exploration and not c.repeat), key=lambda c: -c.source_score
        )
        slots = set(exploration_slots(k, fs.exploration_share, len(explore)))
        pool = list(shortlist)
        in_pool = {id(c) for c in pool}
        pool.extend(c for c in explore if id(c) not in in_pool)
        # Token sets as bit masks over this request's tokens: Jaccard by two popcounts.
        bits: dict[str, int] = {}
        masks: dict[int, int] = {}
        for c in pool:
            m = 0
            for tok in _tokens(c):
                m |= 1 << bits.setdefault(tok, len(bits))
            masks[id(c)] = m
        max_sim = dict.fromkeys(masks, 0.0)
        chosen: set[int] = set()
        on_slot: set[int] = set()
        out: list[Candidate] = []

        for pos in range(min(k, len(cands))):
            recent = {c.creator_id for c in out[-window:]} if window else set()

            def ok(c: Candidate, recent: set[str | None] = recent) -> bool:
                return id(c) not in chosen and (not window or c.creator_id not in recent)

            pick: Candidate | None = None
            if pos in slots:
                pick = next((c for c in explore if ok(c)), None)
                if pick is not None:
                    on_slot.add(id(pick))
            if pick is None:
                best = -math.inf
                for c in pool:
                    key = id(c)
                    if key in chosen or (window and c.creator_id in recent):
                        continue
                    v = (1 - lam) * rel.get(key, 0.0) - lam * max_sim[key]
                    if c.repeat:
                        v -= REPEAT_PENALTY
                    if v > best:
                        best, pick = v, c
            if pick is None:
                pick = next((c for c in order if ok(c)), None)
            if pick is None:  # every remaining candidate breaks the spacing: place the best
                pick = next((c for c in order if id(c) not in chosen), None)
            if pick is None:
                break
            out.append(pick)
            chosen.add(id(pick))
            if lam > 0:
                t = masks.get(id(pick))
                if t is None:
                    t = 0
                    for tok in _tokens(pick):
                        t |= 1 << bits.setdefault(tok, len(bits))
                if t:
                    for c in pool:
                        key = id(c)
                        m = masks[key]
                        if m and key not in chosen:
                            sim = (m & t).bit_count() / (m | t).bit_count()
                            if sim > max_sim[key]:
                                max_sim[key] = sim
        for c in out:
            c.exploration = id(c) in on_slot
        return out
