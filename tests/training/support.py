"""A small clustered world for training tests: users engage with the videos of their own
topic, in a fixed order within the topic, so both co-engagement and sequence have signal."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fyp.config import Settings
from fyp.models import Event
from fyp.models.events import EventType
from fyp.storage.data import DataStore, ServedRow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class World:
    users: list[dict[str, Any]]
    videos: list[dict[str, Any]]
    events: list[dict[str, Any]]
    topic_of_user: dict[str, int]
    topic_of_video: dict[str, int]


def clustered_world(topics: int = 4, per_topic: int = 12, users: int = 60, seed: int = 3) -> World:
    rng = random.Random(seed)
    creators = [{"id": f"c{t}"} for t in range(topics)]
    videos = []
    topic_of_video = {}
    for t in range(topics):
        for j in range(per_topic):
            vid = f"v{t}_{j:02d}"
            topic_of_video[vid] = t
            videos.append(
                {
                    "id": vid,
                    "creator_id": f"c{t}",
                    "caption": f"topic{t} clip",
                    "hashtags": [f"topic{t}"],
                    "duration_ms": 10_000,
                }
            )
    people = []
    events = []
    topic_of_user = {}
    n = 0
    for u in range(users):
        uid = f"u{u:03d}"
        t = u % topics
        topic_of_user[uid] = t
        people.append({"id": uid})
        # Each user watches a contiguous run of their topic's videos, in catalog order.
        start = rng.randrange(per_topic - 6)
        for step, j in enumerate(range(start, start + 6)):
            vid = f"v{t}_{j:02d}"
            ts = (T0 + timedelta(minutes=u * 10 + step)).isoformat()
            n += 1
            base = {"user_id": uid, "video_id": vid, "ts": ts}
            events.append({**base, "event_id": f"e{n}p", "type": "play", "watch_ms": 9_500})
            if rng.random() < 0.5:
                events.append({**base, "event_id": f"e{n}l", "type": "like"})
        # and skips one video of another topic
        other = f"v{(t + 1) % topics}_{rng.randrange(per_topic):02d}"
        ts = (T0 + timedelta(minutes=u * 10 + 8)).isoformat()
        events.append(
            {"user_id": uid, "video_id": other, "ts": ts, "event_id": f"e{u}s", "type": "skip"}
        )
    return World(creators + people, videos, events, topic_of_user, topic_of_video)


def load(store: DataStore, settings: Settings, world: World) -> None:
    from fyp.api.app import build_services
    from fyp.importers import ImportKind, run_import

    services = build_services(settings, store)
    for kind, rows in (
        (ImportKind.users, world.users),
        (ImportKind.videos, world.videos),
        (ImportKind.events, world.events),
    ):
        summary = run_import(
            kind, rows, store, services.catalog, services.ingestor, source=f"test:{kind.value}"
        )
        assert summary.rejected == 0, summary.examples


def event(
    type: str,
    video_id: str | None = "v1",
    user_id: str = "u1",
    minute: int = 0,
    watch_ms: int | None = None,
    creator_id: str | None = None,
    request_id: str | None = None,
) -> Event:
    ts = T0 + timedelta(minutes=minute)
    return Event(
        event_id=f"{type}-{user_id}-{video_id}-{minute}",
        user_id=user_id,
        type=EventType(type),
        ts=ts,
        video_id=video_id,
        creator_id=creator_id,
        watch_ms=watch_ms,
        request_id=request_id,
        received_at=ts,
    )


def served(
    request_id: str,
    user_id: str,
    video_id: str,
    served_ms: int,
    features: dict[str, float] | None = None,
    position: int = 0,
) -> ServedRow:
    return ServedRow(
        request_id=request_id,
        user_id=user_id,
        video_id=video_id,
        position=position,
        served_ms=served_ms,
        source="test",
        score=None,
        features=features or {},
        arms={},
    )
