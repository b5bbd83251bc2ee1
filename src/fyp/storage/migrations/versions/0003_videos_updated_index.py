"""An index on videos (updated_ms, id): the feed's catalog index reads only what changed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_videos_updated", "videos", ["updated_ms", "id"])


def downgrade() -> None:
    op.drop_index("ix_videos_updated", table_name="videos")
