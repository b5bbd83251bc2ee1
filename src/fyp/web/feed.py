"""The try-it swipe feed at ``/`` and its same-origin session endpoint.

The page talks to the public API (``GET /v1/users/{id}/feed``, ``POST /v1/events``) with an
app-scoped key it gets from ``POST /web/session``: the key that a real client app would hold.
Creating the user needs the admin scope, so the server does that itself and the admin key never
reaches the browser.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from fyp.api.errors import ApiError
from fyp.api.responses import JSON
from fyp.models.catalog import Language, Region
from fyp.types import Hashtags, Id
from fyp.web.state import WebState, get_web

router = APIRouter(include_in_schema=False)

REGIONS = ["US", "GB", "DE", "BR", "IN", "JP", "FR", "ES", "MX", "KR"]
LANGUAGES = ["en", "de", "pt", "ja", "fr", "es", "ko"]
_TAGS_TTL_S = 60.0


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Id | None = Field(default=None, description="Continue as this existing user.")
    region: Region | None = None
    language: Language | None = None
    interests: Hashtags = Field(default_factory=list, max_length=20)


def _popular_hashtags(web: WebState, n: int = 24) -> list[str]:
    """The catalog's most common hashtags (from the first videos by id), cached a minute."""
    hit = web.popular_hashtags
    if hit is not None and time.monotonic() - hit[0] < _TAGS_TTL_S:
        return hit[1]
    counts: Counter[str] = Counter()
    for v in web.services.store.list_videos(moderation="approved", limit=1000):
        counts.update(v.hashtags)
    tags = [t for t, _ in counts.most_common(n)]
    web.popular_hashtags = (time.monotonic(), tags)
    return tags


def _public(web: WebState) -> None:
    if not web.settings.public_feed:
        raise ApiError(404, "not_found", "the public feed page is turned off (web.public_feed)")


@router.get("/", response_class=HTMLResponse)
def feed_page(request: Request) -> HTMLResponse:
    web = get_web(request)
    _public(web)
    web.warm()
    return web.templates.TemplateResponse(
        request,
        "feed.html",
        {
            "regions": REGIONS,
            "languages": LANGUAGES,
            "hashtags": _popular_hashtags(web),
        },
    )


def _session(web: WebState, body: SessionIn) -> dict[str, Any]:
    store = web.services.store
    if body.user_id is not None:
        user = store.get_user(body.user_id)
        if user is None:
            raise ApiError(404, "not_found", f"no user {body.user_id!r}")
        user_id = user.id
    else:
        user_id = "web-" + secrets.token_hex(4)
        result = web.services.catalog.upsert_users(
            [
                {
                    "id": user_id,
                    "region": body.region,
                    "language": body.language,
                    "interests": body.interests,
                }
            ]
        )
        if result.rejected:
            raise ApiError(422, "invalid_user", result.rejected[0].reason)
    return {"user_id": user_id, "key": web.app_key()}


@router.post("/web/session")
async def web_session(request: Request, body: SessionIn) -> JSON:
    """Create (or resume) a user for the feed page and hand back an app-scoped key."""
    web = get_web(request)
    _public(web)
    return JSON(await run_in_threadpool(_session, web, body))
