"""A server killed with SIGKILL mid-stream loses nothing it acknowledged and splits no batch."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from fyp.auth import create_key
from fyp.models import User, VideoIn
from fyp.storage.data import open_data_store
from fyp.storage.data.schema import events
from tests.server import ServerProcess

pytestmark = pytest.mark.slow

BATCH = 200


def _seed(url: str) -> str:
    store = open_data_store(url)
    store.migrate()
    store.upsert_users([User(id=f"u{i}") for i in range(50)] + [User(id="c0")])
    store.upsert_videos(
        [VideoIn(id=f"v{i}", creator_id="c0", duration_ms=10_000) for i in range(100)],
        "approved",
    )
    _, secret = create_key(store, "app", "crash test")
    store.close()
    return secret


def _batch(worker: int, n: int) -> list[dict[str, object]]:
    return [
        {
            "event_id": f"w{worker}-b{n}-e{i}",
            "user_id": f"u{i % 50}",
            "video_id": f"v{(n + i) % 100}",
            "type": "play",
            "watch_ms": 1000 + i,
            "ts": "2026-01-01T00:00:00Z",
        }
        for i in range(BATCH)
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkill_mid_stream_keeps_every_acknowledged_event_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fyp.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE events, api_keys, videos, users CASCADE"))
        engine.dispose()
    key = _seed(url)
    server = ServerProcess(url, tmp_path / "var")
    server.start()

    acked: list[str] = []
    sent: list[list[str]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client(worker: int) -> None:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=5
        ) as http:
            n = 0
            while not stop.is_set():
                batch = _batch(worker, n)
                n += 1
                ids = [e["event_id"] for e in batch]
                with lock:
                    sent.append([str(i) for i in ids])
                try:
                    r = http.post("/v1/events", json={"events": batch})
                except httpx.HTTPError:
                    continue  # the server died under us: this batch was never acknowledged
                if r.status_code == 200:
                    assert r.json()["stored"] == BATCH, r.text
                    with lock:
                        acked.extend(str(i) for i in ids)

    workers = [threading.Thread(target=client, args=(w,)) for w in range(3)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 10 * BATCH and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    stop.set()
    for t in workers:
        t.join(10)
    assert len(acked) >= 10 * BATCH, "the server acknowledged too little before the kill"

    server.start()  # recovery after the crash: the WAL / PostgreSQL replays committed work
    try:
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
    finally:
        server.stop()

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.event_id, sa.func.count()).group_by(events.c.event_id)
        ).all()
    engine.dispose()
    counts: dict[str, int] = {str(k): int(v) for k, v in rows}
    missing = [i for i in acked if i not in counts]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
    assert all(c == 1 for c in counts.values()), "an event is stored more than once"
    # A batch is one transaction: after the crash each sent batch is either whole or absent.
    for ids in sent:
        present = sum(1 for i in ids if i in counts)
        assert present in (0, len(ids)), f"batch split by the crash: {present}/{len(ids)}"
