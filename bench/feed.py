"""Feed latency and throughput on a synthetic world at scale: by default 1,000,000 videos,
100,000 users and 10,000,000 events (``fyp.simulator.world``: creators with power-law
popularity, hashtags and sounds shared across videos, users with latent interests).

Stages, each timed and recorded in ``<world>/world.json``:

1. Generate the world and load it into a fresh SQLite store (the embedded default): users and
   videos through the store's bulk upserts, the first ``--api-events`` events through
   ``store.append_events`` (batches of 1,000, as an importer sends them) for its rate, and the
   rest by a direct bulk insert into the store's ``events`` table (executemany, 500,000 rows a
   transaction, ``synchronous=OFF`` and a 1 GiB page cache while loading), which is faster. The
   world's present is the build time: events fall in the ``--days`` before it. Video records
   are then dated at their upload (``--catalog-times upload``), as in a store that grew over
   months; ``--catalog-times load`` keeps the load's minute, which makes the feed's catalog
   index rebuild itself from the whole catalog on every refresh (see
   ``date_catalog_at_upload``).
2. ``fyp train --no-evaluate`` in its own process (``--factors`` factors, ``--train-threads``
   threads, ``--index-kind``): each step's time and the process's peak RSS after it.
   The log has no served rows for outcomes, so that trains no ranker. A deployment with
   traffic has one, scoring every capped candidate, so the bench attaches one: it feeds
   ``--ranker-users`` random cold users in-process, draws each action's outcome from the
   heuristic's own probability, trains ``fyp.training.ranker`` on those rows and saves it, its
   trees compiled, into the active version (``--no-ranker`` serves without it).
3. ``fyp serve`` with 1 and 2 workers (``--workers``) on the world's store and models, online
   state in-process (or Redis: ``--online redis``); the store and model files are read once
   first so the servers find them in the page cache. ``GET /v1/users/{u}/feed?count=10`` for
   random users from 1 and 16 concurrent keep-alive clients (``--clients``; each asks for
   ``--pages`` consecutive pages of a user, following the cursor, before drawing the next: 1 by
   default, which makes nearly every request a user's first since the server started, rebuilt
   from the log), ``--warmup`` seconds discarded then ``--seconds`` measured: feeds/s,
   p50/p90/p99/max latency, non-200s, feeds that fell back, CPU of server and client (they
   share the cores), and the server's peak memory over the window: RSS and PSS summed over its
   process tree
   (``/proc/<pid>/smaps_rollup``; RSS counts a page shared by the workers, such as a mapped
   model file, once per process, PSS splits it between them). The server's own stage timings
   (its ``/metrics`` histograms, mean per feed over the window) show where a request's time
   goes. The served log is emptied before each server starts, so every configuration sees the
   same world. The servers run the feed's hot modules compiled (``fyp compile``, built into
   the world's ``var`` first, about a minute the first time); ``--plain`` serves the plain
   modules instead.

The world and its models are cached in ``--world`` (default ``var/bench-feed/<parameters>``):
running the same command again only measures (after a change to the feed, re-run it);
``--rebuild`` starts over (do it after changing the generator). ``--profile N`` adds where the
time of N feeds goes in-process (ASGI app without HTTP, ``--profile-clients`` at once): CPU per
feed, the cyclic GC's pauses, and a cProfile.

    .venv/bin/python bench/feed.py [--videos 1000000] [--users 100000] [--events 10000000]
        [--world DIR] [--rebuild] [--seconds 20] [--warmup 5] [--clients 1,16] [--workers 1,2]
        [--pages 1] [--online memory|redis] [--profile 300 [--profile-clients 16]] [--json FILE]

A small world for development (about 2 minutes): ``--videos 20000 --users 2000 --events
200000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import multiprocessing as mp
import os
import platform
import pstats
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fyp.auth import create_key
from fyp.ops import interpreter
from fyp.simulator.world import World, WorldSpec, ids
from fyp.storage.data import open_data_store
from fyp.types import now_ms
from load import (
    REDIS_DEFAULT,
    Config,
    cpu_seconds,
    pct,
    process_tree,
    redis_prefix,
    server,
    wait_for_workers,
)

ROOT = Path(__file__).resolve().parent.parent
PAGE = 10
FEED_ROUTE = "/v1/users/{user_id}/feed"
console = Console(stderr=True)


def progress_bar() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


# -- the world: generate, load, train ------------------------------------------------------------


def world_key(spec: WorldSpec, factors: int, index_kind: str) -> str:
    key = f"v{spec.videos}-u{spec.users}-e{spec.events}-d{spec.days:g}-s{spec.seed}-f{factors}"
    return key if index_kind == "auto" else f"{key}-{index_kind}"


def db_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'fyp.db'}"


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "world.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def active_version(folder: Path) -> Path:
    """The folder of the world's active model version."""
    models = folder / "var" / "models"
    return models / (models / "ACTIVE").read_text().strip()


def trained_world(folder: Path | None) -> tuple[Path, dict[str, Any]]:
    """``folder`` (default: the default world's) and its metadata, once ``bench/feed.py`` has
    built and trained it; else exits saying so (for the scripts that reuse its world)."""
    folder = (folder or ROOT / "var" / "bench-feed" / world_key(WorldSpec(), 64, "auto")).resolve()
    meta = read_meta(folder)
    if "key" not in meta or "train" not in meta:
        sys.exit(f"no trained world in {folder}: run bench/feed.py --no-serve first")
    return folder, meta


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    tmp = folder / "world.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(folder / "world.json")


