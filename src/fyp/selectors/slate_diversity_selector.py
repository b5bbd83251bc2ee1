from __future__ import annotations

import math

import numpy as np

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import Selector, StageBase
from fyp.selectors.top_k_score_selector import TopKScoreSelector, ranked

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
        order = ranked(cands)
        shortlist = order[: max(k * SHORTLIST_PER_SLOT, 100)]
        n = len(shortlist)
        explore = sorted(
            (c for c in cands if c.exploration and not c.repeat), key=lambda c: -c.source_score
        )
        slots = set(exploration_slots(k, fs.exploration_share, len(explore)))
        pool = list(shortlist)
        at = {id(c): i for i, c in enumerate(pool)}
        for c in explore:
            if id(c) not in at:
                at[id(c)] = len(pool)
                pool.append(c)
        p = len(pool)
        # The pool as arrays: relevance by shortlist rank (0 for fresh-pool extras), repeats,
        # creators as codes, and hashtags and sound as a 0/1 matrix over this request's tokens
        # (Jaccard = intersection / union, one product a pick).
        rel = np.zeros(p)
        rel[:n] = 1.0 - np.arange(n) / n
        relevance = (1 - lam) * rel
        repeat = np.fromiter((c.repeat for c in pool), bool, p)
        codes: dict[str | None, int] = {}
        creator = np.fromiter(
            (codes.setdefault(c.creator_id, len(codes)) for c in pool), np.intp, p
        )
        # (The cells as a flat column of token numbers and a row per token: a list of (row,
        # token) pairs turned into an array cost six times as much.)
        tokens: dict[str, int] = {}
        per = [_tokens(c) for c in pool]
        lens = np.fromiter(map(len, per), np.intp, p)
        cols = np.fromiter(
            (tokens.setdefault(t, len(tokens)) for ts in per for t in ts), np.intp, int(lens.sum())
        )
        has = np.zeros((p, max(1, len(tokens))))
        if cols.size:
            has[np.repeat(np.arange(p), lens), cols] = 1.0
        size = has.sum(axis=1)
        max_sim = np.zeros(p)
        open_ = np.ones(p, dtype=bool)  # not chosen yet
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
                allowed = open_.copy()
                for cr in recent:
                    code = codes.get(cr)
                    if code is not None:
                        allowed &= creator != code
                if allowed.any():
                    v = relevance - lam * max_sim
                    v[repeat] -= REPEAT_PENALTY
                    v[~allowed] = -math.inf
                    pick = pool[int(np.argmax(v))]  # the first best, as pool order breaks ties
            if pick is None:
                pick = next((c for c in order if ok(c)), None)
            if pick is None:  # every remaining candidate breaks the spacing: place the best
                pick = next((c for c in order if id(c) not in chosen), None)
            if pick is None:
                break
            out.append(pick)
            chosen.add(id(pick))
            i = at.get(id(pick))
            if i is not None:
                open_[i] = False
            if lam > 0:
                if i is not None:  # a pool member: its tokens are its row
                    t, n_t = has[i], float(size[i])
                else:
                    mine = _tokens(pick)
                    t = np.zeros(has.shape[1])
                    t[[tokens[x] for x in mine if x in tokens]] = 1.0
                    n_t = float(len(mine))
                if n_t:
                    inter = has @ t
                    sim = inter / np.maximum(size + n_t - inter, 1.0)
                    np.maximum(max_sim, sim, out=max_sim)
        for c in out:
            c.exploration = id(c) in on_slot
        return out
