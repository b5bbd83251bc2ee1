"""Sustained durable ingestion: HTTP (one uvicorn worker) and the store path alone.

For each backend (SQLite, PostgreSQL) this script makes a fresh, migrated database, seeds users
and videos, creates an ``app`` key, then, ``--runs`` times:

* ``store.append_events(rows)``: the INSERT .. ON CONFLICT .. RETURNING and its commit, alone;
* ``services.ingestor.ingest(payload)``: validation, user/video look-ups and the store;
* ``POST /v1/events`` against ``fyp serve`` (one worker) from ``--concurrency`` keep-alive
  connections spread over ``--clients`` client processes, with orjson bodies encoded before the
  timed window.

In-process paths run one batch at a time and time only the call (batches are made between calls,
off the clock). Over HTTP only batches answered 200 with ``stored == batch`` inside the window
count. Each figure is the median of the runs; batch latencies are pooled over the runs. A per-stage
breakdown of one batch (parse, validation, look-ups, INSERT, COMMIT, the ASGI app in-process)
follows the table, and the CPU used by server and client during the HTTP window shows which side
was the limit.

    .venv/bin/python bench/ingest.py [--seconds 5] [--runs 3] [--backends sqlite,postgres]
        [--batch 500] [--concurrency 4] [--clients 1]

Everything is on 127.0.0.1; the server is stopped with SIGTERM and the databases are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from pydantic import TypeAdapter

from fyp.api.app import build_services, create_app
from fyp.api.deps import Services
from fyp.auth import create_key
from fyp.config import Settings
from fyp.models import EventIn
from fyp.storage.data import EventRow, schema
from fyp.types import now_ms, to_ms

ROOT = Path(__file__).resolve().parent.parent

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DASH = "\u2013"  # en dash, for ranges in the Markdown table

# --------------------------------------------------------------------------------------------
# A small world and realistic traffic over it
# --------------------------------------------------------------------------------------------


@dataclass
class World:
    users: list[str]
    videos: list[str]
    durations: list[int]


def seed(services: Services, n_users: int, n_videos: int, rng: random.Random) -> World:
    """Users (the first tenth are creators) and videos, through the catalog as the API would."""
    regions = ["US", "GB", "DE", "BR", "IN", "JP"]
    users = [f"user{i:06d}" for i in range(n_users)]
    creators = users[: max(1, n_users // 10)]
    rows: list[dict[str, Any]] = [{"id": u, "region": rng.choice(regions)} for u in users]
    videos: list[dict[str, Any]] = [
        {
            "id": f"video{i:06d}",
            "creator_id": rng.choice(creators),
            "caption": f"clip {i}",
            "hashtags": rng.sample(["dance", "pets", "food", "music", "diy", "travel"], 2),
            "duration_ms": rng.choice([8_000, 15_000, 22_000, 30_000, 45_000, 60_000]),
        }
        for i in range(n_videos)
    ]
    step = services.settings.catalog.max_bulk
    for i in range(0, len(rows), step):
        res = services.catalog.upsert_users(rows[i : i + step])
        assert not res.rejected, res.rejected[:3]
    for i in range(0, len(videos), step):
        res = services.catalog.upsert_videos(videos[i : i + step])
        assert not res.rejected, res.rejected[:3]
    return World(users, [v["id"] for v in videos], [v["duration_ms"] for v in videos])


class Traffic:
    """Viewing sessions as an app reports them: an impression, then a skip or a play with its
    watch time, sometimes a like. Popular videos get most views; every event id is unique."""

    def __init__(self, world: World, batch: int, seed: int, ordered_ids: bool = False) -> None:
        self.world = world
        self.batch_size = batch
        self.rng = random.Random(seed)
        self.ordered_ids = ordered_ids
        self.seq = 0
        # Views concentrate on a "hot" fifth of the catalog, as feeds do.
        self.hot = max(1, len(world.videos) // 5)

    def _id(self) -> str:
        if self.ordered_ids:  # time-ordered, like UUIDv7 or ULID
            self.seq += 1
            return f"{now_ms():012x}{self.seq:08x}{self.rng.getrandbits(48):012x}"
        return f"{self.rng.getrandbits(128):032x}"  # random, like UUIDv4

    def events(self) -> list[dict[str, Any]]:
        rng, w = self.rng, self.world
        out: list[dict[str, Any]] = []
        now = now_ms()
        while len(out) < self.batch_size:
            user = w.users[rng.randrange(len(w.users))]
            vi = rng.randrange(self.hot) if rng.random() < 0.8 else rng.randrange(len(w.videos))
            video, duration = w.videos[vi], w.durations[vi]
            ts_ms = now - rng.randrange(600_000)
            ts = datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds")
            request_id = f"req{rng.getrandbits(40):010x}"
            base = {"user_id": user, "video_id": video, "ts": ts}
            out.append(
                {**base, "event_id": self._id(), "type": "impression", "request_id": request_id}
            )
            if rng.random() < 0.15:
                out.append({**base, "event_id": self._id(), "type": "skip"})
                continue
            watch = int(duration * rng.uniform(0.05, 1.6))
            out.append(
                {
                    **base,
                    "event_id": self._id(),
                    "type": "play",
                    "watch_ms": watch,
                    "request_id": request_id,
                }
            )
            if rng.random() < 0.08:
                out.append({**base, "event_id": self._id(), "type": "like"})
        return out[: self.batch_size]

    def body(self) -> bytes:
        return orjson.dumps({"events": self.events()})

    def payload(self) -> dict[str, Any]:
        return {"events": self.events()}

    def rows(self) -> list[EventRow]:
        """The same events as the ingestor hands them to the store."""
        now = now_ms()
        return [
            {
                "event_id": e["event_id"],
                "user_id": e["user_id"],
                "video_id": e["video_id"],
                "creator_id": None,
                "sound_id": None,
                "hashtag": None,
                "type": e["type"],
                "ts_ms": to_ms(datetime.fromisoformat(e["ts"])),
                "received_ms": now,
                "watch_ms": e.get("watch_ms"),
                "request_id": e.get("request_id"),
                "extra": None,
            }
            for e in self.events()
        ]


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    events: int
    seconds: float
    latencies_ms: list[float]
    failed: int = 0
    server_cpu: float | None = None  # share of one core during the window
    client_cpu: float | None = None
    other_cpu: float | None = None  # every other process on the machine: should be ~0
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Series:
    backend: str
    path: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.rate for r in self.runs)

    def latency(self, q: float) -> float:
        return percentile([x for r in self.runs for x in r.latencies_ms], q)


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return math.nan
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def in_process(
    call: Callable[[Any], int], make: Callable[[], Any], batch: int, seconds: float, warmup: float
) -> Run:
    """One batch at a time; only the call is on the clock, the batch is made between calls."""
    busy = 0.0
    while busy < warmup:
        item = make()
        t = time.perf_counter()
        call(item)
        busy += time.perf_counter() - t
    busy, events, failed, lat = 0.0, 0, 0, []
    while busy < seconds:
        item = make()
        t = time.perf_counter()
        stored = call(item)
        d = time.perf_counter() - t
        busy += d
        lat.append(d * 1000)
        if stored == batch:
            events += stored
        else:
            failed += 1
    return Run(events, busy, lat, failed)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def busy_seconds() -> float:
    """CPU seconds all processes have used (every core), from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK  # minus idle and iowait