@dataclass
class Clock:
    """Time spent inside an iterator's ``next``: the generator's share of a streamed load."""

    seconds: float = 0.0

    def wrap(self, it: Iterator[Any]) -> Iterator[Any]:
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.seconds += time.perf_counter() - t
                return
            self.seconds += time.perf_counter() - t
            yield item


def rate(rows: int, seconds: float) -> dict[str, float]:
    return {"rows": rows, "seconds": round(seconds, 2), "per_s": round(rows / max(seconds, 1e-9))}


def date_catalog_at_upload(db: Path) -> float:
    """Date every video record at its upload (``updated_ms = created_ms``), as in a store that
    grew over months, instead of the minute the bench loaded a million of them in. Returns the
    seconds it took.

    With every record changed within the last minute, the feed's catalog index
    (``fyp.pipeline.catalog_index``) re-reads its 60 s overlap window on each refresh, finds
    more than 5,000 changes and rebuilds from the whole catalog, again and again (25 s a
    rebuild at a million videos, on every worker); ``--catalog-times load`` keeps those dates.
    """
    t = time.perf_counter()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("UPDATE videos SET updated_ms = created_ms")
    con.close()
    return time.perf_counter() - t


def build_world(folder: Path, spec: WorldSpec, api_events: int) -> dict[str, Any]:
    """Generate the world into a fresh SQLite store; returns what it measured."""
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    world = World(spec, now_ms())
    gen = Clock(time.perf_counter() - t0)
    store = open_data_store(db_url(folder))
    store.migrate()
    load: dict[str, Any] = {}
    with progress_bar() as bar:
        task = bar.add_task("users", total=len(world.creator_ids) + len(world.user_ids))
        t, n, g0 = time.perf_counter(), 0, gen.seconds
        for batch in gen.wrap(world.users()):
            n += store.upsert_users(batch)
            bar.advance(task, len(batch))
        load["users"] = rate(n, time.perf_counter() - t - (gen.seconds - g0))
        g0 = gen.seconds
        task = bar.add_task("videos", total=spec.videos)
        t, n = time.perf_counter(), 0
        for vbatch in gen.wrap(world.videos()):
            n += store.upsert_videos(vbatch, "approved")
            bar.advance(task, len(vbatch))
        load["videos"] = rate(n, time.perf_counter() - t - (gen.seconds - g0))
        _, key = create_key(store, "app", "feed bench")
        store.close()

        chunks = gen.wrap(world.events())
        head = min(api_events, spec.events)
        rows: list[Any] = []
        while len(rows) < head and (chunk := next(chunks, None)) is not None:
            rows += world.event_rows(chunk)
        if head:
            task = bar.add_task("events: store.append_events", total=head)
            store = open_data_store(db_url(folder))
            t = time.perf_counter()
            for i in range(0, head, 1000):
                store.append_events(rows[i : min(i + 1000, head)])
                bar.advance(task, min(1000, head - i))
            load["events_store_api"] = rate(head, time.perf_counter() - t)
            store.close()
        rest = iter([rows[head:]] if len(rows) > head else [])
        task = bar.add_task("events: bulk insert", total=spec.events - head)
        n, spent = bulk_insert_events(folder / "fyp.db", world, rest, chunks, bar, task)
        load["events_bulk"] = rate(n, spent)
    load["db_mb"] = round((folder / "fyp.db").stat().st_size / 2**20)
    return {"now_ms": world.now_ms, "generate_s": round(gen.seconds, 1), "load": load, "key": key}


EVENT_COLUMNS = (
    "event_id",
    "user_id",
    "video_id",
    "creator_id",
    "sound_id",
    "hashtag",
    "type",
    "ts_ms",
    "received_ms",
    "watch_ms",
    "request_id",
    "extra",
)


