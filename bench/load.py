"""Mixed load: feeds and event batches against ``fyp serve`` with 1, 2 and 4 workers on
PostgreSQL + Redis, and the embedded default (SQLite + in-process online state, one worker), in
one run.

Each virtual user loops like an app does: ``GET /v1/users/{u}/feed?count=10``, then one
``POST /v1/events`` with what the app reports for that page: an impression per item, then a play
(with watch time; ~70% of items) or a skip, and a like on ~8% of them, all carrying the page's
``request_id``: one feed to one batch of ~20 events. Users are drawn from a pool, so pages
continue a user's feed (never-repeat, seen sets and recent interests all grow) and the
catalog's trending state follows the traffic.

Per configuration: a fresh store (SQLite file, or a PostgreSQL schema) and Redis key prefix,
seeded with ``--users`` users and ``--videos`` videos; the server is started, ``--warmup``
seconds of traffic are sent and discarded, then ``--seconds`` are measured. Reported: feeds/s,
events stored/s, p50/p99 latency of feeds and of batches, non-200 answers, feeds that fell back,
and the CPU of the server's processes. Client and server share this machine's cores: the client's
CPU is reported too. There is no trained model in these stores (the model-backed sources are
idle); the feed runs the rest of its pipeline (trending, affinity, fresh, following, filters,
scoring, diversity).

    .venv/bin/python bench/load.py [--seconds 15] [--warmup 3] [--concurrency 32]
        [--configs embedded,pg1,pg2,pg4] [--users 5000] [--videos 5000]

Everything is on 127.0.0.1; servers are stopped with SIGTERM, schemas, files and keys removed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import sqlalchemy as sa

from fyp.auth import create_key
from fyp.models import User, VideoIn
from fyp.storage.data import open_data_store

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = 10


@dataclass(frozen=True)
class Config:
    name: str
    label: str
    workers: int
    store: str  # "sqlite" or "postgres"
    online: str  # "memory" or "redis"


CONFIGS = {
    "embedded": Config(
        "embedded", "embedded: SQLite + in-process state, 1 worker", 1, "sqlite", "memory"
    ),
    "pg1": Config("pg1", "PostgreSQL + Redis, 1 worker", 1, "postgres", "redis"),
    "pg2": Config("pg2", "PostgreSQL + Redis, 2 workers", 2, "postgres", "redis"),
    "pg4": Config("pg4", "PostgreSQL + Redis, 4 workers", 4, "postgres", "redis"),
}


# -- world ---------------------------------------------------------------------------------------


def seed(url: str, n_users: int, n_videos: int, rng: random.Random) -> str:
    """Users, creators (one per 20 videos) and videos over 30 days; returns an app key."""
    store = open_data_store(url)
    store.migrate()
    n_creators = max(1, n_videos // 20)
    regions = ["US", "GB", "DE", "BR", "IN"]
    users = [User(id=f"c{i}", region=rng.choice(regions)) for i in range(n_creators)]
    users += [User(id=f"u{i}", region=rng.choice(regions), language="en") for i in range(n_users)]
    for i in range(0, len(users), 1000):
        store.upsert_users(users[i : i + 1000])
    now = datetime.now(UTC)
    tags = [f"t{i}" for i in range(60)]
    videos = [
        VideoIn(
            id=f"v{i}",
            creator_id=f"c{i % n_creators}",
            hashtags=rng.sample(tags, 2),
            sound_id=f"s{rng.randrange(300)}",
            duration_ms=rng.randrange(5_000, 60_000),
            region=rng.choice(regions),
            language="en",
            created_at=now - timedelta(minutes=rng.randrange(30 * 24 * 60)),
        )
        for i in range(n_videos)
    ]
    for i in range(0, len(videos), 1000):
        store.upsert_videos(videos[i : i + 1000], "approved")
    _, key = create_key(store, "app", "load bench")
    store.close()
    return key


@contextmanager
def database(kind: str, pg_url: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'fyp.db'}"
        return
    base = sa.make_url(pg_url)
    schema_name = f"fyp_load_{uuid.uuid4().hex[:10]}"
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


@contextmanager
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"fypload:{uuid.uuid4().hex[:10]}:"
    client = redis.Redis.from_url(redis_url)
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=5000))
        for i in range(0, len(keys), 5000):
            client.delete(*keys[i : i + 5000])
        client.close()


# -- server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn's workers, the multiprocessing helper)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        kids = [p for p, pp in parents.items() if pp in frontier]
        tree += kids
        frontier = kids
    return tree


@contextmanager
def server(
    cfg: Config,
    database_url: str,
    redis_url: str,
    prefix: str,
    var: Path,
    ready_timeout_s: float = 90.0,
    settings: dict[str, str] | None = None,
) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FYP_")}
    env |= {
        "FYP_DATABASE_URL": database_url,
        "FYP_VAR_DIR": str(var),
        "FYP_ONLINE__BACKEND": cfg.online,
        "FYP_ONLINE__REDIS_URL": redis_url,
        "FYP_ONLINE__KEY_PREFIX": prefix,
        "FYP_SERVER__LOG_LEVEL": "WARNING",
        **(settings or {}),
    }
    cmd = [sys.executable, "-m", "fyp", "serve", "--host", HOST, "--port", str(port)]
    cmd += ["--workers", str(cfg.workers), "--no-access-log"]
    log_path = var / "server.log"
    var.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=var, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"fyp serve exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                    # every worker answers: the listening socket is shared, so a few readyz on
                    # new connections do not prove it; give late workers their start-up time
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"fyp serve not ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def wait_for_workers(pid: int, workers: int, timeout: float = 90) -> None:
    """Until ``workers`` worker processes exist and have finished importing (CPU settles)."""
    if workers == 1:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = [p for p in process_tree(pid) if p != pid]
        # uvicorn's parent also runs multiprocessing's resource tracker: workers + 1 children
        if len(kids) >= workers:
            before = sum(cpu_seconds(p) for p in kids)
            time.sleep(1.0)
            if sum(cpu_seconds(p) for p in kids) - before < 0.3:
                return
        else:
            time.sleep(0.2)


# -- traffic -------------------------------------------------------------------------------------


@dataclass
class Tally:
    feed_lat: list[float] = field(default_factory=list)
    batch_lat: list[float] = field(default_factory=list)
    events_stored: int = 0
    fallbacks: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def page_events(
    user: str, body: dict[str, Any], rng: random.Random, now: str
) -> list[dict[str, Any]]:
    rid = body["request_id"]
    out: list[dict[str, Any]] = []
    for it in body["items"]:
        vid = it["video"]["id"]
        dur = it["video"].get("duration_ms") or 15_000
        base = {"user_id": user, "video_id": vid, "request_id": rid, "ts": now}
        out.append({"event_id": uuid.uuid4().hex, "type": "impression", **base})
        if rng.random() < 0.7:
            watch = int(dur * min(2.0, rng.expovariate(1.6)))
            out.append({"event_id": uuid.uuid4().hex, "type": "play", "watch_ms": watch, **base})
            if rng.random() < 0.11:
                out.append({"event_id": uuid.uuid4().hex, "type": "like", **base})
        else:
            out.append({"event_id": uuid.uuid4().hex, "type": "skip", **base})
    return out


async def drive(
    url: str, key: str, n_users: int, conc: int, warmup: float, seconds: float, seed: int
) -> tuple[Tally, float, float]:
    tally = Tally()
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    start = time.perf_counter()
    begin, end = start + warmup, start + warmup + seconds

    def err(kind: str, status: int) -> None:
        if time.perf_counter() >= begin:
            name = f"{kind} {status}"
            tally.errors[name] = tally.errors.get(name, 0) + 1

    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30
    ) as client:

        async def user_loop(i: int) -> None:
            rng = random.Random(seed * 1000 + i)
            while time.perf_counter() < end:
                user = f"u{rng.randrange(n_users)}"
                t = time.perf_counter()
                try:
                    r = await client.get(f"/v1/users/{user}/feed", params={"count": PAGE})
                except httpx.HTTPError:
                    err("feed", 0)
                    continue
                t_feed = time.perf_counter()
                if r.status_code != 200:
                    err("feed", r.status_code)
                    await asyncio.sleep(0.05)
                    continue
                body = orjson.loads(r.content)
                if t >= begin and t_feed <= end:
                    tally.feed_lat.append(t_feed - t)
                    tally.fallbacks += body.get("fallback") is not None
                events = page_events(user, body, rng, datetime.now(UTC).isoformat())
                if not events:
                    continue
                t = time.perf_counter()
                try:
                    r = await client.post("/v1/events", content=orjson.dumps({"events": events}))
                except httpx.HTTPError:
                    err("events", 0)
                    continue
                t_done = time.perf_counter()
                if r.status_code != 200:
                    err("events", r.status_code)
                    await asyncio.sleep(0.05)
                    continue
                if t >= begin and t_done <= end:
                    tally.batch_lat.append(t_done - t)
                    tally.events_stored += orjson.loads(r.content)["stored"]

        cpu0 = time.process_time()
        await asyncio.gather(*(user_loop(i) for i in range(conc)))
        client_cpu = time.process_time() - cpu0
    return tally, client_cpu, time.perf_counter() - start


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


@dataclass
class Result:
    cfg: Config
    feeds_s: float
    events_s: float
    batches_s: float
    feed_p50: float
    feed_p99: float
    batch_p50: float
    batch_p99: float
    fallback_share: float
    errors: dict[str, int]
    server_cpu: float  # cores busy on average over the measured window
    client_cpu: float
    load_before: float


def run_config(cfg: Config, args: argparse.Namespace, tmp: Path) -> Result:
    rng = random.Random(args.seed)
    load_before = os.getloadavg()[0]
    with database(cfg.store, args.pg, tmp / cfg.name) as url, redis_prefix(args.redis) as prefix:
        (tmp / cfg.name).mkdir(parents=True, exist_ok=True)
        key = seed(url, args.users, args.videos, rng)
        with server(cfg, url, args.redis, prefix, tmp / cfg.name / "var") as (base, pid):
            wait_for_workers(pid, cfg.workers)
            pids = process_tree(pid)
            cpu0 = sum(cpu_seconds(p) for p in pids)
            t0 = time.perf_counter()
            tally, client_cpu, elapsed = asyncio.run(
                drive(base, key, args.users, args.concurrency, args.warmup, args.seconds, args.seed)
            )
            server_cpu = (sum(cpu_seconds(p) for p in pids) - cpu0) / (time.perf_counter() - t0)
    s = args.seconds
    return Result(
        cfg=cfg,
        feeds_s=len(tally.feed_lat) / s,
        events_s=tally.events_stored / s,
        batches_s=len(tally.batch_lat) / s,
        feed_p50=pct(tally.feed_lat, 0.50) * 1000,
        feed_p99=pct(tally.feed_lat, 0.99) * 1000,
        batch_p50=pct(tally.batch_lat, 0.50) * 1000,
        batch_p99=pct(tally.batch_lat, 0.99) * 1000,
        fallback_share=tally.fallbacks / max(1, len(tally.feed_lat)),
        errors=tally.errors,
        server_cpu=server_cpu,
        client_cpu=client_cpu / elapsed,
        load_before=load_before,
    )


def table(results: list[Result]) -> str:
    head = (
        "| configuration | feeds/s | events stored/s | feed p50 / p99 ms | batch p50 / p99 ms "
        "| non-200 | fallback feeds | server CPU (cores) | client CPU | load avg before |\n"
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|\n"
    )
    rows = []
    for r in results:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(r.errors.items())) or "0"
        rows.append(
            f"| {r.cfg.label} | {r.feeds_s:,.0f} | {r.events_s:,.0f} "
            f"| {r.feed_p50:.0f} / {r.feed_p99:.0f} | {r.batch_p50:.0f} / {r.batch_p99:.0f} "
            f"| {errors} | {r.fallback_share:.1%} | {r.server_cpu:.2f} | {r.client_cpu:.2f} "
            f"| {r.load_before:.2f} |"
        )
    return head + "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=32, help="virtual users at once")
    p.add_argument("--configs", default="embedded,pg1,pg2,pg4")
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--videos", type=int, default=5000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--pg", default=os.environ.get("FYP_BENCH_POSTGRES", PG_DEFAULT))
    p.add_argument("--redis", default=os.environ.get("FYP_BENCH_REDIS", REDIS_DEFAULT))
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    configs = [CONFIGS[c.strip()] for c in args.configs.split(",") if c.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="fyp-load-"))
    results: list[Result] = []
    try:
        for cfg in configs:
            print(f"running {cfg.label} ...", file=sys.stderr, flush=True)
            results.append(run_config(cfg, args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{platform.node()}: {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"{args.concurrency} virtual users, {args.warmup:g}s warm-up + {args.seconds:g}s "
        f"measured per configuration; {args.users:,} users, {args.videos:,} videos\n"
    )
    print(table(results))
    if args.json:
        args.json.write_bytes(
            orjson.dumps(
                [{**r.__dict__, "cfg": r.cfg.__dict__} for r in results], option=orjson.OPT_INDENT_2
            )
        )


if __name__ == "__main__":
    main()