@dataclass
class Window:
    start: float  # perf_counter (CLOCK_MONOTONIC: the same clock in every process)
    warmup: float
    seconds: float

    @property
    def begin(self) -> float:
        return self.start + self.warmup

    @property
    def end(self) -> float:
        return self.begin + self.seconds


async def _drive(
    url: str, key: str, bodies: list[bytes], conns: int, win: Window, batch: int, pid: int
) -> dict[str, Any]:
    """Send ``bodies`` over ``conns`` keep-alive connections until the window closes."""
    done: list[tuple[float, float, bool]] = []
    queue = iter(bodies)
    exhausted = False
    cpu: dict[str, float] = {}
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60.0
    ) as client:

        async def worker() -> None:
            nonlocal exhausted
            while time.perf_counter() < win.end:
                body = next(queue, None)
                if body is None:
                    exhausted = True
                    return
                t = time.perf_counter()
                r = await client.post("/v1/events", content=body)
                ok = r.status_code == 200 and orjson.loads(r.content).get("stored") == batch
                done.append((time.perf_counter(), t, ok))

        async def sampler() -> None:
            for name, at in (("begin", win.begin), ("end", win.end)):
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                cpu[f"client_{name}"] = time.process_time()
                if pid:
                    cpu[f"server_{name}"] = cpu_seconds(pid)
                    cpu[f"all_{name}"] = busy_seconds()

        await asyncio.sleep(max(0.0, win.start - time.perf_counter()))
        await asyncio.gather(sampler(), *(worker() for _ in range(conns)))
    return {"done": done, "exhausted": exhausted, "cpu": cpu}


