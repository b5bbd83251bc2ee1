"""A small deterministic world for feed tests: 8 creators, 4 hashtags, 12 sounds, 96 videos
created 4-8 days ago (older than the fresh window), and a few users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fyp.models import User, VideoIn
from fyp.storage.data import DataStore

TAGS = ["cooking", "dance", "pets", "travel"]
N_VIDEOS = 96
NOW = datetime.now(UTC)


def video(i: int) -> dict[str, Any]:
    return {
        "id": f"v{i:03d}",
        "creator_id": f"c{i % 8}",
        "hashtags": [TAGS[(i // 2) % 4]],
        "sound_id": f"s{i % 12}",
        "duration_ms": 10_000,
        "region": "US",
        "language": "en",
        "created_at": (NOW - timedelta(days=4, minutes=i * 60)).isoformat(),
    }


def seed_world(store: DataStore) -> None:
    users = [User(id=f"c{c}", region="US") for c in range(8)]
    users += [
        User(id="u1", region="US", language="en", birth_year=NOW.year - 30),
        User(id="u2", region="US", language="en", birth_year=NOW.year - 30),
        User(id="teen", region="US", language="en", birth_year=NOW.year - 15),
        User(id="gb", region="GB", language="en", birth_year=NOW.year - 30),
        User(id="petlover", region="US", birth_year=NOW.year - 30, interests=["pets"]),
    ]
    store.upsert_users(users)
    store.upsert_videos([VideoIn.model_validate(video(i)) for i in range(N_VIDEOS)], "approved")


def tag_of(item: dict[str, Any]) -> str:
    tags: list[str] = item["video"]["hashtags"]
    return tags[0]
