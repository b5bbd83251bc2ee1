"""Schema migrations with Alembic, run against an open SQLAlchemy engine."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from fyp.storage.data.base import MigrationStatus

_SCRIPTS = Path(__file__).parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    cfg = _config()
    # Alembic runs each migration in its own transaction (``transaction_per_migration``), so a
    # migration may step out of it for what PostgreSQL runs only outside one (CREATE INDEX
    # CONCURRENTLY); a failed migration leaves the ones before it applied.
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def status(engine: sa.Engine) -> MigrationStatus:
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return MigrationStatus(current=current, head=head_revision())
