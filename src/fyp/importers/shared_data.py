"""Adapters for the real data sets: TikTok interactions (MMGCN/DiffMM release) and the
KuaiRand-Pure video catalog. Each yields rows in fyp's own import format."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The TikTok release has no timestamps: events get a fixed, ordered clock so imports are
# reproducible and the file order is kept.
TIKTOK_EPOCH = datetime(2019, 6, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Dataset:
    users: list[dict[str, Any]]
    videos: list[dict[str, Any]]
    events: list[dict[str, Any]]


def _need(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: point --data-dir at the shared data folder")
    return path


def tiktok(data_dir: Path, splits: Sequence[str] = ("train",)) -> Dataset:
    """Users, videos and ``like`` events from ``tiktok/interactions.csv``.

    The release names no creators or durations: each video gets its own creator (so creator
    spacing treats them as distinct) and an unknown duration. The catalog (users and videos) is
    every one the file names, whatever ``splits`` is: only the events are limited to the chosen
    splits, so a video held out for evaluation is still in the catalog to be recommended.
    """
    path = _need(data_dir / "tiktok" / "interactions.csv")
    wanted = set(splits)
    users: dict[str, None] = {}
    items: dict[str, None] = {}
    events = []
    with path.open(newline="") as f:
        for n, row in enumerate(csv.DictReader(f)):
            uid, vid = f"tt_u{row['user_id']}", f"tt_v{row['item_id']}"
            users.setdefault(uid, None)
            items.setdefault(row["item_id"], None)
            if row["split"] not in wanted:
                continue
            events.append(
                {
                    "event_id": f"tt:{row['user_id']}:{row['item_id']}",
                    "user_id": uid,
                    "video_id": vid,
                    "type": "like",
                    "ts": (TIKTOK_EPOCH + timedelta(seconds=n)).isoformat(),
                    "extra": {"source": "tiktok", "split": row["split"]},
                }
            )
    created = TIKTOK_EPOCH.isoformat()
    creators = [{"id": f"tt_c{i}", "created_at": created} for i in items]
    videos = [{"id": f"tt_v{i}", "creator_id": f"tt_c{i}", "created_at": created} for i in items]
    return Dataset(
        users=[{"id": u, "created_at": created} for u in users] + creators,
        videos=videos,
        events=events,
    )


def kuairand(data_dir: Path) -> Dataset:
    """Creators and videos from ``kuairand/video_features_basic_pure.csv``.

    Topic tags become hashtags ``kr_tag<n>``, music ids become sounds; videos whose row lacks a
    duration keep it unknown.
    """
    path = _need(data_dir / "kuairand" / "video_features_basic_pure.csv")
    creators: dict[str, None] = {}
    videos = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            creator = f"kr_c{row['author_id']}"
            creators.setdefault(creator, None)
            video: dict[str, Any] = {
                "id": f"kr_v{row['video_id']}",
                "creator_id": creator,
                "hashtags": [f"kr_tag{t}" for t in row["tag"].split(",") if t],
                "created_at": f"{row['upload_dt']}T00:00:00+00:00",
                "moderation": "approved",
            }
            if row["video_duration"]:
                video["duration_ms"] = round(float(row["video_duration"]))
            if row["music_id"]:
                video["sound_id"] = f"kr_s{row['music_id']}"
            videos.append(video)
    return Dataset(users=[{"id": c} for c in creators], videos=videos, events=[])
