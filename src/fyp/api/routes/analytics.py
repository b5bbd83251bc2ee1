"""Dashboard analytics (admin): activity over time, trending, creators, moderation queue.

Answered with an admin API key, or with the dashboard's session cookie (the dashboard's own
charts refresh through these endpoints).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from fyp.api.deps import ServicesDep, _bearer, _header, require
from fyp.api.errors import ApiError
from fyp.api.responses import JSON
from fyp.dashboard import moderation_queue
from fyp.web.state import WebState

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

_admin_key = require("admin")


async def dashboard_or_admin(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> WebState:
    web: WebState | None = getattr(request.app.state, "web", None)
    if web is None:
        raise ApiError(404, "not_found", "analytics need the web section enabled (web.enabled)")
    if web.user(request) is None:
        await _admin_key(services, bearer, header)
    return web


Web = Annotated[WebState, Depends(dashboard_or_admin)]


@router.get("/overview", summary="Events per minute, active users, watch time, completion, skips")
async def overview(
    web: Web,
    hours: Annotated[float, Query(gt=0, le=72)] = 24.0,
    step_minutes: Annotated[int, Query(ge=1, le=1440)] = 15,
) -> JSON:
    return JSON(await run_in_threadpool(web.analytics.overview, hours, step_minutes))


@router.get("/trending", summary="Trending hashtags and sounds, rising videos (velocity)")
async def trending(
    web: Web,
    hours: Annotated[int, Query(ge=1, le=72)] = 6,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> JSON:
    return JSON(await run_in_threadpool(web.analytics.trending, hours, limit))


@router.get("/creators", summary="Creators by reach: completion, followers gained, audience")
async def creators(web: Web, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> JSON:
    return JSON(await run_in_threadpool(web.analytics.creators, limit))


@router.get("/creators/{creator_id}", summary="One creator and their videos")
async def creator(creator_id: str, web: Web) -> JSON:
    data = await run_in_threadpool(web.analytics.creator, creator_id)
    if data is None:
        raise ApiError(404, "not_found", f"no activity for creator {creator_id!r}")
    return JSON(data)


@router.get("/moderation", summary="Pending and reported videos awaiting review")
async def moderation(web: Web, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSON:
    queue = await run_in_threadpool(moderation_queue, web.services.store, web.analytics, limit)
    return JSON({"queue": queue})
