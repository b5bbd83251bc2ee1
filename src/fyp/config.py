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

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'fyp.db'}"
