"""Catalog and graph records: users (creators are users), videos, comments, API keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from fyp.config import ModerationState
from fyp.types import Hashtags, Id, Text, caption_hashtags, normalise_hashtags

AgeBand = Literal["under_13", "13_17", "18_24", "25_34", "35_44", "45_54", "55_plus"]
Scope = Literal["admin", "app"]
Region = Annotated[
    str, StringConstraints(min_length=2, max_length=8, pattern=r"^[A-Za-z0-9-]+$", to_upper=True)
]
Language = Annotated[
    str, StringConstraints(min_length=2, max_length=16, pattern=r"^[A-Za-z0-9-]+$", to_lower=True)
]
Url = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserFields(_Record):
    region: Region | None = None
    language: Language | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    age_band: AgeBand | None = None
    interests: Hashtags = Field(default_factory=list, max_length=50)
    created_at: datetime = Field(default_factory=_utcnow)


class User(UserFields):
    id: Id


class VideoFields(_Record):
    """A video as the app sends it; hashtags written in the caption are added to ``hashtags``."""

    creator_id: Id
    caption: Text = Field(default="", max_length=4000)
    hashtags: Hashtags = Field(default_factory=list, max_length=50)
    sound_id: Id | None = None
    duration_ms: int | None = Field(
        default=None, gt=0, le=6 * 3600 * 1000, description="Null when unknown (no completion)."
    )
    language: Language | None = None
    region: Region | None = None
    created_at: datetime = Field(default_factory=_utcnow)
    moderation: ModerationState | None = Field(
        default=None,
        description="Omitted: a new video gets the configured default, an old one keeps its state.",
    )
    allowed_regions: list[Region] | None = Field(
        default=None, description="Regions a 'limited' video may be shown in; null means anywhere."
    )
    parent_video_id: Id | None = None
    parent_kind: Literal["duet", "stitch"] | None = None
    media_url: Url | None = None
    thumbnail_url: Url | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.parent_video_id is None) != (self.parent_kind is None):
            raise ValueError("parent_video_id and parent_kind go together (kind: duet or stitch)")
        if self.caption:
            self.hashtags = normalise_hashtags(self.hashtags + caption_hashtags(self.caption))
        return self


class VideoIn(VideoFields):
    id: Id

    @model_validator(mode="after")
    def _not_own_parent(self) -> Self:
        if self.parent_video_id == self.id:
            raise ValueError("a video cannot be its own parent")
        return self


class Video(VideoIn):
    """A stored video: its moderation state is always known."""

    moderation: ModerationState
    moderation_reason: str | None = None


class VideoBrief(NamedTuple):
    """What event ingestion needs to know about a video."""

    creator_id: str
    duration_ms: int | None


class ModerationIn(_Record):
    state: ModerationState
    reason: Text | None = Field(default=None, max_length=1000)
    allowed_regions: list[Region] | None = None


class CommentIn(_Record):
    id: Id | None = Field(
        default=None, description="Client id for idempotent retries; made up if omitted."
    )
    user_id: Id
    text: Text = Field(min_length=1, max_length=2000)
    created_at: datetime = Field(default_factory=_utcnow)


class Comment(_Record):
    id: Id
    video_id: Id
    user_id: Id
    text: str
    created_at: datetime


class ApiKey(_Record):
    id: str
    scope: Scope
    name: Text = Field(default="", max_length=200)
    created_at: datetime
    revoked: bool = False
