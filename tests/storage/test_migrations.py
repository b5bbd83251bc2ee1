"""Alembic migrations: they build exactly ``fyp.storage.data.schema.metadata`` and report status.

The ``store`` fixture hands out stores already at ``alembic upgrade head`` (SQLite copies a
migrated template file, PostgreSQL migrates a fresh schema once per session); the memory backend
has no schema, so the schema checks skip it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from fyp.models import User
from fyp.storage import migrate
from fyp.storage.data import DataStore, open_data_store
from fyp.storage.data.base import LOG_EVENT_FIELDS
from fyp.storage.data.schema import metadata

HEAD = "0004"


def _sql_only(store: DataStore) -> None:
    if store.url.startswith("memory:"):
        pytest.skip("the memory store has no schema to migrate")


def _schema_diff(url: str, target: sa.MetaData = metadata) -> list[Any]:
    """Alembic's autogenerate comparison of the live database against ``target``.

    Nothing is filtered: on both SQLite and PostgreSQL the migrated schema reflects back with
    no differences, type variants included (JSON/JSONB, BigInteger/Integer for ``events.seq``).
    """
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(ctx, target))
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_metadata(store: DataStore) -> None:
    _sql_only(store)
    assert _schema_diff(store.url) == []


def test_schema_comparison_detects_drift(store: DataStore) -> None:
    """The check above is not vacuous: a column or type change in the metadata shows up."""
    _sql_only(store)
    drifted = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["users"].append_column(sa.Column("nickname", sa.String(40)))
    hashtag = drifted.tables["events"].c.hashtag
    hashtag.type = sa.String(200)

    diff = _schema_diff(store.url, drifted)

    flat = [d for entry in diff for d in (entry if isinstance(entry, list) else [entry])]
    kinds = {(d[0], d[2], d[3]) if d[0] == "modify_type" else (d[0], d[2]) for d in flat}
    assert ("add_column", "users") in kinds
    assert ("modify_type", "events", "hashtag") in kinds


def test_migration_status_after_migrate(store: DataStore) -> None:
    status = store.migration_status()
    assert status.up_to_date
    if store.url.startswith("memory:"):
        assert (status.current, status.head) == (None, None)
        return
    assert status.current == HEAD
    assert status.head == HEAD
    assert migrate.head_revision() == HEAD


def test_migrating_twice_is_harmless(store: DataStore) -> None:
    user = User(id="u1", region="GB", interests=["cats"])
    store.upsert_users([user])

    store.migrate()
    store.migrate()

    status = store.migration_status()
    assert status.up_to_date
    got = store.get_user("u1")
    assert got is not None and got.interests == ["cats"]
    if not store.url.startswith("memory:"):
        assert status.current == HEAD
        assert _schema_diff(store.url) == []
        engine = sa.create_engine(store.url)
        try:
            with engine.connect() as conn:
                versions = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                assert list(versions.scalars()) == [HEAD]
        finally:
            engine.dispose()


def test_fresh_sqlite_file_is_not_up_to_date_until_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = open_data_store(url)
    try:
        status = store.migration_status()
        assert status.current is None
        assert status.head == HEAD
        assert not status.up_to_date

        store.migrate()

        status = store.migration_status()
        assert (status.current, status.head) == (HEAD, HEAD)
        assert status.up_to_date
        assert _schema_diff(url) == []
        store.upsert_users([User(id="u1")])
        assert store.existing_user_ids(["u1"]) == {"u1"}
    finally:
        store.close()


def test_upgrading_a_store_with_events_builds_the_covering_replay_index(store: DataStore) -> None:
    """0003 -> 0004 on a store that already logs events and a leftover of an interrupted
    upgrade (PostgreSQL builds the index concurrently, outside a transaction): the events stay
    readable, the index is valid and complete, and on SQLite a cold user's replay read never
    touches the table."""
    _sql_only(store)
    store.upsert_users([User(id="u1")])
    row = {
        "event_id": "e1",
        "user_id": "u1",
        "video_id": None,
        "creator_id": "c1",
        "sound_id": None,
        "hashtag": None,
        "type": "profile_visit",
        "ts_ms": 1_000,
        "received_ms": 1_000,
        "watch_ms": None,
        "request_id": None,
        "extra": {"k": 1},
    }
    cfg = migrate._config()
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")
            conn.commit()
        assert store.migration_status().current == "0003"
        store.append_events([row])  # type: ignore[list-item]
        with engine.begin() as conn:  # what an interrupted earlier upgrade may leave behind
            conn.exec_driver_sql("CREATE INDEX ix_events_user_replay ON events (user_id)")
        store.migrate()
        assert store.migration_status().current == HEAD
        assert _schema_diff(store.url) == []
        assert [e.type for e in store.user_events("u1", 0)] == ["profile_visit"]
        engine.dispose()  # a connection from before the upgrade may plan with the old schema
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                valid = conn.execute(
                    sa.text(
                        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c "
                        "ON c.oid = i.indexrelid WHERE c.relname = 'ix_events_user_replay'"
                    )
                ).scalars()
                assert list(valid) == [True]
            else:
                cols = ", ".join(LOG_EVENT_FIELDS)
                plan = conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN SELECT {cols} FROM events WHERE user_id = 'u1' "
                    "AND ts_ms >= 0 ORDER BY ts_ms DESC, seq DESC LIMIT 500"
                ).all()
                assert any("COVERING INDEX ix_events_user_replay" in str(r) for r in plan), plan
    finally:
        engine.dispose()