def _client_process(
    url: str, key: str, bodies: list[bytes], conns: int, win: Window, batch: int, out: Any
) -> None:
    out.put(asyncio.run(_drive(url, key, bodies, conns, win, batch, 0)))


def http_run(
    url: str,
    key: str,
    bodies: list[bytes],
    conns: int,
    clients: int,
    win: Window,
    batch: int,
    pid: int,
) -> Run:
    if clients == 1:
        results = [asyncio.run(_drive(url, key, bodies, conns, win, batch, pid))]
        cpu = results[0]["cpu"]
        server = (cpu["server_end"] - cpu["server_begin"]) / win.seconds
        client = (cpu["client_end"] - cpu["client_begin"]) / win.seconds
        total = (cpu["all_end"] - cpu["all_begin"]) / win.seconds
    else:
        ctx = mp.get_context("fork")
        out = ctx.Queue()
        procs = []
        for i in range(clients):
            share = conns // clients + (1 if i < conns % clients else 0)
            args = (url, key, bodies[i::clients], max(1, share), win, batch, out)
            procs.append(ctx.Process(target=_client_process, args=args, daemon=True))
        for p in procs:
            p.start()
        time.sleep(max(0.0, win.begin - time.perf_counter()))
        s0, a0 = cpu_seconds(pid), busy_seconds()
        c0 = sum(cpu_seconds(p.pid or 0) for p in procs)
        time.sleep(max(0.0, win.end - time.perf_counter()))
        s1, a1 = cpu_seconds(pid), busy_seconds()
        c1 = sum(cpu_seconds(p.pid or 0) for p in procs)
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
        server, client = (s1 - s0) / win.seconds, (c1 - c0) / win.seconds
        total = (a1 - a0) / win.seconds
    events, failed, lat = 0, 0, []
    last = win.begin
    for res in results:
        for finished, started, ok in res["done"]:
            if not win.begin <= finished <= win.end:
                continue
            if ok:
                events += batch
                lat.append((finished - started) * 1000)
                last = max(last, finished)
            else:
                failed += 1
    seconds, note = win.seconds, ""
    if any(r["exhausted"] for r in results):  # ran out of prepared bodies: rate over what ran
        seconds, note = max(1e-9, last - win.begin), "body pool ran out early"
    return Run(
        events, seconds, lat, failed, server, client, max(0.0, total - server - client), note
    )


# --------------------------------------------------------------------------------------------
# Databases and the server
# --------------------------------------------------------------------------------------------


