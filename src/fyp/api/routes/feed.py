"""The For You feed: GET /v1/users/{user_id}/feed and its explanation (admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.background import BackgroundTask

from fyp.api.deps import AdminKey, AppKey, Services, ServicesDep
from fyp.api.errors import ApiError
from fyp.api.responses import JSON
from fyp.pipeline.service import BadCursor, FeedService, UnknownUser

router = APIRouter(prefix="/v1/users", tags=["feed"])

FEED_EXAMPLE: dict[str, Any] = {
    "request_id": "r_5f0c...",
    "user_id": "u1",
    "items": [
        {
            "position": 0,
            "video": {"id": "v1", "creator_id": "c1", "hashtags": ["dance"], "...": "..."},
            "reasons": {
                "source": "affinity",
                "sources": ["affinity", "trending"],
                "exploration": False,
                "score": 1.23,
                "signals": [{"name": "p_complete", "value": 0.41}],
                "repeat": False,
            },
        }
    ],
    "cursor": "o10",
    "exhausted": False,
    "fallback": None,
    "arms": {},
}


def _feed(services: Services) -> FeedService:
    if services.feed is None:
        raise ApiError(503, "feed_unavailable", "the feed is not configured in this process")
    return services.feed


@router.get(
    "/{user_id}/feed",
    summary="The next page of a user's For You feed",
    description=(
        "Never repeats a video served to the user within `never_repeat_days` (until the "
        "eligible catalog runs out: then `exhausted` is true and earlier videos come back, "
        "marked `repeat`). Put the `request_id` on the events the page causes. `fallback` says "
        "why a degraded (trending/fresh) ranking served, else null."
    ),
    response_class=JSON,
    responses={200: {"content": {"application/json": {"example": FEED_EXAMPLE}}}},
)
async def get_feed(
    user_id: str,
    services: ServicesDep,
    _: AppKey,
    count: Annotated[int | None, Query(ge=1, le=500)] = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> JSON:
    feed = _feed(services)
    try:
        res = await feed.feed(user_id, count, cursor, assigner=services.assigner)
    except UnknownUser as e:
        raise ApiError(404, "not_found", f"no user {user_id!r}") from e
    except BadCursor as e:
        raise ApiError(422, "invalid_cursor", "cursor must be one this API returned") from e
    # The served log is written after the response is sent; it never changes the response. A
    # side effect that only queues its rows for a background writer runs on the event loop:
    # a worker thread per request would cost more than the work.
    after = BackgroundTask(res.after) if res.after_blocks else BackgroundTask(_on_loop, res.after)
    return JSON(res.body, background=after)


async def _on_loop(after: Callable[[], None]) -> None:
    after()


@router.get(
    "/{user_id}/feed/explain",
    summary="Why a video would (not) be in a user's feed: its score parts (admin)",
    response_class=JSON,
)
async def explain_feed(
    user_id: str,
    services: ServicesDep,
    _: AdminKey,
    video_id: Annotated[str, Query(min_length=1, max_length=128)],
) -> JSON:
    feed = _feed(services)
    if services.store.get_video(video_id) is None:
        raise ApiError(404, "not_found", f"no video {video_id!r}")
    try:
        body = await feed.explain(user_id, video_id, assigner=services.assigner)
    except UnknownUser as e:
        raise ApiError(404, "not_found", f"no user {user_id!r}") from e
    return JSON(body)
