"""The moderation queue: videos held for review, and approved videos that users reported.

A decision taken here writes the video's moderation state with a ``reviewed:`` reason, which is
also what takes a reported video out of the queue (reports stay in the event log).
"""

from __future__ import annotations

from typing import Any

from fyp.config import ModerationState
from fyp.dashboard.analytics import Analytics
from fyp.models import Video
from fyp.storage.data import DataStore

DECISIONS: dict[str, ModerationState] = {
    "approve": "approved",
    "limit": "limited",
    "remove": "removed",
}
REVIEWED = "reviewed:"


def _row(video: Video, reports: int, why: str) -> dict[str, Any]:
    return {
        "video": video.model_dump(mode="json"),
        "reports": reports,
        "why": why,
    }


def moderation_queue(
    store: DataStore, analytics: Analytics, limit: int = 100
) -> list[dict[str, Any]]:
    """Pending videos first (oldest first), then unreviewed reported videos (most reports first)."""
    reports = analytics.reports()
    out = [
        _row(v, reports.get(v.id, 0), "pending")
        for v in store.list_videos(moderation="pending", limit=limit)
    ]
    for vid, n in sorted(reports.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(out) >= limit:
            break
        video = store.get_video(vid)
        if video is None or video.moderation != "approved":
            continue
        if (video.moderation_reason or "").startswith(REVIEWED):
            continue
        out.append(_row(video, n, "reported"))
    return out


def decide(
    store: DataStore,
    analytics: Analytics,
    video_id: str,
    decision: str,
    note: str = "",
    allowed_regions: list[str] | None = None,
) -> Video | None:
    """Apply ``approve``/``limit``/``remove`` to a video; None when the video does not exist.

    Raises:
        ValueError: an unknown decision.
    """
    state = DECISIONS.get(decision)
    if state is None:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
    reason = f"{REVIEWED} {decision}" + (f": {note.strip()}" if note.strip() else "")
    video = store.set_moderation(video_id, state, reason, allowed_regions)
    analytics.forget_video(video_id)
    return video
