"""The simulator's catalog: generated, the real KuaiRand metadata (durations, creators, sounds,
tags), or the videos a running server already holds. Each video also gets a hidden ``quality``
that no server can see, only infer from how the audience reacts."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fyp.types import from_ms, now_ms

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class SimVideo:
    id: str
    creator_id: str
    hashtags: tuple[str, ...]
    sound_id: str | None
    duration_ms: int | None
    created_ms: int
    quality: float  # hidden: 0..1, how good the video is for anyone

    def upload(self) -> dict[str, Any]:
        """The video as ``POST /v1/videos`` takes it."""
        body: dict[str, Any] = {
            "id": self.id,
            "creator_id": self.creator_id,
            "hashtags": list(self.hashtags),
            "created_at": from_ms(self.created_ms).isoformat(),
            "moderation": "approved",
        }
        if self.sound_id:
            body["sound_id"] = self.sound_id
        if self.duration_ms:
            body["duration_ms"] = self.duration_ms
        return body


@dataclass(frozen=True)
class SimCatalog:
    videos: list[SimVideo]

    def __post_init__(self) -> None:
        if not self.videos:
            raise ValueError("the simulator needs at least one video")

    @property
    def by_id(self) -> dict[str, SimVideo]:
        return {v.id: v for v in self.videos}

    @property
    def creators(self) -> list[str]:
        return sorted({v.creator_id for v in self.videos})

    def tag_counts(self) -> Counter[str]:
        return Counter(t for v in self.videos for t in v.hashtags)

    def median_duration_ms(self) -> float:
        d = sorted(v.duration_ms for v in self.videos if v.duration_ms)
        return float(d[len(d) // 2]) if d else 20_000.0


TOPICS = [
    "dance", "cooking", "comedy", "pets", "fitness", "travel", "gaming", "music", "diy",
    "fashion", "science", "football", "makeup", "cars", "books", "art", "skate", "garden",
    "magic", "history", "anime", "baking", "fishing", "yoga", "surf", "chess", "lego",
    "coffee", "camping", "cats", "dogs", "poetry", "drawing", "guitar", "piano", "rap",
]  # fmt: skip


def generate(
    *, videos: int = 1500, creators: int = 150, sounds: int = 120, seed: int = 1
) -> SimCatalog:
    """A catalog with Zipf-popular topics, creators who stick to a main topic, and a few
    videos uploaded in the last two days (so "new video" metrics have something to count)."""
    rng = random.Random(seed)
    now = now_ms()
    topic_w = [1 / (i + 1) ** 0.8 for i in range(len(TOPICS))]
    creator_topic = {f"sim_c{c:04d}": rng.choices(TOPICS, topic_w)[0] for c in range(creators)}
    creator_ids = list(creator_topic)
    creator_w = [1 / (i + 1) ** 0.6 for i in range(creators)]
    sound_ids = [f"sim_s{s:04d}" for s in range(sounds)]
    out = []
    for i in range(videos):
        cid = rng.choices(creator_ids, creator_w)[0]
        main = creator_topic[cid] if rng.random() < 0.75 else rng.choices(TOPICS, topic_w)[0]
        extra = rng.sample(TOPICS, rng.randint(0, 2))
        tags = tuple(dict.fromkeys([main, *extra]))
        age = rng.uniform(0, 2) if rng.random() < 0.1 else rng.uniform(2, 60)
        out.append(
            SimVideo(
                id=f"sim_v{i:05d}",
                creator_id=cid,
                hashtags=tags,
                sound_id=rng.choice(sound_ids) if rng.random() < 0.8 else None,
                duration_ms=int(min(max(rng.lognormvariate(9.9, 0.6), 3_000), 180_000)),
                created_ms=int(now - age * DAY_MS),
                quality=rng.betavariate(2, 3),
            )
        )
    return SimCatalog(out)


def kuairand(data_dir: Path, *, seed: int = 1, limit: int | None = None) -> SimCatalog:
    """The KuaiRand-Pure videos with the ids ``fyp import kuairand`` gives them.

    Raises:
        FileNotFoundError: when ``data_dir/kuairand/video_features_basic_pure.csv`` is missing.
    """
    from fyp.importers import shared_data

    rng = random.Random(seed)
    ds = shared_data.kuairand(data_dir)
    out = []
    for v in ds.videos[:limit]:
        created = datetime.fromisoformat(v["created_at"]).astimezone(UTC)
        out.append(
            SimVideo(
                id=v["id"],
                creator_id=v["creator_id"],
                hashtags=tuple(v["hashtags"]),
                sound_id=v.get("sound_id"),
                duration_ms=v.get("duration_ms"),
                created_ms=int(created.timestamp() * 1000),
                quality=rng.betavariate(2, 3),
            )
        )
    return SimCatalog(out)


def from_videos(videos: Iterable[dict[str, Any]], *, seed: int = 1) -> SimCatalog:
    """The videos a server holds, as ``GET /v1/videos`` lists them, each with a hidden quality
    drawn from its id (the same video gets the same quality on every run with this seed).

    Raises:
        ValueError: when there is no video.
    """
    out = []
    for v in videos:
        created = datetime.fromisoformat(v["created_at"]).astimezone(UTC)
        out.append(
            SimVideo(
                id=v["id"],
                creator_id=v["creator_id"],
                hashtags=tuple(v.get("hashtags") or ()),
                sound_id=v.get("sound_id"),
                duration_ms=v.get("duration_ms"),
                created_ms=int(created.timestamp() * 1000),
                quality=random.Random(f"{seed}:{v['id']}").betavariate(2, 3),
            )
        )
    return SimCatalog(out)
