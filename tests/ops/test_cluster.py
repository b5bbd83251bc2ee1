"""Two servers (A: `fyp serve --workers 2`, B: one worker) sharing the real PostgreSQL and
Redis, each reached through a TCP proxy the tests control: they behave as one service, they ride
out either engine being cut (connections reset, then refused) or frozen (connections open,
nothing answered), and A drains cleanly on SIGTERM.

The servers are started once for the module (that is most of its time); each test leaves both
proxies flowing; the SIGTERM test runs last. The world lives in a PostgreSQL schema and a Redis
key prefix of its own.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from fyp.storage.data import open_data_store
from fyp.storage.data.schema import events
from tests.conftest import PG_SERVER, _unavailable
from tests.ops.proxy import TcpProxy
from tests.ops.support import REDIS_URL, creator_of, redis_prefix, seed_world, start_all
from tests.server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STORE_TIMEOUT_S = 1.5
BOUND_S = STORE_TIMEOUT_S + 1.5  # no ingest answer may take longer than this


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    pg: TcpProxy
    redis: TcpProxy
    url: str  # direct, not proxied
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    schema = f"fyp_scale_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as e:
        admin.dispose()
        _unavailable("PostgreSQL", e)
    url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    store = open_data_store(url)
    store.migrate()
    store.close()
    key = seed_world(url)
    pg_url = sa.make_url(url)
    redis_url = urlsplit(REDIS_URL)
    pg = TcpProxy(pg_url.host or "127.0.0.1", pg_url.port or 5432)
    rd = TcpProxy(redis_url.hostname or "127.0.0.1", redis_url.port or 6379)
    pg.start()
    rd.start()
    proxied = pg_url.set(host="127.0.0.1", port=pg.port).render_as_string(hide_password=False)
    tmp = tmp_path_factory.mktemp("cluster")
    try:
        with redis_prefix() as prefix:
            env = {
                "FYP_ONLINE__BACKEND": "redis",
                "FYP_ONLINE__REDIS_URL": f"redis://127.0.0.1:{rd.port}{redis_url.path}",
                "FYP_ONLINE__KEY_PREFIX": prefix,
                "FYP_SERVER__STORE_TIMEOUT_S": str(STORE_TIMEOUT_S),
                "FYP_SERVER__DB_POOL_TIMEOUT_S": "1",
                "FYP_SERVER__DB_CONNECT_TIMEOUT_S": "1",
                "FYP_SERVER__INGEST_MAX_INFLIGHT": "4",
                "FYP_API__KEY_CACHE_SECONDS": "300",
            }
            # A runs two workers (`fyp serve --workers 2`, JSON logs), B one.
            a = ServerProcess(
                proxied, tmp / "a", workers=2, env={**env, "FYP_SERVER__LOG_FORMAT": "json"}
            )
            b = ServerProcess(proxied, tmp / "b", env=env)
            start_all(a, b)
            try:
                # start() returns once one worker answers /readyz: wait for A's second worker
                # too, so that no test (a fault test above all) runs into its start-up.
                wait_workers_started(a, 2)
                yield Cluster(a, b, pg, rd, url, key)
            finally:
                a.stop()
                b.stop()
    finally:
        pg.close()
        rd.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def wait_workers_started(server: ServerProcess, n: int, timeout_s: float = 60) -> None:
    """Until ``n`` workers of ``server`` completed their start-up; fail at once if one failed
    (uvicorn's supervisor acts on that only when its next health check times out, up to
    ``worker_healthcheck_s`` later, and then stops the whole server)."""
    deadline = time.monotonic() + timeout_s
    while True:
        log = server.log.read_text()
        assert "Application startup failed" not in log, log[-3000:]
        if log.count("Application startup complete.") >= n:
            return
        assert time.monotonic() < deadline, f"{n} workers not started: {log[-3000:]}"
        time.sleep(0.1)


def assert_workers_intact(server: ServerProcess, n: int) -> None:
    """The server still runs the ``n`` workers it started with: none died, was replaced or
    failed its start-up (a supervisor that stopped by itself ignores a SIGTERM and exits 0)."""
    log = server.log.read_text()
    assert server.proc is not None and server.proc.poll() is None, f"server stopped: {log[-3000:]}"
    lost = [line for line in log.splitlines() if "Child process [" in line]
    assert not lost, lost
    assert log.count("Started server process [") == n, log[-3000:]
    assert "Application startup failed" not in log, log[-3000:]


def now() -> str:
    return datetime.now(UTC).isoformat()


def play_batch(tag: str, users: list[str], n: int, size: int) -> tuple[list[str], dict[str, Any]]:
    ids = [f"{tag}-b{n}-e{i}" for i in range(size)]
    batch = [
        {
            "event_id": e,
            "user_id": users[i % len(users)],
            "video_id": f"v{(n * 7 + i) % 100:03d}",
            "type": "play",
            "watch_ms": 4000,
            "ts": now(),
        }
        for i, e in enumerate(ids)
    ]
    return ids, {"events": batch}


@dataclass
class Answer:
    kind: str  # "events" or "feed"
    sent: float
    took: float
    status: int  # 0: no HTTP answer (a hang past the client timeout, or a dropped connection)
    retry_after: str | None = None
    ids: list[str] = field(default_factory=list)
    fallback: str | None = None


class Traffic:
    """Client threads sending requests until stopped, recording every answer."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def run(
        self, base_url: str, auth: dict[str, str], step: Callable[[httpx.Client, int], Answer]
    ) -> None:
        def loop() -> None:
            with httpx.Client(base_url=base_url, headers=auth, timeout=10) as http:
                n = 0
                while not self._stop.is_set():
                    a = step(http, n)
                    n += 1
                    with self._lock:
                        self.answers.append(a)
                    if a.status != 200:
                        time.sleep(0.05)  # a polite client backs off a little

        t = threading.Thread(target=loop)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def since(self, t: float, kind: str, ok: Callable[[Answer], bool]) -> int:
        with self._lock:
            return sum(1 for a in self.answers if a.kind == kind and a.sent >= t and ok(a))

    def wait_for(self, t: float, kind: str, ok: Callable[[Answer], bool], n: int = 3) -> float:
        while self.since(t, kind, ok) < n:
            assert time.monotonic() - t < 15, f"{kind} did not recover by itself"
            time.sleep(0.05)
        return time.monotonic() - t

    def during(self, a: float, b: float, kind: str) -> list[Answer]:
        return [
            x for x in self.answers if x.kind == kind and a + 0.2 <= x.sent and x.sent + x.took <= b
        ]


