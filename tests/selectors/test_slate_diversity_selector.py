"""Properties of the page selectors: a subset of at most k, no duplicates, creator spacing kept
whenever any remaining candidate allows it, exploration slots filled from the fresh pool."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from fyp.config import FeedSettings
from fyp.pipeline.candidate import Candidate
from fyp.selectors.slate_diversity_selector import SlateDiversitySelector, exploration_slots
from fyp.selectors.top_k_score_selector import TopKScoreSelector
from tests.pipeline.support import cand, make_query


@st.composite
def slates(draw: st.DrawFn) -> tuple[list[Candidate], int, FeedSettings]:
    n = draw(st.integers(0, 40))
    creators = draw(st.integers(1, 8))
    cands = []
    for i in range(n):
        score = draw(st.one_of(st.floats(-5, 5), st.just(math.nan)))
        c = cand(i, creator=f"c{draw(st.integers(0, creators - 1))}", score=score)
        c.exploration = draw(st.booleans())
        c.source_score = draw(st.floats(0, 1))
        cands.append(c)
    k = draw(st.integers(0, 30))
    fs = FeedSettings(
        creator_spacing=draw(st.integers(0, 6)),
        diversity=draw(st.floats(0, 1)),
        exploration_share=draw(st.sampled_from([0.0, 0.1, 0.3])),
    )
    return cands, k, fs


def _spacing_ok(out: list[Candidate], cands: list[Candidate], spacing: int) -> bool:
    """Each repeat inside the window happened only when no remaining candidate avoided it."""
    window = max(0, spacing - 1)
    for i, c in enumerate(out):
        recent = {x.creator_id for x in out[max(0, i - window) : i]} if window else set()
        if c.creator_id in recent:
            remaining = [x for x in cands if x not in out[:i]]
            if any(x.creator_id not in recent for x in remaining):
                return False
    return True


@settings(max_examples=150, deadline=None)
@given(slates())
def test_slate_is_a_spaced_subset_of_at_most_k(
    slate: tuple[list[Candidate], int, FeedSettings],
) -> None:
    cands, k, fs = slate
    out = SlateDiversitySelector().select(make_query(settings=fs), cands, k)
    assert len(out) <= k
    assert len(out) == min(k, len(cands))  # it never leaves a slot empty it could fill
    assert len({id(c) for c in out}) == len(out)
    assert all(any(c is x for x in cands) for c in out)
    assert _spacing_ok(out, cands, fs.creator_spacing)


@settings(max_examples=100, deadline=None)
@given(slates())
def test_top_k_is_sorted_with_nan_last(slate: tuple[list[Candidate], int, FeedSettings]) -> None:
    cands, k, fs = slate
    out = TopKScoreSelector().select(make_query(settings=fs), cands, k)
    assert len(out) == min(k, len(cands))
    scores = [c.score for c in out]
    finite = [s for s in scores if not math.isnan(s)]
    assert finite == sorted(finite, reverse=True)
    assert scores[: len(finite)] == finite  # NaN only after every real score


def test_spacing_holds_when_creators_allow_it() -> None:
    cands = [cand(i, creator=f"c{i % 3}", score=100.0 - i) for i in range(30)]
    cands[0].score = cands[1].score = 1000.0  # two top videos of different creators
    fs = FeedSettings(creator_spacing=3, diversity=0.0, exploration_share=0.0)
    out = SlateDiversitySelector().select(make_query(settings=fs), cands, 9)
    creators = [c.creator_id for c in out]
    assert all(len(set(creators[i : i + 3])) == 3 for i in range(len(creators) - 2))


def test_exploration_slots_go_to_the_fresh_pool_and_are_flagged() -> None:
    cands = [cand(i, score=100.0 - i) for i in range(20)]
    newbie = cand(99, creator="new", score=-50.0)
    newbie.exploration, newbie.source_score = True, 0.9
    fs = FeedSettings(exploration_share=0.1, diversity=0.0, creator_spacing=0)
    out = SlateDiversitySelector().select(make_query(settings=fs), [*cands, newbie], 10)
    assert newbie in out and newbie.exploration is True
    assert out.index(newbie) == exploration_slots(10, 0.1, 1)[0]
    assert sum(c.exploration for c in out) == 1


def test_diversity_spreads_hashtags() -> None:
    # The ten best videos share one hashtag; with diversity on, other hashtags get in.
    cands = []
    for i in range(30):
        c = cand(i, creator=f"c{i}", score=100.0 - i)
        assert c.meta is not None
        tag = "a" if i < 10 else ("b" if i % 2 else "c")
        c.meta = dataclasses.replace(c.meta, hashtags=(tag,), sound_id=None)
        cands.append(c)
    plain = FeedSettings(diversity=0.0, creator_spacing=0, exploration_share=0.0)
    diverse = FeedSettings(diversity=0.8, creator_spacing=0, exploration_share=0.0)
    sel = SlateDiversitySelector()

    def tags(fs: FeedSettings) -> int:
        out = sel.select(make_query(settings=fs), cands, 6)
        return len({c.meta.hashtags for c in out if c.meta})

    assert tags(plain) == 1
    assert tags(diverse) == 3
