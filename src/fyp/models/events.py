"""Behaviour events, as the app sends them and as the event log keeps them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fyp.types import Id, check_json_text, normalise_hashtag


class EventType(StrEnum):
    impression = "impression"
    play = "play"
    like = "like"
    unlike = "unlike"
    share = "share"
    comment = "comment"
    follow = "follow"
    unfollow = "unfollow"
    skip = "skip"
    not_interested = "not_interested"
    report = "report"
    profile_visit = "profile_visit"


# Events about a creator rather than one video may name the creator alone.
CREATOR_EVENTS = frozenset({EventType.follow, EventType.unfollow, EventType.profile_visit})

MAX_WATCH_MS = 24 * 3600 * 1000
MAX_EXTRA_BYTES = 4096


class EventIn(BaseModel):
    """One event as sent to ``POST /v1/events``.

    ``ts`` is the client's time: an ISO 8601 string or a Unix epoch in seconds or milliseconds.
    ``play`` carries ``watch_ms``; completion is ``watch_ms / duration_ms`` and may exceed 1.0 on
    replays. ``not_interested`` targets a video, or a creator, sound or hashtag when named.
    """

    model_config = ConfigDict(extra="forbid")

    event_id: Id
    user_id: Id
    type: EventType
    ts: datetime
    video_id: Id | None = None
    creator_id: Id | None = None
    sound_id: Id | None = None
    hashtag: str | None = None
    watch_ms: int | None = Field(default=None, ge=0, le=MAX_WATCH_MS)
    request_id: Id | None = None
    extra: dict[str, Any] | None = Field(default=None, max_length=32)

    @field_validator("hashtag")
    @classmethod
    def _tag(cls, v: str | None) -> str | None:
        return None if v is None else normalise_hashtag(v)

    @field_validator("extra")
    @classmethod
    def _extra(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            check_json_text(v)
            if len(orjson.dumps(v)) > MAX_EXTRA_BYTES:
                raise ValueError(f"larger than {MAX_EXTRA_BYTES} bytes as JSON")
        return v

    @model_validator(mode="after")
    def _shape(self) -> Self:
        t = self.type
        if t in CREATOR_EVENTS:
            if self.video_id is None and self.creator_id is None:
                raise ValueError(f"a {t.value} event needs video_id or creator_id")
        elif t is EventType.not_interested:
            if not (self.video_id or self.creator_id or self.sound_id or self.hashtag):
                raise ValueError(
                    "a not_interested event needs video_id, creator_id, sound_id or hashtag"
                )
        elif self.video_id is None:
            raise ValueError(f"a {t.value} event needs video_id")
        if t is EventType.play and self.watch_ms is None:
            raise ValueError("a play event needs watch_ms")
        if (self.sound_id or self.hashtag) and t is not EventType.not_interested:
            raise ValueError("sound_id and hashtag are only for not_interested events")
        return self


class Event(EventIn):
    """An event as stored in the log, with the server's receive time."""

    received_at: datetime
