"""Leases over every backend: one holder at a time, expiry, takeover, release, races, crashes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fyp.leases import Lease, LeaseBusy, LeaseLost
from fyp.storage.data import DataStore, open_data_store

T = 1_000_000_000_000  # a fixed "now" in epoch ms


class Clock:
    def __init__(self, now: int = T) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_one_holder_at_a_time_until_expiry(store: DataStore) -> None:
    assert store.get_lease("trainer") is None
    assert store.acquire_lease("trainer", "a", T + 1000, T)
    assert not store.acquire_lease("trainer", "b", T + 1500, T + 500)  # a's lease is valid
    row = store.get_lease("trainer")
    assert row is not None and (row.holder, row.expires_ms) == ("a", T + 1000)
    # a renews: its lease runs longer; b still cannot take it where it used to expire
    assert store.acquire_lease("trainer", "a", T + 3000, T + 900)
    assert not store.acquire_lease("trainer", "b", T + 4000, T + 1000)
    # expired: b takes over, and a's renewal now fails (it must stop acting as the holder)
    assert store.acquire_lease("trainer", "b", T + 5000, T + 3000)
    assert not store.acquire_lease("trainer", "a", T + 6000, T + 3001)
    row = store.get_lease("trainer")
    assert row is not None and row.holder == "b"


def test_release_only_by_the_holder_and_frees_at_once(store: DataStore) -> None:
    assert store.acquire_lease("trainer", "a", T + 60_000, T)
    assert not store.release_lease("trainer", "b")
    assert not store.acquire_lease("trainer", "b", T + 60_000, T + 1)
    assert store.release_lease("trainer", "a")
    assert store.get_lease("trainer") is None
    assert not store.release_lease("trainer", "a")  # nothing left to release
    assert store.acquire_lease("trainer", "b", T + 60_000, T + 2)


def test_leases_are_independent_by_name(store: DataStore) -> None:
    assert store.acquire_lease("trainer", "a", T + 1000, T)
    assert store.acquire_lease("compactor", "b", T + 1000, T)
    assert not store.acquire_lease("compactor", "a", T + 1000, T)


def test_concurrent_acquirers_get_exactly_one_winner(store: DataStore) -> None:
    n = 8
    barrier = threading.Barrier(n)
    wins: list[str] = []
    lock = threading.Lock()

    def contender(i: int) -> None:
        barrier.wait()
        if store.acquire_lease("race", f"h{i}", T + 10_000, T):
            with lock:
                wins.append(f"h{i}")

    for _round in range(3):
        wins.clear()
        threads = [threading.Thread(target=contender, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1, wins
        assert store.release_lease("race", wins[0])


def test_lease_object_holds_renews_and_detects_loss(store: DataStore) -> None:
    clock = Clock()
    a = Lease(store, "trainer", ttl_s=10, holder="a", clock=clock)
    b = Lease(store, "trainer", ttl_s=10, holder="b", clock=clock)
    with a.hold(renew_every_s=3600) as held:  # no background renewal during this test
        assert a.held and not held.lost
        with pytest.raises(LeaseBusy, match="held by a"), b.hold():
            pass
        clock.now += 11_000  # a stalled past its ttl without renewing; b takes over
        assert b.acquire()
        assert held.lost
        with pytest.raises(LeaseLost):
            held.check()
    # a's exit released nothing of b's
    row = store.get_lease("trainer")
    assert row is not None and row.holder == "b"


def test_background_renewal_keeps_the_lease(store: DataStore) -> None:
    a = Lease(store, "trainer", ttl_s=0.6, holder="a")
    b = Lease(store, "trainer", ttl_s=0.6, holder="b")
    with a.hold(renew_every_s=0.1) as held:
        time.sleep(0.8)  # longer than the ttl: only renewals keep it
        assert not b.acquire()
        held.check()
    assert b.acquire()  # released on exit, no need to wait for expiry


HOLDER = """
import sys, time
from fyp.leases import Lease
from fyp.storage.data import open_data_store
lease = Lease(open_data_store(sys.argv[1]), "trainer", ttl_s=1.0, holder="doomed")
with lease.hold(renew_every_s=0.2):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_killed_holders_lease_expires_and_another_takes_over(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fyp.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    store = open_data_store(url)
    store.migrate()
    store.release_lease("trainer", "doomed")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"held", proc.stderr.read() if proc.stderr else ""
        other = Lease(store, "trainer", ttl_s=5, holder="survivor")
        time.sleep(1.2)  # past the ttl: only the holder's renewals keep it alive
        assert not other.acquire()
        proc.kill()  # no release, no more renewals
        proc.wait(10)
        killed_at = time.monotonic()
        while not other.acquire():
            assert time.monotonic() - killed_at < 3.0, "the dead holder's lease never expired"
            time.sleep(0.05)
        row = store.get_lease("trainer")
        assert row is not None and row.holder == "survivor"
    finally:
        proc.kill()
        store.release_lease("trainer", "survivor")
        store.close()