def post_events(tag: str, users: list[str], size: int) -> Callable[[httpx.Client, int], Answer]:
    def step(http: httpx.Client, n: int) -> Answer:
        ids, body = play_batch(tag, users, n, size)
        sent = time.monotonic()
        try:
            r = http.post("/v1/events", json=body)
        except httpx.HTTPError:
            return Answer("events", sent, time.monotonic() - sent, 0, ids=ids)
        took = time.monotonic() - sent
        if r.status_code == 200:  # acknowledged: every event of the batch not rejected
            rejected = {x["index"] for x in r.json()["rejected"]}
            ids = [e for i, e in enumerate(ids) if i not in rejected]
        return Answer("events", sent, took, r.status_code, r.headers.get("retry-after"), ids)

    return step


def get_feeds(users: list[str]) -> Callable[[httpx.Client, int], Answer]:
    def step(http: httpx.Client, n: int) -> Answer:
        sent = time.monotonic()
        try:
            r = http.get(f"/v1/users/{users[n % len(users)]}/feed", params={"count": 10})
        except httpx.HTTPError:
            return Answer("feed", sent, time.monotonic() - sent, 0)
        fallback = r.json().get("fallback") if r.status_code == 200 else None
        return Answer(
            "feed",
            sent,
            time.monotonic() - sent,
            r.status_code,
            r.headers.get("retry-after"),
            fallback=fallback,
        )

    return step


def timeline(answers: list[Answer], t0: float) -> list[tuple[float, float, int]]:
    """(sent, took, status) around ``t0``, for failure messages."""
    return [
        (round(a.sent - t0, 2), round(a.took, 2), a.status)
        for a in answers
        if t0 - 1 <= a.sent + a.took and a.sent <= t0 + 6
    ][:60]


def stored_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.event_id, sa.func.count()).group_by(events.c.event_id)
        ).all()
    engine.dispose()
    return {str(k): int(v) for k, v in rows}


def assert_acked_stored_once(traffic: Traffic, url: str, at_least: int) -> None:
    counts = stored_counts(url)
    acked = [i for a in traffic.answers if a.kind == "events" and a.status == 200 for i in a.ids]
    assert len(acked) >= at_least
    missing = [i for i in acked if i not in counts]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
    assert all(c == 1 for c in counts.values()), "an event stored more than once"


# -- one service across processes ---------------------------------------------------------------


def feed_ids(http: httpx.Client, user: str, count: int = 10) -> list[str]:
    r = http.get(f"/v1/users/{user}/feed", params={"count": count})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["fallback"] is None, body["fallback"]  # the full pipeline served
    return [it["video"]["id"] for it in body["items"]]


