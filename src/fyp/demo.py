"""A small, deterministic demo world: creators, videos with hashtags and sounds, users with
declared interests, and a day of behaviour, so a fresh server has something to serve."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

TOPICS = [
    "dance", "cooking", "comedy", "pets", "fitness", "travel", "gaming", "music", "diy",
    "fashion", "science", "football", "makeup", "cars", "books", "art", "skate", "garden",
]  # fmt: skip
REGIONS = ["US", "GB", "DE", "BR", "IN", "JP"]
LANGUAGES = {"US": "en", "GB": "en", "DE": "de", "BR": "pt", "IN": "en", "JP": "ja"}


@dataclass(frozen=True)
class DemoWorld:
    users: list[dict[str, Any]]
    videos: list[dict[str, Any]]
    events: list[dict[str, Any]]


def build(*, creators: int = 60, videos: int = 600, users: int = 200, seed: int = 7) -> DemoWorld:
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    people: list[dict[str, Any]] = []
    creator_topic: dict[str, str] = {}
    creator_region: dict[str, str] = {}  # a video's region and language are its creator's
    for c in range(creators):
        region = rng.choice(REGIONS)
        cid = f"creator{c:03d}"
        creator_topic[cid] = rng.choice(TOPICS)
        creator_region[cid] = region
        people.append({"id": cid, "region": region, "language": LANGUAGES[region]})
    sounds = [f"sound{s:02d}" for s in range(40)]
    catalog: list[dict[str, Any]] = []
    for v in range(videos):
        cid = f"creator{rng.randrange(creators):03d}"
        main = creator_topic[cid] if rng.random() < 0.7 else rng.choice(TOPICS)
        tags = list(dict.fromkeys([main, *rng.sample(TOPICS, rng.randint(0, 2))]))
        catalog.append(
            {
                "id": f"video{v:04d}",
                "creator_id": cid,
                "caption": f"{main} clip #{main}",
                "hashtags": tags,
                "sound_id": rng.choice(sounds),
                "duration_ms": rng.choice([8_000, 15_000, 22_000, 30_000, 45_000, 60_000]),
                "region": creator_region[cid],
                "language": LANGUAGES[creator_region[cid]],
                "created_at": (start - timedelta(hours=rng.randint(0, 24 * 14))).isoformat(),
            }
        )
    viewers: list[dict[str, Any]] = []
    for u in range(users):
        region = rng.choice(REGIONS)
        viewers.append(
            {
                "id": f"user{u:04d}",
                "region": region,
                "language": LANGUAGES[region],
                "birth_year": rng.randint(1965, 2010),
                "interests": rng.sample(TOPICS, 3),
            }
        )
    events = []
    n = 0
    for viewer in viewers:
        liked = set(viewer["interests"])
        for video in rng.sample(catalog, 25):
            n += 1
            ts = start + timedelta(seconds=rng.randint(0, 86_400))
            base = {"user_id": viewer["id"], "video_id": video["id"], "ts": ts.isoformat()}
            match = bool(liked & set(video["hashtags"]))
            share = rng.uniform(0.6, 1.4) if match else rng.uniform(0.05, 0.5)
            events.append({**base, "event_id": f"demo{n}i", "type": "impression"})
            if share < 0.1:
                events.append({**base, "event_id": f"demo{n}s", "type": "skip"})
                continue
            watch = int(video["duration_ms"] * share)
            events.append({**base, "event_id": f"demo{n}p", "type": "play", "watch_ms": watch})
            if match and rng.random() < 0.3:
                events.append({**base, "event_id": f"demo{n}l", "type": "like"})
    return DemoWorld(users=people + viewers, videos=catalog, events=events)
