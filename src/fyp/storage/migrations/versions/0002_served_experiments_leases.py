"""Served log (never-repeat, arm attribution, ranker features), experiments, job leases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "served",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("video_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("served_ms", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("features", Json),
        sa.Column("arms", Json),
    )
    op.create_index("ix_served_user_ms", "served", ["user_id", "served_ms"])
    op.create_index("ix_served_request", "served", ["request_id"])
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("spec", Json, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("started_ms", sa.BigInteger),
        sa.Column("stopped_ms", sa.BigInteger),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("experiments")
    op.drop_index("ix_served_request", table_name="served")
    op.drop_index("ix_served_user_ms", table_name="served")
    op.drop_table("served")