@contextmanager
def database(name: str, pg_url: str, tmp: Path) -> Iterator[str]:
    if name == "sqlite":
        yield f"sqlite:///{tmp / 'fyp.db'}"
        return
    base = sa.make_url(pg_url)
    schema_name = f"fyp_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, connect_args={"connect_timeout": 3})
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema_name}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema_name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema_name}" CASCADE'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(database_url: str, var_dir: Path) -> Iterator[tuple[str, int]]:
    """``fyp serve`` with one uvicorn worker, ready; stopped with SIGTERM afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FYP_")}
    env |= {"FYP_DATABASE_URL": database_url, "FYP_VAR_DIR": str(var_dir)}
    fyp = Path(sys.executable).with_name("fyp")
    cmd = [str(fyp)] if fyp.exists() else [sys.executable, "-m", "fyp"]
    cmd += ["serve", "--host", HOST, "--port", str(port), "--no-access-log"]
    log_path = var_dir / "server.log"
    with log_path.open("wb") as log:
        # cwd: no stray .env file is read
        proc = subprocess.Popen(cmd, env=env, cwd=var_dir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"fyp serve exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"fyp serve not ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        yield url, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


# --------------------------------------------------------------------------------------------
# Where the time goes in one batch
# --------------------------------------------------------------------------------------------

_EVENT = TypeAdapter(EventIn)


def _asgi_post(app: Any, body: bytes, key: str) -> tuple[int, bytes]:
    """One POST /v1/events through the ASGI app in this process: no socket, no HTTP parsing."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": (HOST, 1),
        "server": (HOST, 80),
        "state": {},
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    async def call() -> None:
        await app(scope, receive, send)

    asyncio.run(call())
    return status, b"".join(chunks)


def breakdown(services: Services, traffic: Traffic, key: str, batches: int) -> dict[str, float]:
    """Median ms per batch of each step of POST /v1/events, done by hand in the same order."""
    store: Any = services.store
    horizon_s = services.settings.ingest.max_future_skew_s
    stages: dict[str, list[float]] = {}

    def clock(name: str, t: float) -> float:
        now = time.perf_counter()
        stages.setdefault(name, []).append((now - t) * 1000)
        return now

    writer = getattr(store, "_writer", None)
    insert = getattr(store, "_insert", None)
    for _ in range(batches):
        body = traffic.body()
        t = time.perf_counter()
        payload = orjson.loads(body)
        t = clock("orjson parse", t)
        horizon = now_ms() + int(horizon_s * 1000)
        valid, seen = [], set()
        for item in payload["events"]:
            ev = _EVENT.validate_python(item)
            if to_ms(ev.ts) <= horizon and ev.event_id not in seen:
                seen.add(ev.event_id)
                valid.append(ev)
        t = clock("validation (EventIn per event)", t)
        store.existing_user_ids({ev.user_id for ev in valid})
        t = clock("user look-up (IN ...)", t)
        store.video_briefs({ev.video_id for ev in valid if ev.video_id})
        t = clock("video look-up (IN ...)", t)
        now = now_ms()
        rows = [
            {
                "event_id": ev.event_id,
                "user_id": ev.user_id,
                "video_id": ev.video_id,
                "creator_id": ev.creator_id,
                "sound_id": ev.sound_id,
                "hashtag": ev.hashtag,
                "type": ev.type.value,
                "ts_ms": to_ms(ev.ts),
                "received_ms": now,
                "watch_ms": ev.watch_ms,
                "request_id": ev.request_id,
                "extra": ev.extra,
            }
            for ev in valid
        ]
        t = clock("build rows", t)
        if writer is None or insert is None:  # store internals moved: time the call whole
            store.append_events(rows)
            clock("append_events (INSERT + COMMIT)", t)
            continue
        stmt = (
            insert(schema.events)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(schema.events.c.event_id)
        )
        with writer.connect() as conn:
            tx = conn.begin()
            t = clock("writer connection + BEGIN", t)
            stored = list(conn.execute(stmt, rows).scalars())
            t = clock("INSERT .. ON CONFLICT .. RETURNING", t)
            tx.commit()
            t = clock("COMMIT (WAL write + fsync)", t)
        assert len(stored) == len(rows)
    out = {name: statistics.median(xs) for name, xs in stages.items()}
    out["= sum of steps"] = sum(out.values())

    ingest = []
    for _ in range(batches):
        payload = traffic.payload()
        t = time.perf_counter()
        services.ingestor.ingest(payload)
        ingest.append((time.perf_counter() - t) * 1000)
    out["ingestor.ingest (cross-check)"] = statistics.median(ingest)

    app = create_app(services.settings, services)
    asgi = []
    for _ in range(batches):
        body = traffic.body()
        t = time.perf_counter()
        status, _ = _asgi_post(app, body, key)
        asgi.append((time.perf_counter() - t) * 1000)
        assert status == 200, status
    out["ASGI app in-process (FastAPI, no socket)"] = statistics.median(asgi)
    return out


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass
class BackendResult:
    series: list[Series]
    breakdown: dict[str, float]
    rows: int

    def cpu(self, who: str) -> float:
        """Median share of one core used during the HTTP windows by server, client or other."""
        return statistics.median(getattr(r, f"{who}_cpu") or 0.0 for r in self.series[0].runs)