def bulk_insert_events(
    db: Path,
    world: World,
    first_rows: Iterator[list[Any]],
    chunks: Iterator[Any],
    bar: Progress,
    task: Any,
    per_commit: int = 500_000,
) -> tuple[int, float]:
    """Events straight into the store's table, many per transaction. Returns (rows, seconds of
    row building and inserting, generation excluded)."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")  # a crash mid-load means --rebuild; no fsync per commit
    con.execute("PRAGMA cache_size=-1048576")  # 1 GiB: the (user, ts) index stays in memory
    sql = (
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
        f"VALUES ({', '.join(':' + c for c in EVENT_COLUMNS)})"
    )
    n, spent, pending = 0, 0.0, 0

    def batches() -> Iterator[list[Any]]:
        yield from first_rows
        for chunk in chunks:
            t = time.perf_counter()
            rows = world.event_rows(chunk)
            nonlocal spent
            spent += time.perf_counter() - t
            yield rows

    con.execute("BEGIN")
    for rows in batches():
        t = time.perf_counter()
        con.executemany(sql, rows)
        n += len(rows)
        pending += len(rows)
        if pending >= per_commit:
            con.execute("COMMIT")
            con.execute("BEGIN")
            pending = 0
        spent += time.perf_counter() - t
        bar.advance(task, len(rows))
    t = time.perf_counter()
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    spent += time.perf_counter() - t
    con.close()
    return n, spent


def _child(fn: Callable[..., Any], args: tuple[Any, ...], out: Any) -> None:
    out.send(fn(*args))


def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a fresh process: what it allocates is gone when it returns, so the
    processes this one starts later (the trainer, the servers) do not inherit a large peak
    RSS (Linux carries the parent's peak into a child's ``ru_maxrss`` across exec)."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, send))
    proc.start()
    send.close()
    try:
        result: dict[str, Any] = recv.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"{fn.__name__} failed in its process (exit {proc.exitcode})") from None
    proc.join()
    return result


def train_env(folder: Path, factors: int, threads: int, index_kind: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FYP_")}
    return env | {
        "FYP_DATABASE_URL": db_url(folder),
        "FYP_VAR_DIR": str(folder / "var"),
        "FYP_TRAINING__EVALUATE": "false",
        "FYP_TRAINING__EMBEDDING__FACTORS": str(factors),
        "FYP_TRAINING__THREADS": str(threads),
        "FYP_TRAINING__INDEX_KIND": index_kind,
    }


def train(folder: Path, factors: int, threads: int, index_kind: str) -> dict[str, Any]:
    """``fyp train --no-evaluate`` in its own process (its peak RSS is training's alone)."""
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "fyp", "train", "--no-evaluate"]
    env = train_env(folder, factors, threads, index_kind)
    subprocess.run(cmd, env=env, cwd=folder, check=True)
    wall = time.perf_counter() - t
    version = active_version(folder)
    m = json.loads((version / "manifest.json").read_text())
    return {
        "wall_s": round(wall, 1),
        "version": version.name,
        "timings_s": m["timings_s"],
        "peak_memory_mb": m["peak_memory_mb"],
        "peak_memory_mb_by_step": m.get("peak_memory_mb_by_step", {}),
        "index": m["index"],
        "counts": {k: v for k, v in m["counts"].items() if k != "events_by_type"},
        "factors": m["embedding"]["factors"],
        "threads": threads,
    }


# -- a ranker, as a deployment with traffic has ------------------------------------------------

# The world's log has no served rows to join outcomes to, so ``fyp train`` trains no ranker on
# it and its feeds would be scored by the heuristic alone. A deployment with traffic scores the
# capped candidates with one model per action; the bench trains one on the world's own features.
RANKER_USERS = 1500
KEEP_EVERY = 3  # of a request's scored candidates, for the training rows


async def fit_ranker(service: Any, online: Any, users: list[str], n_users: int, seed: int) -> Any:
    """A ranker trained on the features of ``n_users`` random cold users' feeds (every third
    scored candidate, the rows the served log would hold), each action's outcome drawn from the
    heuristic's own probability for it: a smooth function of the real features, with as many
    trees as early stopping keeps (``fyp.training.ranker.train``, default settings). Returns
    ``(ranker, data)``, or exits when no action had enough positives."""
    import numpy as np

    from fyp.pipeline.candidate import matrix_of
    from fyp.pipeline.runner import run_pipeline
    from fyp.training.ranker import ACTIONS, RankerData
    from fyp.training.ranker import train as train_ranker

    rng = random.Random(seed)
    draw = np.random.default_rng(seed)
    rows: list[dict[str, float]] = []
    labels: dict[str, list[bool]] = {a: [] for a in ACTIONS}
    when: list[int] = []
    with progress_bar() as bar:
        task = bar.add_task("ranker rows: feeds", total=n_users)
        for i in range(n_users):
            user = users[rng.randrange(len(users))]
            online.forget_user(user)
            query = service.build_query(user, PAGE, None)
            result = await run_pipeline(service.pipeline, query, query.count)
            for c in result.scored[::KEEP_EVERY]:
                rows.append(dict(c.features.items()))
                for a in ACTIONS:
                    labels[a].append(bool(draw.random() < c.predictions.get(a, 0.0)))
                when.append(query.now_ms + i)
            bar.advance(task)
    names = sorted({n for r in rows for n in r})
    data = RankerData(
        names,
        matrix_of(rows, names),
        {a: np.array(labels[a], dtype=np.int8) for a in ACTIONS},
        np.array(when, dtype=np.int64),
    )
    ranker = train_ranker(data)
    if ranker is None:
        raise SystemExit("no action had enough positive outcomes to train a ranker on")
    return ranker, data


def attach_ranker(folder: Path, n_users: int, seed: int) -> dict[str, Any]:
    """Trains ``fit_ranker``'s ranker and saves it into the world's active model version, its
    trees compiled as ``fyp train`` compiles them (``training.native_ranker``), so the servers
    load it as they load a trained one. Returns what it measured."""
    from fyp.config import TrainingSettings

    app = in_process_app(folder)
    users = ids("u", read_meta(folder)["spec"]["users"])
    version = active_version(folder)

    async def run() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            services = app.state.services
            models = services.feed.clients.models.current()
            if models is None:
                raise SystemExit(f"no active models in {folder}")
            if models.ranker is not None:
                return {"source": "fyp train", "actions": models.ranker.actions}
            t = time.perf_counter()
            ranker, data = await fit_ranker(services.feed, services.online, users, n_users, seed)
            fitted = time.perf_counter() - t
            ranker.build_native = TrainingSettings().native_ranker
            tmp = version / "ranker.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            t = time.perf_counter()
            ranker.save(tmp)
            tmp.rename(version / "ranker")  # whole, or not at all
            return {
                "source": "bench",
                "users": n_users,
                "rows": data.rows,
                "features": len(data.feature_names),
                "trees": {a: b.num_trees() for a, b in ranker.boosters.items()},
                "fit_s": round(fitted, 1),
                "save_s": round(time.perf_counter() - t, 1),
                "native": (version / "ranker" / "native.json").exists(),
            }

    return asyncio.run(run())


