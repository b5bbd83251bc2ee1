"""The SQLite store's raw read path (the feed's per-request reads): what it refuses and decodes,
and the connections of its own it reads on. Its results are checked against the SQLAlchemy
path in the data store contract suite."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from fyp.models import User
from fyp.storage.data import StoreUnavailable
from fyp.storage.data.sql import SqlDataStore, _RawRead


def test_the_raw_sqlite_reads_refuse_columns_that_need_conversion() -> None:
    """The feed's raw SQLite reads return SQLite's values as they are: a column type whose
    Python value differs (a boolean, a timestamp, an enum) must fail when the read is built,
    not hand the feed the wrong type."""
    dialect = sa.create_engine("sqlite://").dialect
    for col in (
        sa.Column("flag", sa.Boolean),
        sa.Column("at", sa.DateTime),
        sa.Column("kind", sa.Enum("a", "b")),
    ):
        table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.String), col)
        with pytest.raises(TypeError, match=col.name):
            _RawRead(sa.select(table), dialect)
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.String), sa.Column("j", sa.JSON))
    read = _RawRead(sa.select(table).where(table.c.id == sa.bindparam("id")), dialect)
    assert read.args({"id": "x"}) == ["x"]
    assert read.rows([("x", '{"a": [1]}'), ("y", None)]) == [("x", {"a": [1]}), ("y", None)]


# -- the raw reads' own connections -------------------------------------------------------------


@pytest.fixture
def sqlite_store(sqlite_template: Path, tmp_path: Path) -> Iterator[SqlDataStore]:
    path = tmp_path / "fyp.db"
    shutil.copy(sqlite_template, path)
    store = SqlDataStore(f"sqlite:///{path}", pool_size=2)
    yield store
    store.close()


def _user(region: str) -> User:
    return User(id="u1", region=region, created_at=datetime(2024, 5, 6, tzinfo=UTC))


def test_a_reused_raw_reader_sees_every_commit_before_it(sqlite_store: SqlDataStore) -> None:
    """The raw reads reuse their connections: one left inside a read transaction would keep
    answering from its old snapshot. Each read must see what was committed before it."""
    store = sqlite_store
    assert store.get_user("u1") is None
    store.upsert_users([_user("US")])
    assert (u := store.get_user("u1")) is not None and u.region == "US"
    store.upsert_users([_user("DE")])
    assert (u := store.get_user("u1")) is not None and u.region == "DE"
    # the same connection answered all three reads, and no pooled one was taken for them
    assert store._readers is not None and len(store._readers._idle) == 1
    assert store._reader.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_raw_readers_from_many_threads_keep_at_most_the_pool_size_idle(
    sqlite_store: SqlDataStore,
) -> None:
    store = sqlite_store
    store.upsert_users([_user("US")])
    barrier = threading.Barrier(6)

    def read(_: int) -> str | None:
        barrier.wait()
        found = [store.get_user("u1") for _ in range(20)]
        return found[-1].region if found[-1] is not None else None

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(read, range(6))) == ["US"] * 6
    assert store._readers is not None and 1 <= len(store._readers._idle) <= 2
    store.close()
    assert store._readers._idle == []


def test_a_failed_raw_read_is_unavailable_and_its_connection_dropped(
    sqlite_store: SqlDataStore,
) -> None:
    store = sqlite_store
    store.upsert_users([_user("US")])
    assert store.get_user("u1") is not None
    readers = store._readers
    assert readers is not None and len(readers._idle) == 1
    broken = readers._idle[0]
    with store._writer.begin() as conn:  # a schema this read no longer matches
        conn.exec_driver_sql("ALTER TABLE users RENAME TO users_gone")
    with pytest.raises(StoreUnavailable, match="users"):
        store.get_user("u1")
    assert broken not in readers._idle
    with pytest.raises(sqlite3.ProgrammingError):  # closed, not leaked
        broken.execute("SELECT 1")


def test_a_raw_reader_that_cannot_open_the_database_is_unavailable(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Opening a reader is part of the read: a store whose file went away answers
    ``StoreUnavailable`` (a 503), not SQLite's own error (a 500)."""
    folder = tmp_path / "db"
    folder.mkdir()
    shutil.copy(sqlite_template, folder / "fyp.db")
    store = SqlDataStore(f"sqlite:///{folder / 'fyp.db'}")
    try:
        assert store.get_user("u1") is None
        assert store._readers is not None
        store._readers.close()  # the next read has to open a connection
        shutil.rmtree(folder)
        with pytest.raises(StoreUnavailable, match="unable to open"):
            store.get_user("u1")
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_reads_on_connections_of_its_own(sqlite_store: SqlDataStore) -> None:
    store = sqlite_store
    store.upsert_users([_user("US")])
    assert store.get_user("u1") is not None  # the parent now holds an idle connection
    assert store._readers is not None
    parents = list(store._readers._idle)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()

    def child() -> None:
        u = store.get_user("u1")
        readers = store._readers
        assert readers is not None
        out.put((u.region if u else None, any(c in readers._idle for c in parents)))

    p = ctx.Process(target=child)
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert out.get(timeout=5) == ("US", False)
    assert store._readers._idle == parents  # the parent's are untouched
