"""Properties of the page selectors: a subset of at most k, no duplicates, creator spacing kept
whenever any remaining candidate allows it, exploration slots filled from the fresh pool."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from fyp.config import FeedSettings
from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.selectors.slate_diversity_selector import (
    REPEAT_PENALTY,
    SHORTLIST_PER_SLOT,
    SlateDiversitySelector,
    exploration_slots,
)
from fyp.selectors.top_k_score_selector import TopKScoreSelector, ranked
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


def by_score(c: Candidate) -> tuple[bool, bool, float]:
    """The page order written out as a sort key: repeats last, NaN scores after real ones."""
    nan = math.isnan(c.score)
    return (c.repeat, nan, 0.0 if nan else -c.score)


def _reference_select(query: Query, cands: list[Candidate], k: int) -> list[Candidate]:
    """The selector as plain Python, one candidate at a time (how it was first written):
    the array version must pick exactly the same page."""
    fs = query.settings
    lam = fs.diversity
    window = max(0, fs.creator_spacing - 1)
    if k <= 0 or not cands:
        return []
    if lam == 0 and window == 0 and fs.exploration_share == 0:
        return TopKScoreSelector().select(query, cands, k)
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

    def tokens(c: Candidate) -> set[str]:
        m = c.meta
        return set() if m is None else {*m.hashtags, f"\x00{m.sound_id}" if m.sound_id else "\x00"}

    max_sim = dict.fromkeys((id(c) for c in pool), 0.0)
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
                if id(c) in chosen or (window and c.creator_id in recent):
                    continue
                v = (1 - lam) * rel.get(id(c), 0.0) - lam * max_sim[id(c)]
                if c.repeat:
                    v -= REPEAT_PENALTY
                if v > best:
                    best, pick = v, c
        if pick is None:
            pick = next((c for c in order if ok(c)), None)
        if pick is None:
            pick = next((c for c in order if id(c) not in chosen), None)
        if pick is None:
            break
        out.append(pick)
        chosen.add(id(pick))
        t = tokens(pick)
        if lam > 0 and t:
            for c in pool:
                m = tokens(c)
                if m and id(c) not in chosen:
                    max_sim[id(c)] = max(max_sim[id(c)], len(m & t) / len(m | t))
    for c in out:
        c.exploration = id(c) in on_slot
    return out


@st.composite
def tagged_slates(draw: st.DrawFn) -> tuple[list[Candidate], int, FeedSettings]:
    """Slates whose videos draw hashtags and sounds from small vocabularies (so pages overlap),
    some without catalog data, some repeats, many ties."""
    cands, k, fs = draw(slates())
    for c in cands:
        if draw(st.integers(0, 9)) == 0:
            c.meta = None
        elif c.meta is not None:
            tags = draw(st.lists(st.sampled_from("abcdefg"), max_size=4))
            sound = draw(st.one_of(st.none(), st.sampled_from(["s1", "s2", "s3"])))
            c.meta = dataclasses.replace(c.meta, hashtags=tuple(tags), sound_id=sound)
        c.repeat = draw(st.integers(0, 7)) == 0
        if draw(st.booleans()):
            c.score = float(draw(st.integers(0, 3)))  # ties
    return cands, k, fs


@settings(max_examples=300, deadline=None)
@given(tagged_slates())
def test_slate_matches_the_plain_reference(
    slate: tuple[list[Candidate], int, FeedSettings],
) -> None:
    cands, k, fs = slate
    query = make_query(settings=fs)
    flags = [c.exploration for c in cands]
    want = _reference_select(query, cands, k)
    want_flags = [c.exploration for c in want]
    for c, f in zip(cands, flags, strict=True):  # the selector sets them on its page
        c.exploration = f
    got = SlateDiversitySelector().select(query, cands, k)
    assert [c.video_id for c in got] == [c.video_id for c in want]
    assert [c.exploration for c in got] == want_flags


@settings(max_examples=200, deadline=None)
@given(tagged_slates())
def test_ranked_is_the_by_score_sort(slate: tuple[list[Candidate], int, FeedSettings]) -> None:
    cands, _, _ = slate
    assert [id(c) for c in ranked(cands)] == [id(c) for c in sorted(cands, key=by_score)]