def test_two_servers_share_seen_sets_and_fresh_events(cluster: Cluster) -> None:
    with (
        httpx.Client(base_url=cluster.a.url, headers=cluster.auth, timeout=10) as ha,
        httpx.Client(base_url=cluster.b.url, headers=cluster.auth, timeout=10) as hb,
    ):
        # Never repeat, across processes: pages alternate between the servers.
        served: list[str] = []
        for http in (ha, hb, ha, hb, hb, ha):
            page = feed_ids(http, "u1")
            assert len(page) == 10
            again = set(page) & set(served)
            assert not again, f"served again by the other server: {sorted(again)}"
            served += page

        # An event sent to A acts on B's very next feed: u2 says "not interested" to three
        # creators B just showed; B's next pages have none of their videos.
        first = feed_ids(hb, "u2")
        muted = sorted({creator_of(v) for v in first})[:3]
        batch = [
            {
                "event_id": f"ni-{c}",
                "user_id": "u2",
                "type": "not_interested",
                "video_id": next(v for v in first if creator_of(v) == c),
                "ts": now(),
            }
            for c in muted
        ]
        r = ha.post("/v1/events", json={"events": batch})
        assert r.status_code == 200 and r.json()["stored"] == 3, r.text
        later = feed_ids(hb, "u2", 20) + feed_ids(hb, "u2", 20)
        assert len(later) == 40
        shown = {creator_of(v) for v in later}
        assert not shown & set(muted), f"muted creators {muted} still served by B"
        assert len(shown) >= 5  # the rest of the catalog still flows


# -- PostgreSQL faults ---------------------------------------------------------------------------


def test_ingestion_survives_postgres_cut_and_frozen(cluster: Cluster) -> None:
    traffic = Traffic()
    for w in range(5):
        traffic.run(cluster.a.url, cluster.auth, post_events(f"pg{w}", ["u3", "u4"], 50))
    ok: Callable[[Answer], bool] = lambda a: a.status == 200  # noqa: E731
    try:
        traffic.wait_for(time.monotonic(), "events", ok)
        cut_at = time.monotonic()
        cluster.pg.cut()  # PostgreSQL's host is gone: resets, then refused connections
        time.sleep(3.0)
        restored_at = time.monotonic()
        cluster.pg.restore()
        recovered_cut = traffic.wait_for(restored_at, "events", ok)
        paused_at = time.monotonic()
        cluster.pg.pause()  # PostgreSQL frozen: connections open, nothing answered
        time.sleep(3.5)
        unpaused_at = time.monotonic()
        cluster.pg.restore()
        recovered_pause = traffic.wait_for(unpaused_at, "events", ok)
    finally:
        cluster.pg.restore()
        traffic.stop()

    answers = traffic.answers
    hung = [a for a in answers if a.status == 0]
    assert not hung, f"{len(hung)} requests got no HTTP answer"
    slow = max(a.took for a in answers)
    assert slow < BOUND_S, f"a request took {slow:.2f}s (bound {BOUND_S}s)"
    assert {a.status for a in answers} <= {200, 429, 503}
    refused = [a for a in answers if a.status != 200]
    assert all(a.retry_after for a in refused), "a 429/503 without Retry-After"
    cut = traffic.during(cut_at, restored_at, "events")
    # 429 is fair at any time (this worker already stores its limit of batches); what matters
    # is that nothing is acknowledged while PostgreSQL is away, and the outage says 503.
    assert cut and all(a.status in (429, 503) for a in cut), timeline(answers, cut_at)
    assert any(a.status == 503 for a in cut), timeline(answers, cut_at)
    paused = traffic.during(paused_at, unpaused_at, "events")
    assert paused and all(a.status in (429, 503) for a in paused), timeline(answers, paused_at)
    # The batches caught by the freeze (often sent just before it) answer 503 once the store
    # timeout passes, and their threads keep this worker's batch slots until PostgreSQL answers
    # again, so everything sent after them may be 429: the outage shows as timeout 503s
    # answered while frozen.
    timed_out = [
        a
        for a in answers
        if a.kind == "events"
        and a.status == 503
        and a.took >= 0.9 * STORE_TIMEOUT_S
        and paused_at <= a.sent + a.took
        and a.sent <= unpaused_at
    ]
    assert timed_out, timeline(answers, paused_at)
    assert recovered_cut < 10 and recovered_pause < 10
    assert_acked_stored_once(traffic, cluster.url, at_least=500)
    print(  # the figures, for the report (pytest -s)
        f"\npg fault: answers={len(answers)} refused={len(refused)} slowest={slow:.2f}s "
        f"recovered cut={recovered_cut:.2f}s pause={recovered_pause:.2f}s"
    )


# -- Redis faults --------------------------------------------------------------------------------


