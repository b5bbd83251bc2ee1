"""Simulated users: hidden tastes, and how they react to one video at one moment.

Nothing here knows about the server. A user's reaction depends on how well the video matches
their hidden taste (hashtags, creators, sounds, preferred duration), the video's hidden quality,
noise, and fatigue deeper into a session. Boredom ends sessions; good sessions bring users back.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from fyp.simulator.catalog import SimCatalog

REGIONS = {"US": "en", "GB": "en", "DE": "de", "BR": "pt", "IN": "en", "JP": "ja"}


@dataclass
class SimUser:
    id: str
    region: str
    language: str
    tags: dict[str, float]  # hashtag -> affinity in (0, 1]
    creators: dict[str, float]
    sounds: frozenset[str]
    preferred_ms: float
    patience: float  # how much disappointment a session absorbs before the user leaves
    activity: float  # base chance of coming back on a given day
    declared: list[str] = field(default_factory=list)  # interests the user told the app
    followed: set[str] = field(default_factory=set)
    satisfaction: float = 0.5  # mean match of the last session

    def profile(self) -> dict[str, Any]:
        """The user as ``POST /v1/users`` takes it (tastes stay hidden, declared ones do not)."""
        return {
            "id": self.id,
            "region": self.region,
            "language": self.language,
            "interests": self.declared,
        }


def population(
    catalog: SimCatalog, users: int, *, seed: int = 1, prefix: str = "sim_u"
) -> list[SimUser]:
    """Users (ids ``prefix`` + a number) whose tastes are drawn over the catalog: popular tags
    and creators are liked more often, and favourite creators mostly make videos of the user's
    favourite tags."""
    rng = random.Random(seed * 7919 + 17)
    counts = catalog.tag_counts()
    tags = list(counts)
    tag_w = [counts[t] ** 0.7 for t in tags]
    by_tag: dict[str, list[str]] = {}
    for v in catalog.videos:
        for t in v.hashtags:
            by_tag.setdefault(t, []).append(v.creator_id)
    sounds = sorted({v.sound_id for v in catalog.videos if v.sound_id})
    median = catalog.median_duration_ms()
    out = []
    for i in range(users):
        fav = list(dict.fromkeys(rng.choices(tags, tag_w, k=rng.randint(2, 4))))
        affinity = {t: rng.uniform(0.5, 1.0) for t in fav}
        creators: dict[str, float] = {}
        for _ in range(rng.randint(1, 4)):
            pool = by_tag.get(rng.choice(fav)) or catalog.creators
            creators[rng.choice(pool)] = rng.uniform(0.5, 1.0)
        region = rng.choice(list(REGIONS))
        out.append(
            SimUser(
                id=f"{prefix}{i:06d}",
                region=region,
                language=REGIONS[region],
                tags=affinity,
                creators=creators,
                sounds=frozenset(rng.sample(sounds, min(len(sounds), rng.randint(0, 3)))),
                preferred_ms=median * rng.lognormvariate(0, 0.5),
                patience=rng.uniform(1.5, 4.0),
                activity=rng.uniform(0.3, 0.8),
                declared=[t for t in fav if rng.random() < 0.4],
            )
        )
    return out


def newcomer(catalog: SimCatalog, user_id: str, *, seed: int) -> SimUser:
    """A user who joins later, with tastes drawn as ``population`` draws them."""
    user = population(catalog, 1, seed=seed)[0]
    user.id = user_id
    return user


def match(user: SimUser, video: dict[str, Any], quality: float) -> float:
    """How much ``user`` wants ``video`` (the feed's JSON shape), in [0, 1]."""
    tag = max((user.tags.get(t, 0.0) for t in video.get("hashtags") or ()), default=0.0)
    creator = user.creators.get(video.get("creator_id") or "", 0.0)
    sound = 1.0 if video.get("sound_id") in user.sounds else 0.0
    duration = video.get("duration_ms")
    if duration:
        # Log-distance from the preferred length: half as long is as bad as twice as long.
        fit = math.exp(-(math.log(duration / user.preferred_ms) ** 2) / (2 * 0.7**2))
    else:
        fit = 0.5
    return min(1.0, 0.45 * tag + 0.2 * creator + 0.08 * sound + 0.1 * fit + 0.25 * quality)


@dataclass(frozen=True, slots=True)
class Reaction:
    watch_ms: int
    completion: float
    skip: bool
    like: bool
    share: bool
    comment: bool
    follow: bool
    report: bool
    not_interested: bool


def react(
    user: SimUser,
    video: dict[str, Any],
    quality: float,
    position: int,
    rng: random.Random,
) -> tuple[float, Reaction]:
    """The reaction to a video shown at ``position`` of the session, with the match behind it."""
    m = match(user, video, quality)
    fatigue = 0.99**position
    duration = video.get("duration_ms") or 20_000
    # A strong match is watched through and sometimes replayed; a weak one is swiped away.
    completion = max(0.02, min(2.0, 0.1 + 1.6 * m**1.2 * fatigue + rng.gauss(0, 0.15)))
    if completion > 1.0 and rng.random() > m:
        completion = 1.0
    skip = completion < 0.25
    creator = video.get("creator_id") or ""
    follow = creator not in user.followed and rng.random() < 0.06 * m**3
    if follow:
        user.followed.add(creator)
    return m, Reaction(
        watch_ms=int(duration * completion),
        completion=completion,
        skip=skip,
        like=rng.random() < 0.35 * m**2.5,
        share=rng.random() < 0.08 * m**3,
        comment=rng.random() < 0.04 * m**2,
        follow=follow,
        report=rng.random() < 0.01 * (1 - m) ** 3,
        not_interested=rng.random() < 0.02 * (1 - m) ** 2,
    )


def returns(user: SimUser, rng: random.Random) -> bool:
    """Does the user come back today? More likely after a satisfying last session."""
    p = user.activity * (0.4 + 1.2 * user.satisfaction)
    return rng.random() < min(p, 0.97)
