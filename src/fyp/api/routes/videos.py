from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fyp.api.deps import AdminKey, AppKey, ServicesDep
from fyp.api.errors import ApiError
from fyp.api.responses import JSON
from fyp.api.schemas import BulkResponse, body_items, json_body, rejections
from fyp.config import ModerationState
from fyp.models import Comment, CommentIn, ModerationIn, Video, VideoFields, VideoIn

router = APIRouter(prefix="/v1/videos", tags=["videos"])


class VideoBatch(BaseModel):
    videos: list[VideoIn] = Field(max_length=1000)


class VideoPage(BaseModel):
    videos: list[Video]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


def _video_or_404(services: Any, video_id: str) -> Video:
    video: Video | None = services.store.get_video(video_id)
    if video is None:
        raise ApiError(404, "not_found", f"no video {video_id!r}")
    return video


@router.put("/{video_id}", summary="Create or replace a video", response_model=Video)
def put_video(video_id: str, body: VideoFields, services: ServicesDep, _: AdminKey) -> Video:
    item = {**body.model_dump(exclude_unset=True), "id": video_id}
    result = services.catalog.upsert_videos([item])
    if result.rejected:
        raise ApiError(422, "invalid_video", result.rejected[0].reason)
    return _video_or_404(services, video_id)


@router.post(
    "",
    summary="Create or replace up to 1,000 videos",
    response_model=None,
    responses={200: {"model": BulkResponse}},
    openapi_extra=json_body(VideoBatch),
)
async def post_videos(request: Request, services: ServicesDep, _: AdminKey) -> JSON:
    items = body_items(await request.body(), "videos")
    result = await run_in_threadpool(services.catalog.upsert_videos, items)
    status = 422 if result.rejected and not result.stored else 200
    body = {"received": result.received, "stored": result.stored}
    return JSON({**body, "rejected": rejections(result.rejected)}, status_code=status)


@router.get("", summary="List videos by id, optionally by creator or moderation state")
def list_videos(
    services: ServicesDep,
    _: AppKey,
    creator_id: str | None = None,
    moderation: ModerationState | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> VideoPage:
    videos = services.store.list_videos(
        creator_id=creator_id, moderation=moderation, after=after, limit=limit
    )
    return VideoPage(videos=videos, next=videos[-1].id if len(videos) == limit else None)


@router.get("/{video_id}", summary="Read a video", response_model=Video)
def get_video(video_id: str, services: ServicesDep, _: AppKey) -> Video:
    return _video_or_404(services, video_id)


@router.post("/{video_id}/moderation", summary="Change a video's moderation state")
def moderate(video_id: str, body: ModerationIn, services: ServicesDep, _: AdminKey) -> Video:
    video = services.store.set_moderation(video_id, body.state, body.reason, body.allowed_regions)
    if video is None:
        raise ApiError(404, "not_found", f"no video {video_id!r}")
    return video


@router.post("/{video_id}/comments", summary="Add a comment", status_code=201)
def post_comment(video_id: str, body: CommentIn, services: ServicesDep, _: AdminKey) -> Comment:
    _video_or_404(services, video_id)
    if not services.store.existing_user_ids({body.user_id}):
        raise ApiError(422, "invalid_comment", f"unknown user {body.user_id!r}")
    comment = Comment(
        id=body.id or uuid.uuid4().hex,
        video_id=video_id,
        user_id=body.user_id,
        text=body.text,
        created_at=body.created_at,
    )
    services.store.add_comment(comment)
    return comment


@router.get("/{video_id}/comments", summary="Newest comments on a video")
def get_comments(
    video_id: str,
    services: ServicesDep,
    _: AppKey,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, list[Comment]]:
    _video_or_404(services, video_id)
    return {"comments": services.store.comments(video_id, limit)}