def test_redis_cut_and_frozen_degrade_the_feed_and_lose_no_event(cluster: Cluster) -> None:
    users = ["u5", "u6", "u7", "u8"]
    traffic = Traffic()
    traffic.run(cluster.a.url, cluster.auth, post_events("rd", users, 20))
    traffic.run(cluster.b.url, cluster.auth, get_feeds(users))
    traffic.run(cluster.a.url, cluster.auth, get_feeds(users))
    full: Callable[[Answer], bool] = lambda a: a.status == 200 and a.fallback is None  # noqa: E731
    stored: Callable[[Answer], bool] = lambda a: a.status == 200  # noqa: E731
    try:
        traffic.wait_for(time.monotonic(), "feed", full)
        cut_at = time.monotonic()
        cluster.redis.cut()
        time.sleep(2.5)
        restored_at = time.monotonic()
        cluster.redis.restore()
        recovered_cut = traffic.wait_for(restored_at, "feed", full)
        traffic.wait_for(restored_at, "events", stored)
        paused_at = time.monotonic()
        cluster.redis.pause()
        time.sleep(2.5)
        unpaused_at = time.monotonic()
        cluster.redis.restore()
        recovered_pause = traffic.wait_for(unpaused_at, "feed", full)
        traffic.wait_for(unpaused_at, "events", stored)
    finally:
        cluster.redis.restore()
        traffic.stop()

    answers = traffic.answers
    hung = [a for a in answers if a.status == 0]
    assert not hung, f"{len(hung)} requests got no HTTP answer"
    evs = [a for a in answers if a.kind == "events"]
    assert {a.status for a in evs} <= {200, 429, 503}, {a.status for a in evs}
    assert all(a.retry_after for a in evs if a.status != 200)
    assert_acked_stored_once(traffic, cluster.url, at_least=100)
    slow = max(a.took for a in answers)
    assert slow < 5.0, f"a request took {slow:.2f}s during a Redis outage"
    feeds = [a for a in answers if a.kind == "feed"]
    statuses = Counter(a.status for a in feeds)
    assert set(statuses) == {200}, statuses  # degrade, never error
    for a, b in ((cut_at, restored_at), (paused_at, unpaused_at)):
        outage = traffic.during(a, b, "feed")
        assert outage and all(x.fallback for x in outage), [x.fallback for x in outage]
    during_cut = Counter(a.status for a in traffic.during(cut_at, restored_at, "events"))
    during_pause = Counter(a.status for a in traffic.during(paused_at, unpaused_at, "events"))
    print(
        f"\nredis fault: events during cut {dict(during_cut)}, pause {dict(during_pause)}; "
        f"answers={len(answers)} slowest={slow:.2f}s "
        f"recovered cut={recovered_cut:.2f}s pause={recovered_pause:.2f}s"
    )


# -- several workers: metrics and graceful shutdown (last: it stops A) ---------------------------


def healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "fyp_http_requests_total" and s.labels.get("route") == "/healthz":
                return s.value
    return 0.0


def test_workers_share_one_metrics_view(cluster: Cluster) -> None:
    base = healthz_count(httpx.get(f"{cluster.a.url}/metrics", timeout=5).text)
    n = 30
    for _ in range(n):  # a new connection each time, so both workers get some
        assert httpx.get(f"{cluster.a.url}/healthz", timeout=5).status_code == 200
    metrics_dir = cluster.a.log.parent / "metrics"
    pids = {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}
    assert len(pids) == 2, f"expected samples from 2 workers, got {pids}"
    for _ in range(4):  # whichever worker answers the scrape reports the sum over both
        assert healthz_count(httpx.get(f"{cluster.a.url}/metrics", timeout=5).text) >= base + n


def test_sigterm_drains_in_flight_batches_and_loses_nothing(cluster: Cluster) -> None:
    traffic = Traffic()
    for w in range(2):
        traffic.run(cluster.a.url, cluster.auth, post_events(f"term{w}", ["u9", "u10"], 200))
    ok: Callable[[Answer], bool] = lambda a: a.status == 200  # noqa: E731
    try:
        traffic.wait_for(time.monotonic(), "events", ok, n=10)
        proc = cluster.a.proc
        assert proc is not None
        # Both of A's workers are the ones it started with, so the exit below is theirs.
        assert_workers_intact(cluster.a, 2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, "A did not exit cleanly on SIGTERM"
    finally:
        traffic.stop()
    log = cluster.a.log.read_text()
    assert "Received SIGTERM" in log, log[-2000:]  # it exited on the signal, not by itself
    assert log.count('"Finished server process') == 2, log[-2000:]
    # Every batch answered before the exit was answered in full: no 5xx while draining.
    assert {a.status for a in traffic.answers if a.status} == {200}
    assert_acked_stored_once(traffic, cluster.url, at_least=2000)