@contextlib.contextmanager
def bench_ranker_aside(folder: Path, meta: dict[str, Any], aside: bool) -> Iterator[None]:
    """With ``aside``, the ranker ``attach_ranker`` saved is moved out of the active version for
    the block (and back after it), so the servers score with the heuristic alone."""
    if meta.get("ranker", {}).get("source") != "bench":
        yield
        return
    version = active_version(folder)
    if (version / "ranker.aside").exists() and not (version / "ranker").exists():
        (version / "ranker.aside").rename(version / "ranker")  # a killed run's
    if not aside:
        yield
        return
    (version / "ranker").rename(version / "ranker.aside")
    try:
        yield
    finally:
        (version / "ranker.aside").rename(version / "ranker")


# -- serving --------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    fallbacks: Counter[str] = field(default_factory=Counter)
    items: int = 0


STAGGER_S = 0.05  # between clients' first requests, so the workers share the connections


class Connection:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads ``Content-Length`` bodies,
    on asyncio streams: the client shares the two cores with the server, and httpx spent about
    1.7 ms of CPU a request (0.23 of a core at 130 feeds/s), which the server then lacked; this
    costs a small fraction of that (see the client CPU column)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = httpx.URL(url)
        self.host, self.port = parts.host, parts.port or 80
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.head = f"Host: {self.host}:{self.port}\r\n{extra}\r\n".encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        try:
            writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.head)
            head = await reader.readuntil(b"\r\n\r\n")
            found = _LENGTH.search(head)
            if found is None:
                raise OSError(f"no Content-Length in {head[:200]!r}")
            body = await reader.readexactly(int(found.group(1)))
        except _BROKEN:
            await self.close()
            raise
        return int(head[9:12]), body

    async def close(self) -> None:
        if self.streams is not None:
            writer = self.streams[1]
            self.streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")
# what a broken or cut connection raises: the client reconnects and counts the request as failed
_BROKEN = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)


async def drive(
    url: str,
    key: str,
    users: list[str],
    clients: int,
    warmup: float,
    seconds: float,
    seed: int,
    at_begin: Callable[[], object],
    at_end: Callable[[], object],
    pages: int = 1,
) -> tuple[Tally, float, float]:
    """``clients`` keep-alive loops of feed requests for random users: ``warmup`` seconds, then
    ``seconds`` measured (``at_begin`` and ``at_end`` run at its edges). Returns the tally of
    the measured window, its length and this process's CPU seconds in it.

    Each client asks for ``pages`` consecutive pages of one user (following the response's
    cursor, as an app scrolling a session does) before drawing the next user; with one page,
    nearly every request is for a user the server has not seen since it started, whose online
    state it rebuilds from the log first.

    Clients start ``STAGGER_S`` apart: connections opened in one burst all land in whichever
    worker accepts first (it takes the whole burst), and the other worker idles.
    """
    tally = Tally()
    headers = {"authorization": f"Bearer {key}"}
    start = time.perf_counter()
    begin = start + max(warmup, clients * STAGGER_S)
    end = begin + seconds
    window: dict[str, float] = {}

    async def loop(i: int) -> None:
        await asyncio.sleep(i * STAGGER_S)
        rng = random.Random(seed * 1000 + i)
        conn = Connection(url, headers)
        user, cursor, left = "", "", 0
        while time.perf_counter() < end:
            if left == 0:
                user, cursor, left = users[rng.randrange(len(users))], "", pages
            left -= 1
            t = time.perf_counter()
            try:
                status, content = await asyncio.wait_for(
                    conn.get(f"/v1/users/{user}/feed?count={PAGE}{cursor}"), 30
                )
            except (*_BROKEN, TimeoutError):
                await conn.close()
                left = 0
                if t >= begin:
                    tally.statuses[0] += 1
                continue
            done = time.perf_counter()
            body = orjson.loads(content) if status == 200 else None
            if body is None:
                left = 0  # the session ends with a failed page
            elif left:
                cursor = f"&cursor={body['cursor']}"
            if t < begin or done > end:
                continue  # warm-up, or finished past the window
            tally.statuses[status] += 1
            if body is None:
                await asyncio.sleep(0.05)
                continue
            tally.latencies.append(done - t)
            tally.items += len(body["items"])
            if body.get("fallback") is not None:
                tally.fallbacks[str(body["fallback"])] += 1
        await conn.close()

    async def edges() -> None:
        await asyncio.sleep(begin - time.perf_counter())
        window["cpu"] = time.process_time()
        await asyncio.to_thread(at_begin)
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        window["cpu"] = time.process_time() - window["cpu"]
        await asyncio.to_thread(at_end)

    await asyncio.gather(edges(), *(loop(i) for i in range(clients)))
    return tally, end - begin, window["cpu"]