def bench_backend(name: str, args: argparse.Namespace, tmp: Path) -> BackendResult:
    var_dir = tmp / name
    var_dir.mkdir()
    if not args.plain:  # the server runs the compiled hot modules, built once for the repo
        from fyp.ops import compiled

        shared = compiled.build(ROOT / "var", say=lambda line: print(line, flush=True))
        (var_dir / "compiled").symlink_to(shared.parent, target_is_directory=True)
    with database(name, args.pg_url, var_dir) as db_url:
        settings = Settings(database_url=db_url, var_dir=var_dir)
        services = build_services(settings)
        try:
            services.store.migrate()
            world = seed(services, args.users, args.videos, random.Random(1))
            _, key = create_key(services.store, "app", "bench")
            batch = args.batch
            traffic = Traffic(world, batch, seed=len(name), ordered_ids=args.ordered_ids)
            append = Series(name, "store.append_events")
            ingest = Series(name, "ingestor.ingest")
            http = Series(name, f"HTTP, 1 worker, {args.concurrency} conns")
            print(
                f"[{name}] seeded {len(world.users)} users, {len(world.videos)} videos", flush=True
            )
            with server(db_url, var_dir) as (url, pid):

                def run_append() -> Run:
                    def call(rows: list[EventRow]) -> int:
                        return len(services.store.append_events(rows))

                    return in_process(call, traffic.rows, batch, args.seconds, args.warmup / 2)

                def run_ingest() -> Run:
                    def call(payload: dict[str, Any]) -> int:
                        return services.ingestor.ingest(payload).stored

                    return in_process(call, traffic.payload, batch, args.seconds, args.warmup / 2)

                def run_http() -> Run:
                    # Bodies for 1.5x the best rate seen so far, made before the window opens.
                    seen = [r.rate for s in (http, ingest, append) for r in s.runs]
                    need = 1.5 * max(seen, default=40_000) * (args.warmup + args.seconds)
                    bodies = [traffic.body() for _ in range(math.ceil(need / batch) + 8)]
                    win = Window(time.perf_counter() + 0.2, args.warmup, args.seconds)
                    conc, clients = args.concurrency, args.clients
                    return http_run(url, key, bodies, conc, clients, win, batch, pid)

                order = [(append, run_append), (ingest, run_ingest), (http, run_http)]
                for r in range(args.runs):
                    # Rotate the order so no path always meets the largest table.
                    for series, measure in order[r % 3 :] + order[: r % 3]:
                        series.runs.append(measure())
                    h = http.runs[-1]
                    print(
                        f"[{name}] run {r + 1}/{args.runs}: append {append.runs[-1].rate:,.0f}/s, "
                        f"ingest {ingest.runs[-1].rate:,.0f}/s, HTTP {h.rate:,.0f}/s "
                        f"(CPU: server {h.server_cpu or 0:.0%}, client {h.client_cpu or 0:.0%}, "
                        f"other processes {h.other_cpu or 0:.0%}"
                        f"{', failed ' + str(h.failed) if h.failed else ''}"
                        f"{', ' + h.note if h.note else ''})",
                        flush=True,
                    )
            parts = breakdown(services, traffic, key, args.breakdown) if args.breakdown else {}
            rows = services.store.count_events()
        finally:
            services.store.close()
    return BackendResult([http, ingest, append], parts, rows)


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return (
        f"{nproc} cores ({model}), Linux {platform.release()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def pg_version(url: str) -> str:
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            v = conn.execute(sa.text("SHOW server_version")).scalar()
            sync = conn.execute(sa.text("SHOW synchronous_commit")).scalar()
        engine.dispose()
        return f"PostgreSQL {v} (synchronous_commit={sync})"
    except sa.exc.SQLAlchemyError as e:
        return f"PostgreSQL unreachable ({type(e).__name__})"


def report(results: dict[str, BackendResult], args: argparse.Namespace) -> None:
    print()
    print(f"machine: {machine()}")
    if "postgres" in results:
        print(f"postgres: {pg_version(args.pg_url)}")
    print(
        f"workload: batches of {args.batch} events (impression/play+watch_ms/skip/like, "
        f"{'time-ordered' if args.ordered_ids else 'random 128-bit'} event ids), "
        f"{args.users:,} users, {args.videos:,} videos; {args.seconds:g} s measured after "
        f"{args.warmup:g} s warm-up, median of {args.runs} runs; HTTP: {args.concurrency} "
        f"connections from {args.clients} client process(es)"
    )
    print()
    print(f"| backend | path | events/s (median) | min{DASH}max | batch p50 ms | batch p99 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for res in results.values():
        for s in res.series:
            rates = [r.rate for r in s.runs]
            print(
                f"| {s.backend} | {s.path} | {s.median:,.0f} "
                f"| {min(rates):,.0f}{DASH}{max(rates):,.0f} "
                f"| {s.latency(0.5):.1f} | {s.latency(0.99):.1f} |"
            )
    print()
    for name, res in results.items():
        http, ingest, append = res.series
        print(
            f"{name}: HTTP / ingestor.ingest = {http.median / ingest.median:.2f}, "
            f"HTTP / append_events = {http.median / append.median:.2f}; during the HTTP window "
            f"the server used {res.cpu('server'):.0%} of a core, the client {res.cpu('client'):.0%}"
            f", other processes {res.cpu('other'):.0%}"
            f"{' (the PostgreSQL server among them)' if name == 'postgres' else ''}; "
            f"{res.rows:,} events stored; "
            f"failed batches: {sum(r.failed for s in res.series for r in s.runs)}"
        )
    for name, res in results.items():
        if not res.breakdown:
            continue
        http = res.series[0]
        per_batch = 1000 * args.batch / http.median if http.median else math.nan
        print()
        print(f"{name}: one {args.batch}-event batch, step by step (median of {args.breakdown})")
        print()
        print("| step | ms per batch |")
        print("|---|---:|")
        for step, ms in res.breakdown.items():
            print(f"| {step} | {ms:.2f} |")
        print(f"| server time per batch at the HTTP median (1 / throughput) | {per_batch:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before each run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=4, help="HTTP connections in all")
    p.add_argument("--clients", type=int, default=1, help="client processes for HTTP")
    p.add_argument("--users", type=int, default=2_000)
    p.add_argument("--videos", type=int, default=5_000)
    p.add_argument("--ordered-ids", action="store_true", help="time-ordered event ids (UUIDv7)")
    p.add_argument("--breakdown", type=int, default=40, help="batches timed step by step; 0: off")
    p.add_argument(
        "--plain",
        action="store_true",
        help="the HTTP server runs the plain modules (default: the compiled ones, fyp compile)",
    )
    p.add_argument("--pg-url", default=os.environ.get("FYP_BENCH_POSTGRES", PG_DEFAULT))
    args = p.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgres"}
    if unknown:
        p.error(f"unknown backends: {', '.join(sorted(unknown))}")

    a0 = busy_seconds()
    time.sleep(1.0)
    if (idle_load := busy_seconds() - a0) > 0.15:
        print(
            f"warning: other processes use {idle_load:.0%} of a core before the benchmark "
            "starts; the figures will be low",
            file=sys.stderr,
        )
    started = time.monotonic()
    results: dict[str, BackendResult] = {}
    tmp = Path(tempfile.mkdtemp(prefix="fyp-bench-"))
    try:
        for name in backends:
            try:
                results[name] = bench_backend(name, args, tmp)
            except sa.exc.OperationalError as e:
                print(f"[{name}] skipped: database unreachable: {e.orig}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args)
    print(f"\n(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
