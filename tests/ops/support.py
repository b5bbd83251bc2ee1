"""Shared by the multi-process tests: a world in the real PostgreSQL, Redis key hygiene, and
servers started side by side."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa

from fyp.auth import create_key
from fyp.models import User, VideoIn
from fyp.storage.data import open_data_store
from fyp.storage.data.schema import metadata
from tests.server import ServerProcess

REDIS_URL = os.environ.get("FYP_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
CREATORS = 10
VIDEOS = 100


def creator_of(video_id: str) -> str:
    return f"c{int(video_id[1:]) % CREATORS}"


def seed_world(url: str) -> str:
    """Empty every table, then 10 creators with 10 videos each and users u1..u20; an app key."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    store = open_data_store(url)
    old = datetime.now(UTC) - timedelta(days=5)  # out of the fresh pool: ranked like the rest
    store.upsert_users(
        [User(id=f"c{c}", region="US") for c in range(CREATORS)]
        + [User(id=f"u{u}", region="US", language="en") for u in range(1, 21)]
    )
    store.upsert_videos(
        [
            VideoIn(
                id=f"v{i:03d}",
                creator_id=f"c{i % CREATORS}",
                hashtags=[f"t{i % 4}"],
                sound_id=f"s{i % 12}",
                duration_ms=10_000,
                region="US",
                language="en",
                created_at=old - timedelta(minutes=i),
            )
            for i in range(VIDEOS)
        ],
        "approved",
    )
    _, key = create_key(store, "app", "scale test")
    store.close()
    return key


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix of its own in the real Redis, deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        if IN_CI:
            pytest.fail(f"Redis is unreachable under CI=true: {e}")
        pytest.skip(f"Redis unreachable: {e}")
    prefix = f"fyptest:{uuid.uuid4().hex[:10]}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def start_all(*servers: ServerProcess) -> None:
    """Start servers in parallel (each takes seconds to import and warm up)."""
    errors: list[BaseException] = []

    def start(s: ServerProcess) -> None:
        try:
            s.start(timeout_s=60)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for s in servers:
            s.stop()
        raise errors[0]