@dataclass
class Memory:
    """Bytes over a process tree: resident, proportional (shared pages split between the
    processes mapping them) and anonymous (heap: not backed by a file, unlike mapped models)."""

    rss: int = 0
    pss: int = 0
    anon: int = 0

    @classmethod
    def of_tree(cls, pid: int) -> Memory:
        out = cls()
        for p in process_tree(pid):
            try:
                text = Path(f"/proc/{p}/smaps_rollup").read_text()
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            for line in text.splitlines():
                name, _, rest = line.partition(":")
                if name in ("Rss", "Pss", "Anonymous"):
                    kib = int(rest.split()[0]) * 1024
                    out.rss += kib if name == "Rss" else 0
                    out.pss += kib if name == "Pss" else 0
                    out.anon += kib if name == "Anonymous" else 0
        return out

    def mb(self) -> dict[str, int]:
        return {k: round(v / 2**20) for k, v in asdict(self).items()}


class MemorySampler:
    """:class:`Memory` of a process tree every ``every`` seconds; keeps each figure's peak."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid = pid
        self.every = every
        self.peak = Memory()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        m = Memory.of_tree(self.pid)
        p = self.peak
        self.peak = Memory(max(p.rss, m.rss), max(p.pss, m.pss), max(p.anon, m.anon))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


_SAMPLE = re.compile(r"^(fyp_\w+?)(_sum|_count)\{(.*)\} ([0-9.eE+-]+)$", re.M)


def scrape(url: str) -> dict[tuple[str, str], float]:
    """Sums and counts of the server's latency histograms, keyed by (metric, label)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    out: dict[tuple[str, str], float] = {}
    for name, part, labels, value in _SAMPLE.findall(text):
        if name == "fyp_pipeline_stage_duration_seconds":
            label = dict(re.findall(r'(\w+)="([^"]*)"', labels)).get("stage", "")
        elif name == "fyp_http_request_duration_seconds" and FEED_ROUTE in labels:
            label = "HTTP handler (feed route)"
        else:
            continue
        out[(label, part)] = out.get((label, part), 0.0) + float(value)
    return out


@dataclass
class Row:
    workers: int
    clients: int
    feeds: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    fallbacks: dict[str, int]
    items_per_feed: float
    server_cpu: float  # cores, averaged over the window
    process_cpu: list[float]  # the same per server process (the workers), busiest first
    client_cpu: float
    peak_mb: dict[str, int]  # rss, pss, anon
    load_before: float
    stages_ms: dict[str, float]  # mean per feed over the window

    @property
    def feeds_s(self) -> float:
        return self.feeds / self.seconds


def measure(
    base: str, pid: int, key: str, users: list[str], workers: int, clients: int, args: Any
) -> Row:
    load_before = os.getloadavg()[0]
    pids = process_tree(pid)
    mem = MemorySampler(pid)
    edge: dict[str, Any] = {}

    def at_begin() -> None:
        edge["metrics"] = scrape(base)
        edge["cpu"] = {p: cpu_seconds(p) for p in pids}
        mem.__enter__()

    def at_end() -> None:
        edge["cpu"] = {p: cpu_seconds(p) - c for p, c in edge["cpu"].items()}
        mem.__exit__()
        edge["after"] = scrape(base)

    tally, wall, client_cpu = asyncio.run(
        drive(
            base, key, users, clients, args.warmup, args.seconds, args.seed + clients,
            at_begin, at_end, args.pages,
        )
    )  # fmt: skip
    feeds = len(tally.latencies)
    stages = {}
    for (label, part), total in edge["after"].items():
        if part == "_sum":
            spent = total - edge["metrics"].get((label, part), 0.0)
            stages[label] = spent / max(feeds, 1) * 1000
    lat = [x * 1000 for x in tally.latencies]
    per_process = sorted((c / wall for c in edge["cpu"].values()), reverse=True)
    return Row(
        workers=workers,
        clients=clients,
        feeds=feeds,
        seconds=wall,
        p50_ms=pct(lat, 0.5),
        p90_ms=pct(lat, 0.9),
        p99_ms=pct(lat, 0.99),
        max_ms=max(lat, default=float("nan")),
        statuses={str(k): v for k, v in sorted(tally.statuses.items())},
        fallbacks=dict(tally.fallbacks),
        items_per_feed=tally.items / max(feeds, 1),
        server_cpu=sum(per_process),
        process_cpu=[round(c, 2) for c in per_process if c >= 0.01],
        client_cpu=client_cpu / wall,
        peak_mb=mem.peak.mb(),
        load_before=load_before,
        stages_ms=stages,
    )


def warm_page_cache(folder: Path) -> int:
    """Read the store and the active model version's files once, so the servers find them in
    the page cache rather than on the disk, whatever ran before: a search over a mapped HNSW
    index touches pages all over the file, and rebuilding a random user from the log reads
    about a hundred scattered rows (measured on this world: about 6 ms a user from a cold
    cache, 0.5 ms from a warm one), as in a store that has been serving for a while. Returns
    the bytes read."""
    version = active_version(folder)
    total = 0
    for path in [folder / "fyp.db", *version.rglob("*")]:
        if path.is_file():
            with path.open("rb") as f:
                while chunk := f.read(1 << 24):
                    total += len(chunk)
    return total


