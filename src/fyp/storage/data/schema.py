"""SQLAlchemy Core tables of the durable store. Alembic migrations create them; a test checks
that the migrations and these tables never drift apart."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# JSONB on PostgreSQL (indexable, compact); JSON text elsewhere.
Json = sa.JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid).
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IdCol = sa.String(128)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", IdCol, primary_key=True),
    sa.Column("region", sa.String(8)),
    sa.Column("language", sa.String(16)),
    sa.Column("birth_year", sa.Integer),
    sa.Column("age_band", sa.String(16)),
    sa.Column("interests", Json, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

videos = sa.Table(
    "videos",
    metadata,
    sa.Column("id", IdCol, primary_key=True),
    sa.Column("creator_id", IdCol, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("caption", sa.Text, nullable=False),
    sa.Column("hashtags", Json, nullable=False),
    sa.Column("sound_id", IdCol),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("language", sa.String(16)),
    sa.Column("region", sa.String(8)),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("moderation", sa.String(16), nullable=False),
    sa.Column("moderation_reason", sa.Text),
    sa.Column("allowed_regions", Json),
    sa.Column("parent_video_id", IdCol),
    sa.Column("parent_kind", sa.String(8)),
    sa.Column("media_url", sa.Text),
    sa.Column("thumbnail_url", sa.Text),
    sa.Index("ix_videos_creator_id", "creator_id"),
    sa.Index("ix_videos_created_ms", "created_ms"),
    sa.Index("ix_videos_updated", "updated_ms", "id"),  # the catalog index's incremental reads
)

follows = sa.Table(
    "follows",
    metadata,
    sa.Column("user_id", IdCol, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("creator_id", IdCol, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_follows_creator_id", "creator_id"),
)

blocks = sa.Table(
    "blocks",
    metadata,
    sa.Column("user_id", IdCol, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("creator_id", IdCol, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", IdCol, primary_key=True),
    sa.Column("video_id", IdCol, sa.ForeignKey("videos.id"), nullable=False),
    sa.Column("user_id", IdCol, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_comments_video_created", "video_id", "created_ms"),
)

REPLAY_INDEX_COLUMNS = (
    "user_id",
    "ts_ms",
    "seq",
    "type",
    "video_id",
    "creator_id",
    "sound_id",
    "hashtag",
    "watch_ms",
)

# The event log has no foreign keys: ingestion checks users and videos once per batch, and the
# log must keep every event even if a video is later removed from the catalog.
events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("event_id", IdCol, nullable=False, unique=True),
    sa.Column("user_id", IdCol, nullable=False),
    sa.Column("video_id", IdCol),
    sa.Column("creator_id", IdCol),
    sa.Column("sound_id", IdCol),
    sa.Column("hashtag", sa.String(100)),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("received_ms", sa.BigInteger, nullable=False),
    sa.Column("watch_ms", sa.Integer),
    sa.Column("request_id", IdCol),
    sa.Column("extra", Json),
    # A user's newest events in log order, covering every column a cold user's rebuild reads
    # (``DataStore.user_events``): one range of index pages instead of a table page per event.
    sa.Index("ix_events_user_replay", *REPLAY_INDEX_COLUMNS),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("revoked_ms", sa.BigInteger),
)

import_progress = sa.Table(
    "import_progress",
    metadata,
    sa.Column("source", sa.String(512), primary_key=True),
    sa.Column("rows_done", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

# What each feed response served, one row per item: the never-repeat horizon survives restarts,
# events carrying the request_id are attributed to experiment arms, and the ranker trains on the
# features the online path computed at serving time (no train/serve skew).
served = sa.Table(
    "served",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("request_id", IdCol, nullable=False),
    sa.Column("user_id", IdCol, nullable=False),
    sa.Column("video_id", IdCol, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("served_ms", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("features", Json),
    sa.Column("arms", Json),
    sa.Index("ix_served_user_ms", "user_id", "served_ms"),
    sa.Index("ix_served_request", "request_id"),
)

# A/B experiments; the spec (hypothesis, metrics, traffic, layer, arms with their overrides) is
# one JSON document validated by the experiments package.
experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("spec", Json, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("started_ms", sa.BigInteger),
    sa.Column("stopped_ms", sa.BigInteger),
)

# Leases for jobs that must run once across all machines (the trainer).
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
)
