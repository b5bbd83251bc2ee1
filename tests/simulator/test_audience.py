from __future__ import annotations

import random
import statistics

from fyp.simulator.audience import SimUser, match, population, react, returns
from fyp.simulator.catalog import generate


def user(**kw: object) -> SimUser:
    base: dict[str, object] = {
        "id": "u",
        "region": "US",
        "language": "en",
        "tags": {"cats": 1.0},
        "creators": {"c1": 1.0},
        "sounds": frozenset({"s1"}),
        "preferred_ms": 20_000.0,
        "patience": 2.0,
        "activity": 0.5,
    }
    base.update(kw)
    return SimUser(**base)  # type: ignore[arg-type]


GOOD = {
    "id": "v1",
    "hashtags": ["cats"],
    "creator_id": "c1",
    "sound_id": "s1",
    "duration_ms": 20_000,
}
BAD = {
    "id": "v2",
    "hashtags": ["cars"],
    "creator_id": "c9",
    "sound_id": "s9",
    "duration_ms": 170_000,
}


def test_match_rewards_taste_and_quality() -> None:
    u = user()
    assert match(u, GOOD, 0.5) > match(u, BAD, 0.5) + 0.5
    assert match(u, BAD, 0.9) > match(u, BAD, 0.1)
    assert 0 <= match(u, BAD, 0.0) <= match(u, GOOD, 1.0) <= 1


def test_good_matches_are_watched_longer_and_skipped_less() -> None:
    rng = random.Random(0)
    u = user()
    good = [react(u, GOOD, 0.6, 0, rng)[1] for _ in range(500)]
    bad = [react(u, BAD, 0.6, 0, rng)[1] for _ in range(500)]
    assert statistics.mean(r.completion for r in good) > 3 * statistics.mean(
        r.completion for r in bad
    )
    assert sum(r.skip for r in bad) > 5 * max(1, sum(r.skip for r in good))
    assert sum(r.like for r in good) > sum(r.like for r in bad)
    # Fatigue: the same video deep into a session is watched less.
    late = [react(u, GOOD, 0.6, 150, rng)[1] for _ in range(500)]
    assert statistics.mean(r.completion for r in late) < statistics.mean(r.completion for r in good)


def test_satisfied_users_return_more_often() -> None:
    rng = random.Random(1)
    happy, unhappy = user(satisfaction=0.9), user(satisfaction=0.1)
    assert sum(returns(happy, rng) for _ in range(2000)) > 1.5 * sum(
        returns(unhappy, rng) for _ in range(2000)
    )


def test_population_is_deterministic_and_drawn_over_the_catalog() -> None:
    catalog = generate(videos=300, creators=30, seed=3)
    a, b = population(catalog, 50, seed=3), population(catalog, 50, seed=3)
    assert [u.tags for u in a] == [u.tags for u in b]
    tags = set(catalog.tag_counts())
    creators = set(catalog.creators)
    assert all(set(u.tags) <= tags and set(u.creators) <= creators for u in a)
    assert len({u.id for u in a}) == 50
    assert (
        population(catalog, 50, seed=4)[0].tags != a[0].tags
        or a[1].tags != population(catalog, 50, seed=4)[1].tags
    )