def clear_served(folder: Path) -> None:
    """Forget what earlier runs served, so every configuration sees the same world."""
    con = sqlite3.connect(folder / "fyp.db", isolation_level=None)
    con.execute("DELETE FROM served")
    con.close()


def serve_and_measure(folder: Path, meta: dict[str, Any], args: Any) -> list[Row]:
    users = ids("u", meta["spec"]["users"])
    rows: list[Row] = []
    warm_page_cache(folder)
    for workers in args.workers:
        clear_served(folder)
        cfg = Config(f"w{workers}", f"{workers} worker(s)", workers, "sqlite", args.online)
        with redis_prefix(args.redis) as prefix:
            t = time.perf_counter()
            # a million videos take a worker about a minute to load (catalog, models, warm-up)
            with server(
                cfg,
                db_url(folder),
                args.redis,
                prefix,
                folder / "var",
                ready_timeout_s=600,
                settings={"FYP_SERVER__COMPILED": "false"} if args.plain else None,
            ) as (base, pid):
                wait_for_workers(pid, workers, timeout=600)
                startup = time.perf_counter() - t
                idle = Memory.of_tree(pid).mb()
                console.print(f"{workers} worker(s) ready in {startup:.1f} s, memory MB {idle}")
                meta.setdefault("startup", {})[str(workers)] = {
                    "seconds": round(startup, 1),
                    "idle_mb": idle,
                }
                for clients in args.clients:
                    console.print(f"  {clients} client(s) ...")
                    rows.append(measure(base, pid, meta["key"], users, workers, clients, args))
    return rows


# -- in-process profile ----------------------------------------------------------------------------


def in_process_app(folder: Path) -> Any:
    """The app on the world's store and models, to drive in this process (no HTTP server),
    with the served log emptied first."""
    from fyp.api.app import create_app
    from fyp.config import Settings

    settings = Settings(
        database_url=db_url(folder),
        var_dir=folder / "var",
        _env_file=None,  # type: ignore[call-arg]
    )
    clear_served(folder)
    return create_app(settings)


