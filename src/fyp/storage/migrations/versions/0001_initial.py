"""Initial schema: users, videos, follows, blocks, comments, event log, API keys, imports.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("region", sa.String(8)),
        sa.Column("language", sa.String(16)),
        sa.Column("birth_year", sa.Integer),
        sa.Column("age_band", sa.String(16)),
        sa.Column("interests", Json, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "videos",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("creator_id", sa.String(128), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("caption", sa.Text, nullable=False),
        sa.Column("hashtags", Json, nullable=False),
        sa.Column("sound_id", sa.String(128)),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("language", sa.String(16)),
        sa.Column("region", sa.String(8)),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("moderation", sa.String(16), nullable=False),
        sa.Column("moderation_reason", sa.Text),
        sa.Column("allowed_regions", Json),
        sa.Column("parent_video_id", sa.String(128)),
        sa.Column("parent_kind", sa.String(8)),
        sa.Column("media_url", sa.Text),
        sa.Column("thumbnail_url", sa.Text),
    )
    op.create_index("ix_videos_creator_id", "videos", ["creator_id"])
    op.create_index("ix_videos_created_ms", "videos", ["created_ms"])
    for name in ("follows", "blocks"):
        op.create_table(
            name,
            sa.Column("user_id", sa.String(128), sa.ForeignKey("users.id"), primary_key=True),
            sa.Column("creator_id", sa.String(128), sa.ForeignKey("users.id"), primary_key=True),
            sa.Column("created_ms", sa.BigInteger, nullable=False),
        )
    op.create_index("ix_follows_creator_id", "follows", ["creator_id"])
    op.create_table(
        "comments",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("video_id", sa.String(128), sa.ForeignKey("videos.id"), nullable=False),
        sa.Column("user_id", sa.String(128), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_comments_video_created", "comments", ["video_id", "created_ms"])
    op.create_table(
        "events",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), nullable=False, unique=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("video_id", sa.String(128)),
        sa.Column("creator_id", sa.String(128)),
        sa.Column("sound_id", sa.String(128)),
        sa.Column("hashtag", sa.String(100)),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("watch_ms", sa.Integer),
        sa.Column("request_id", sa.String(128)),
        sa.Column("extra", Json),
    )
    op.create_index("ix_events_user_ts", "events", ["user_id", "ts_ms"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger),
    )
    op.create_table(
        "import_progress",
        sa.Column("source", sa.String(512), primary_key=True),
        sa.Column("rows_done", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "import_progress",
        "api_keys",
        "events",
        "comments",
        "blocks",
        "follows",
        "videos",
        "users",
    ):
        op.drop_table(name)
