"""Ingestion under a slow or failing store: 429/503 with Retry-After, never a hang, never an
acknowledgement of what was not committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from fyp.config import Settings
from fyp.storage.data import EventRow, StoreUnavailable
from fyp.storage.data.memory import MemoryDataStore
from tests.api.support import event, seed, serve, with_settings
from tests.conftest import Api

TIMEOUT_S = 0.4


class StuckStore(MemoryDataStore):
    """A memory store whose writes (or key lookups) wait until released, or fail on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.keys_gate = threading.Event()
        self.keys_gate.set()
        self.down = False

    def append_events(self, rows: Sequence[EventRow]) -> list[str]:
        self.gate.wait(10)
        if self.down:
            raise StoreUnavailable("connection refused")
        return super().append_events(rows)

    def find_api_key(self, key_hash: str) -> Any:
        self.keys_gate.wait(10)
        return super().find_api_key(key_hash)


@pytest.fixture
def stuck(settings: Settings) -> Iterator[tuple[Api, StuckStore]]:
    s = with_settings(
        settings,
        server={"ingest_max_inflight": 2, "store_timeout_s": TIMEOUT_S, "retry_after_s": 3},
    )
    store = StuckStore()
    seed(store)
    with serve(s, store) as api:
        yield api, store
    store.gate.set()
    store.keys_gate.set()


def post(api: Api, *ids: str) -> tuple[Any, float]:
    start = time.monotonic()
    r = api.client.post("/v1/events", json={"events": [event(i) for i in ids]}, headers=api.app)
    return r, time.monotonic() - start


def test_a_stuck_commit_is_answered_503_in_time_and_is_never_double_stored(
    stuck: tuple[Api, StuckStore],
) -> None:
    api, store = stuck
    store.gate.clear()
    r, took = post(api, "e1")
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "store_timeout"
    assert r.headers["retry-after"] == "3"
    assert TIMEOUT_S <= took < TIMEOUT_S + 1.0
    store.gate.set()  # the commit lands after the 503: it was never acknowledged ...
    deadline = time.monotonic() + 5
    while api.services.store_gate.inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    r, _ = post(api, "e1")  # ... and the client's retry stores nothing twice
    assert r.status_code == 200
    assert r.json()["duplicates"] == 1 and r.json()["stored"] == 0
    assert store.count_events() == 1


def test_over_the_inflight_limit_batches_are_refused_429_at_once(
    stuck: tuple[Api, StuckStore],
) -> None:
    api, store = stuck
    store.gate.clear()
    # Two batches time out but their threads stay stuck on the store: both slots stay taken.
    assert post(api, "a")[0].status_code == 503
    assert post(api, "b")[0].status_code == 503
    r, took = post(api, "c")
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "overloaded"
    assert r.headers["retry-after"] == "3"
    assert took < TIMEOUT_S  # refused without waiting
    store.gate.set()
    deadline = time.monotonic() + 5
    while api.services.store_gate.inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    r, _ = post(api, "a", "b", "c")
    assert r.status_code == 200
    assert r.json()["stored"] == 1 and r.json()["duplicates"] == 2


def test_a_store_that_is_down_answers_503_with_retry_after(
    stuck: tuple[Api, StuckStore],
) -> None:
    api, store = stuck
    store.down = True
    r, took = post(api, "x")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "store_unavailable"
    assert "retry-after" in r.headers
    assert took < 1.0
    store.down = False
    assert post(api, "x")[0].status_code == 200


def test_a_stuck_key_lookup_is_answered_503_not_a_hang(settings: Settings) -> None:
    s = with_settings(settings, server={"store_timeout_s": TIMEOUT_S}, api={"key_cache_seconds": 0})
    store = StuckStore()
    seed(store)
    with serve(s, store) as api:
        store.keys_gate.clear()
        try:
            r, took = post(api, "k1")
        finally:
            store.keys_gate.set()
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_timeout"
        assert took < TIMEOUT_S + 1.0
        assert post(api, "k1")[0].status_code == 200