def profile(folder: Path, meta: dict[str, Any], n: int, clients: int, seed: int) -> str:
    """Where a feed request's time goes, in this process (the ASGI app without an HTTP server,
    one worker's work): ``n`` feeds from ``clients`` concurrent tasks, timed with the cyclic
    garbage collector's pauses, then again under cProfile (functions by own time and by
    cumulative time)."""
    import gc

    app = in_process_app(folder)
    users = ids("u", meta["spec"]["users"])
    rng = random.Random(seed)
    out = io.StringIO()
    pauses: list[tuple[int, float]] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pauses.append((info["generation"], time.perf_counter() - started.pop()))

    async def run() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"authorization": f"Bearer {meta['key']}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", headers=headers
            ) as client:

                async def feeds(count: int) -> list[float]:
                    lat: list[float] = []

                    async def one(k: int) -> None:
                        for _ in range(k):
                            u = users[rng.randrange(len(users))]
                            t = time.perf_counter()
                            r = await client.get(f"/v1/users/{u}/feed", params={"count": PAGE})
                            r.raise_for_status()
                            lat.append(time.perf_counter() - t)

                    share = [count // clients + (i < count % clients) for i in range(clients)]
                    await asyncio.gather(*(one(k) for k in share))
                    return lat

                await feeds(min(100, n))  # warm-up
                gc.callbacks.append(on_gc)
                cpu, t = time.process_time(), time.perf_counter()
                lat = [x * 1000 for x in await feeds(n)]
                wall, cpu = time.perf_counter() - t, time.process_time() - cpu
                gc.callbacks.remove(on_gc)
                by_gen = Counter(g for g, _ in pauses)
                out.write(
                    f"in-process, {n} feeds from {clients} concurrent task(s): "
                    f"{n / wall:.1f} feeds/s, CPU {cpu / n * 1000:.1f} ms a feed, latency p50 "
                    f"{pct(lat, 0.5):.1f} / p99 {pct(lat, 0.99):.1f} / max {max(lat):.0f} ms; "
                    f"cyclic GC: {len(pauses)} collections ({dict(sorted(by_gen.items()))} by "
                    f"generation), {sum(p for _, p in pauses) * 1000:.0f} ms in all, longest "
                    f"{max((p for _, p in pauses), default=0) * 1000:.1f} ms\n"
                )
                prof = cProfile.Profile()
                t = time.perf_counter()
                prof.enable()
                await feeds(n)
                prof.disable()
                wall = time.perf_counter() - t
                out.write(f"under cProfile: {wall / n * 1000:.1f} ms a feed\n")
                stats = pstats.Stats(prof, stream=out)
                stats.sort_stats("tottime").print_stats(30)
                # the package's own functions, by the time spent in them and what they call
                stats.sort_stats("cumulative").print_stats(r"src/fyp/", 40)

    asyncio.run(run())
    return out.getvalue()


# -- report ----------------------------------------------------------------------------------------


# the trainer's steps in the order it runs them (its manifest keeps them sorted by name)
STEPS = [
    "catalog",
    "served log",
    "events",
    "signals",
    "content vectors",
    "embeddings",
    "ann index",
    "item neighbours",
    "next-item transitions",
    "ranker",
    "offline evaluation",
    "publish",
    "total",
]


def report(meta: dict[str, Any], rows: list[Row], args: Any) -> str:
    spec = meta["spec"]
    lines = [
        f"{platform.node()}: {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"world {spec['videos']:,} videos, {spec['users']:,} users, {spec['events']:,} events "
        f"(seed {spec['seed']}), generated "
        f"{(now_ms() - meta['now_ms']) / 3_600_000:.1f} h ago; online state {args.online}; "
        + (f"{args.pages} consecutive pages per user" if args.pages > 1 else "one page per user")
        + ("; plain modules" if args.plain else "; compiled modules (fyp compile)")
        + f"; {interpreter.describe()}",
        "",
    ]
    build = meta.get("build")
    if build:
        ld = build["load"]
        lines.append(
            f"generation {build['generate_s']:.1f} s; load: users {ld['users']['per_s']:,}/s, "
            f"videos {ld['videos']['per_s']:,}/s ({ld['videos']['seconds']:.0f} s), "
            + (
                f"events via store.append_events {ld['events_store_api']['per_s']:,}/s "
                f"({ld['events_store_api']['rows']:,} in "
                f"{ld['events_store_api']['seconds']:.0f} s), "
                if "events_store_api" in ld
                else ""
            )
            + (
                f"bulk insert {ld['events_bulk']['per_s']:,}/s ({ld['events_bulk']['rows']:,} in "
                f"{ld['events_bulk']['seconds']:.0f} s); "
                if ld["events_bulk"]["rows"]
                else ""
            )
            + f"store {ld['db_mb']:,} MB; video records dated at "
            + ("their upload" if meta.get("catalog_times") == "upload" else "the load")
        )
    tr = meta.get("train")
    if tr:
        timings = sorted(
            tr["timings_s"].items(),
            key=lambda kv: STEPS.index(kv[0]) if kv[0] in STEPS else len(STEPS),
        )
        steps = ", ".join(
            f"{k} {v:.1f} s"
            + (
                f" ({tr['peak_memory_mb_by_step'][k]:,.0f} MB)"
                if k in tr["peak_memory_mb_by_step"]
                else ""
            )
            for k, v in timings
        )
        lines.append(
            f"training ({tr['factors']} factors, {tr['threads']} threads, index "
            f"{tr['index']['kind']}): wall {tr['wall_s']:.0f} s, peak RSS "
            f"{tr['peak_memory_mb']:,.0f} MB; steps (peak RSS so far): {steps}"
        )
    rk = meta.get("ranker")
    if rk and rk["source"] == "bench":
        trees = rk["trees"]
        lines.append(
            f"ranker (attached by the bench, outcomes drawn from the heuristic): {rk['rows']:,} "
            f"rows x {rk['features']} features from {rk['users']:,} feeds, "
            f"{sum(trees.values())} trees over {len(trees)} actions, fit {rk['fit_s']:.0f} s, "
            f"saved in {rk['save_s']:.1f} s, "
            + ("trees compiled" if rk["native"] else "trees not compiled (LightGBM serves)")
            + ("; SET ASIDE for this run: heuristic scoring" if args.no_ranker else "")
        )
    elif rk:
        lines.append(f"ranker from fyp train: {', '.join(rk['actions'])}")
    else:
        lines.append("no ranker: the heuristic scores every feed")
    for w, s in sorted(meta.get("startup", {}).items()):
        m = s["idle_mb"]
        lines.append(
            f"server with {w} worker(s): ready in {s['seconds']} s, idle RSS {m['rss']:,} MB, "
            f"PSS {m['pss']:,} MB, anonymous {m['anon']:,} MB"
        )
    if not rows:
        return "\n".join(lines)
    lines += [
        "",
        "| workers | clients | feeds/s | p50 / p90 / p99 / max ms | non-200 | fallback | items "
        "| server CPU (per process) | client CPU | peak RSS / PSS / anon MB | load before |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        non200 = ", ".join(f"{k}: {v}" for k, v in r.statuses.items() if k != "200") or "0"
        fb = sum(r.fallbacks.values()) / max(r.feeds, 1)
        lines.append(
            f"| {r.workers} | {r.clients} | {r.feeds_s:,.1f} | {r.p50_ms:.1f} / {r.p90_ms:.1f} / "
            f"{r.p99_ms:.1f} / {r.max_ms:.0f} | {non200} | {fb:.1%} | {r.items_per_feed:.1f} "
            f"| {r.server_cpu:.2f} ({' + '.join(f'{c:.2f}' for c in r.process_cpu)}) "
            f"| {r.client_cpu:.2f} | {r.peak_mb['rss']:,} / "
            f"{r.peak_mb['pss']:,} / {r.peak_mb['anon']:,} | {r.load_before:.2f} |"
        )
    for r in rows:
        if r.fallbacks:
            lines.append(
                f"fallbacks at {r.workers} worker(s), {r.clients} client(s): {r.fallbacks}"
            )
    lines += [
        "",
        "server time per feed (ms, mean over the window; stages overlap when concurrent):",
    ]
    names = sorted(
        {k for r in rows for k in r.stages_ms}, key=lambda k: -rows[0].stages_ms.get(k, 0)
    )
    lines.append("| stage | " + " | ".join(f"{r.workers}w/{r.clients}c" for r in rows) + " |")
    lines.append("|---|" + "---:|" * len(rows))
    for name in names:
        cells = " | ".join(f"{r.stages_ms.get(name, 0.0):.2f}" for r in rows)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--videos", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--days", type=float, default=14.0, help="the event log's time span")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--factors", type=int, default=64, help="embedding factors for training")
    p.add_argument("--train-threads", type=int, default=2, help="training.threads")
    p.add_argument(
        "--index-kind",
        choices=["auto", "flat", "hnsw", "hnsw_sq8", "ivf"],
        default="auto",
        help="training.index_kind (auto: exact below 100,000 videos, else HNSW over 8-bit codes)",
    )
    p.add_argument(
        "--api-events",
        type=int,
        default=200_000,
        help="events loaded through store.append_events (its rate), the rest in bulk",
    )
    p.add_argument(
        "--catalog-times",
        choices=["upload", "load"],
        default="upload",
        help="video records dated at their upload (default) or when the bench loaded them",
    )
    p.add_argument("--world", type=Path, help="cache folder (default var/bench-feed/<params>)")
    p.add_argument("--rebuild", action="store_true", help="regenerate and retrain")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--clients", type=parse_ints, default=[1, 16])
    p.add_argument("--workers", type=parse_ints, default=[1, 2])
    p.add_argument(
        "--pages",
        type=int,
        default=1,
        help="consecutive pages a client asks for one user before drawing the next (a session)",
    )
    p.add_argument("--online", choices=["memory", "redis"], default="memory")
    p.add_argument("--redis", default=os.environ.get("FYP_BENCH_REDIS", REDIS_DEFAULT))
    p.add_argument("--profile", type=int, default=0, help="also cProfile N feeds in-process")
    p.add_argument("--profile-clients", type=int, default=1, help="concurrent tasks for it")
    p.add_argument(
        "--plain",
        action="store_true",
        help="serve the plain modules (default: build the compiled ones first, `fyp compile`)",
    )
    p.add_argument(
        "--ranker-users",
        type=int,
        default=RANKER_USERS,
        help="cold users fed for the ranker's rows (0: attach none)",
    )
    p.add_argument(
        "--no-ranker",
        action="store_true",
        help="serve without the ranker the bench attached (set aside for the run)",
    )
    p.add_argument("--no-serve", action="store_true", help="build and train only")
    p.add_argument("--json", type=Path, help="also write everything measured here")
    args = p.parse_args()
    if args.pages < 1:
        p.error("--pages must be at least 1")

    spec = WorldSpec(
        videos=args.videos, users=args.users, events=args.events, days=args.days, seed=args.seed
    )
    key = world_key(spec, args.factors, args.index_kind)
    key += "-loadtimes" if args.catalog_times == "load" else ""
    folder = (args.world or ROOT / "var" / "bench-feed" / key).resolve()
    if args.rebuild and folder.exists():
        shutil.rmtree(folder)
    meta = read_meta(folder)
    if "build" in meta and meta.get("catalog_times", "load") != args.catalog_times:
        if args.catalog_times == "load":
            raise SystemExit("this world's catalog is dated at upload: --rebuild to undo it")
        meta["catalog_times"] = args.catalog_times
        meta["build"]["date_catalog_s"] = round(date_catalog_at_upload(folder / "fyp.db"), 1)
        write_meta(folder, meta)
    if "build" not in meta:
        if folder.exists():
            shutil.rmtree(folder)  # a half-built world: start over
        console.print(f"building the world in {folder} ...")
        build = in_child(build_world, folder, spec, args.api_events)
        meta = {"spec": asdict(spec), "now_ms": build.pop("now_ms"), "key": build.pop("key")}
        meta["catalog_times"] = args.catalog_times
        if args.catalog_times == "upload":
            build["date_catalog_s"] = round(date_catalog_at_upload(folder / "fyp.db"), 1)
        meta["build"] = build
        write_meta(folder, meta)
    else:
        console.print(f"reusing the world in {folder}")
    if "train" not in meta:
        console.print("training ...")
        meta["train"] = train(folder, args.factors, args.train_threads, args.index_kind)
        write_meta(folder, meta)
    if "ranker" not in meta and args.ranker_users > 0:
        console.print(f"a ranker from {args.ranker_users:,} users' feeds ...")
        meta["ranker"] = in_child(attach_ranker, folder, args.ranker_users, args.seed)
        write_meta(folder, meta)
    rows: list[Row] = []
    if not args.no_serve:
        if not args.plain:
            from fyp.ops import compiled

            compiled.build(folder / "var", say=console.print)
        with bench_ranker_aside(folder, meta, args.no_ranker):
            rows = serve_and_measure(folder, meta, args)
        write_meta(folder, meta)
    print(report(meta, rows, args))
    if args.profile:
        print()
        print(profile(folder, meta, args.profile, args.profile_clients, args.seed))
    if args.json:

        def dump(r: Row) -> dict[str, Any]:
            return {**asdict(r), "feeds_s": r.feeds_s}

        args.json.write_bytes(
            orjson.dumps(
                {
                    "meta": {k: v for k, v in meta.items() if k != "key"},
                    "pages_per_user": args.pages,
                    "rows": [dump(r) for r in rows],
                },
                option=orjson.OPT_INDENT_2,
            )
        )


if __name__ == "__main__":
    main()
