"""The one typed Settings object, built once at start-up and passed down.

Nothing else in fyp reads the environment: ``Settings()`` reads ``FYP_*`` variables (nested
sections with ``__``, e.g. ``FYP_API__PORT=9000``) and an optional ``.env`` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ModerationState = Literal["pending", "approved", "limited", "removed"]


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Request bodies over this are refused (413)."
    )
    key_cache_seconds: float = Field(
        default=10.0, ge=0, description="How long a looked-up API key is trusted before re-reading."
    )


class IngestSettings(BaseModel):
    max_batch: int = Field(default=1000, ge=1, le=10_000)
    auto_create_users: bool = Field(
        default=False, description="Create unknown users met in events instead of rejecting them."
    )
    max_future_skew_s: float = Field(
        default=86_400.0,
        ge=0,
        description="Events stamped further ahead of server time are refused.",
    )


class CatalogSettings(BaseModel):
    max_bulk: int = Field(default=1000, ge=1, le=10_000)
    default_moderation: ModerationState = Field(
        default="approved",
        description="State of a new video whose upsert names none; 'pending' holds it for review.",
    )


class BlendWeights(BaseModel):
    """Weights of the predicted actions in a candidate's final value (negative for bad outcomes)."""

    complete: float = 1.0
    like: float = 2.0
    share: float = 4.0
    comment: float = 2.0
    follow: float = 4.0
    skip: float = -1.5
    not_interested: float = -6.0


class SourceQuotas(BaseModel):
    """How many candidates each source may contribute to one request (0 turns it off)."""

    embedding: int = Field(default=300, ge=0)
    item_neighbours: int = Field(default=200, ge=0)
    following: int = Field(default=100, ge=0)
    trending: int = Field(default=150, ge=0)
    affinity: int = Field(default=150, ge=0)
    content: int = Field(default=100, ge=0)
    fresh: int = Field(default=50, ge=0)


class FeedSettings(BaseModel):
    """Every knob of the For You feed. An experiment arm overrides any part of it per request
    (validated by merging the arm's overrides into these values)."""

    default_count: int = Field(default=10, ge=1, le=100)
    max_count: int = Field(default=50, ge=1, le=500)
    blend: BlendWeights = BlendWeights()
    quotas: SourceQuotas = SourceQuotas()
    creator_spacing: int = Field(
        default=4, ge=0, description="No creator twice within this many consecutive positions."
    )
    diversity: float = Field(
        default=0.3, ge=0, le=1, description="MMR trade-off: 0 is pure score, 1 pure novelty."
    )
    exploration_share: float = Field(
        default=0.1, ge=0, le=1, description="Share of positions given to exploration slots."
    )
    freshness_half_life_h: float = Field(default=48.0, gt=0)
    never_repeat_days: float = Field(default=30.0, ge=0)
    not_interested_days: float = Field(
        default=30.0, ge=0, description="How long not_interested mutes a creator and sound."
    )
    random_scores: bool = Field(
        default=False, description="Rank by random scores (a known-bad arm for testing the lab)."
    )
    disabled_stages: list[str] = Field(
        default_factory=list, description="Stage names switched off (e.g. 'TrendingSource')."
    )
    stage_budget_ms: float = Field(default=50.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FYP_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    var_dir: Path = Path("var")
    data_dir: Path = Field(
        default=Path("../shared/data"),
        description="Where the real data sets (tiktok/, kuairand/) live.",
    )
    database_url: str = Field(
        default="",
        description="sqlite:///path, postgresql+psycopg://..., or memory://; "
        "empty means sqlite under var_dir.",
    )
    auto_migrate: bool = Field(
        default=True, description="Run pending schema migrations when the server starts."
    )
    api: ApiSettings = ApiSettings()
    ingest: IngestSettings = IngestSettings()
    catalog: CatalogSettings = CatalogSettings()
    feed: FeedSettings = FeedSettings()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'fyp.db'}"
