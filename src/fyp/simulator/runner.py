"""Drive a simulated audience against a running fyp API over HTTP.

Each simulated day, every user who comes back opens one or more sessions: request a feed page,
react to each item in order (events stamped with simulated times and the response's
``request_id``), send them in one batch, and ask for the next page until bored. Several users run
concurrently (asyncio tasks over one HTTP connection pool), each with its own random stream, so a
user's behaviour depends only on the seed and what the feed showed them.

``live`` plays the same users in real time instead, day after day until cancelled: each day's
sessions start at random moments over ``day_s`` seconds (at most ``max_sessions_per_s``), users
watch ``speedup`` times faster than real time, and every event is stamped with the real moment
it stands for, never ahead of the clock (what ``fyp serve --simulate N`` runs). A user whose
feed runs out of unseen videos leaves, and a newcomer takes their place.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from fyp.simulator.audience import Reaction, SimUser, react, returns
from fyp.simulator.catalog import DAY_MS, SimCatalog
from fyp.types import now_ms

HOUR_MS = 3_600_000


async def pause(halt: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds``, or less when ``halt`` is set; returns whether it is."""
    if halt is None:
        await asyncio.sleep(max(0.0, seconds))
        return False
    if not halt.is_set():
        # wait_for yields even when it times out at once: ``halt`` may be set meanwhile.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(halt.wait(), max(0.0, seconds))
    return halt.is_set()


@dataclass(frozen=True)
class SimConfig:
    url: str = "http://127.0.0.1:8000"
    key: str = ""
    admin_key: str = ""
    days: int = 3
    concurrency: int = 16
    page_size: int = 20
    max_pages: int = 12  # per session: nobody scrolls forever
    timeout_s: float = 30.0
    seed: int = 1
    start_ms: int | None = None  # simulated time of day 0; default: `days` days ago
    # -- live --
    day_s: float = 120.0  # real seconds per simulated day
    speedup: float = 20.0  # watching runs this many times faster than real time
    max_sessions_per_s: float = 1.0


@dataclass
class DaySummary:
    day: int
    active_users: int = 0
    sessions: int = 0
    feeds: int = 0
    errors: int = 0
    fallbacks: int = 0
    exhausted: int = 0
    views: int = 0
    watch_ms: int = 0
    completes: int = 0
    skips: int = 0
    likes: int = 0
    events_sent: int = 0
    events_rejected: int = 0
    newcomers: int = 0  # live: users who replaced one whose feed ran out
    videos: set[str] = field(default_factory=set)
    error_examples: list[str] = field(default_factory=list)

    @property
    def completion_rate(self) -> float:
        return self.completes / self.views if self.views else 0.0

    @property
    def skip_rate(self) -> float:
        return self.skips / self.views if self.views else 0.0

    @property
    def watch_min_per_session(self) -> float:
        return self.watch_ms / 60_000 / self.sessions if self.sessions else 0.0

    def coverage(self, catalog: Collection[str]) -> float:
        """Share of the simulator's catalog viewed (the server may hold other videos too)."""
        return len(self.videos & set(catalog)) / len(catalog) if catalog else 0.0

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(message)


class Simulation:
    """One audience over one catalog; ``run`` plays ``config.days`` days against the API."""

    def __init__(
        self,
        catalog: SimCatalog,
        users: list[SimUser],
        config: SimConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.catalog = catalog
        self.quality = {v.id: v.quality for v in catalog.videos}
        self.users = users
        self.config = config
        self.transport = transport
        self._start: int | None = None
        self._halt: asyncio.Event | None = None

    def _client(self, key: str) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.config.concurrency * 2)
        return httpx.AsyncClient(
            base_url=self.config.url,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=self.config.timeout_s,
            limits=limits,
            transport=self.transport,
        )

    async def setup(self) -> dict[str, int]:
        """Load creators, simulated users and the catalog through the admin API (idempotent)."""
        stored = {"users": 0, "videos": 0}
        async with self._client(self.config.admin_key) as http:
            people = [{"id": c} for c in self.catalog.creators] + [u.profile() for u in self.users]
            for i in range(0, len(people), 1000):
                r = await http.post("/v1/users", json={"users": people[i : i + 1000]})
                r.raise_for_status()
                stored["users"] += int(r.json()["stored"])
            videos = [v.upload() for v in self.catalog.videos]
            for i in range(0, len(videos), 1000):
                r = await http.post("/v1/videos", json={"videos": videos[i : i + 1000]})
                r.raise_for_status()
                stored["videos"] += int(r.json()["stored"])
        return stored

    async def register_users(self) -> int:
        """Create (or update) the simulated users through the admin API; the catalog is the
        server's own. Returns how many were stored."""
        stored = 0
        async with self._client(self.config.admin_key) as http:
            people = [u.profile() for u in self.users]
            for i in range(0, len(people), 1000):
                r = await http.post("/v1/users", json={"users": people[i : i + 1000]})
                r.raise_for_status()
                stored += int(r.json()["stored"])
        return stored

    async def live(
        self,
        on_day: Callable[[DaySummary], None] | None = None,
        newcomer: Callable[[], SimUser] | None = None,
        *,
        halt: asyncio.Event | None = None,
        grace_s: float = 5.0,
    ) -> None:
        """Play days in real time until ``halt`` is set (or the task is cancelled); ``on_day``
        gets each finished day.

        A user whose previous session is still running skips the next one; when
        ``concurrency`` sessions are in flight, the next one waits for a slot. When a session
        ends on an ``exhausted`` page (the user saw the whole catalog), ``newcomer()`` replaces
        that user, registered through the admin API, from the next day on. On ``halt`` no new
        request starts and the ones in flight get up to ``grace_s`` to be answered (a request
        cut mid-body is an error on the server's side), then whatever is left is cancelled.
        """
        cfg = self.config
        loop = asyncio.get_running_loop()
        gap = 1.0 / cfg.max_sessions_per_s
        running: set[asyncio.Task[None]] = set()
        reports: set[asyncio.Task[None]] = set()
        busy: set[str] = set()
        self._halt = halt

        async def session(user: SimUser, rng: random.Random, s: DaySummary) -> None:
            busy.add(user.id)
            try:
                exhausted = await self._session(http, user, rng, now_ms(), s, live=True)
                if exhausted and newcomer is not None and not self._halting():
                    await self._replace(admin, user, newcomer(), s)
            finally:
                busy.discard(user.id)

        async def report(tasks: list[asyncio.Task[None]], s: DaySummary) -> None:
            await asyncio.gather(*tasks, return_exceptions=True)
            if on_day is not None and not self._halting():
                on_day(s)

        async with self._client(cfg.key) as http, self._client(cfg.admin_key) as admin:
            try:
                day = 0
                last = -math.inf
                while not self._halting():
                    summary = DaySummary(day)
                    start = loop.time()
                    day_tasks: list[asyncio.Task[None]] = []
                    for offset, user, rng in self._live_plan(day, summary):
                        wait = max(0.0, start + offset - loop.time(), last + gap - loop.time())
                        if await pause(halt, wait):
                            break
                        while len(running) >= max(1, cfg.concurrency):
                            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                        last = loop.time()
                        if user.id in busy or user not in self.users:  # busy, or left
                            continue
                        task = asyncio.create_task(session(user, rng, summary))
                        running.add(task)
                        task.add_done_callback(running.discard)
                        day_tasks.append(task)
                    r = asyncio.create_task(report(day_tasks, summary))
                    reports.add(r)
                    r.add_done_callback(reports.discard)
                    if await pause(halt, start + cfg.day_s - loop.time()):
                        break
                    day += 1
                if running:  # halted: sessions end after the request they are in
                    await asyncio.wait(running, timeout=grace_s)
            finally:
                pending = running | reports
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    def _halting(self) -> bool:
        return self._halt is not None and self._halt.is_set()

    async def _replace(
        self, admin: httpx.AsyncClient, user: SimUser, new: SimUser, s: DaySummary
    ) -> None:
        try:
            r = await admin.post("/v1/users", json={"users": [new.profile()]})
            r.raise_for_status()
        except httpx.HTTPError as e:
            s.error(f"newcomer: {type(e).__name__}: {e}")
            return
        self.users[self.users.index(user)] = new
        s.newcomers += 1

    def _live_plan(self, day: int, s: DaySummary) -> list[tuple[float, SimUser, random.Random]]:
        """(seconds into the day, user, the user's random stream) of every session of ``day``."""
        plan = []
        for user in self.users:
            rng = self._rng(user, day)
            if day > 0 and not returns(user, rng):
                continue
            s.active_users += 1
            sessions = 1 + (rng.random() < 0.35) + (rng.random() < 0.1)
            plan += [(rng.uniform(0, self.config.day_s), user, rng) for _ in range(sessions)]
        plan.sort(key=lambda p: p[0])
        return plan

    async def run(
        self,
        on_user_day: Callable[[int], None] | None = None,
        days: Sequence[int] | None = None,
    ) -> list[DaySummary]:
        """Play the days in order; ``on_user_day(1)`` after each user-day (a progress bar).

        ``days`` picks some of the ``config.days`` days (e.g. a pre-period day, then the rest
        after an experiment starts); users keep their state (follows, satisfaction) between calls.
        """
        cfg = self.config
        if self._start is None:
            self._start = cfg.start_ms if cfg.start_ms is not None else now_ms() - cfg.days * DAY_MS
        start = self._start
        async with self._client(cfg.key) as http:
            return [
                await self._day(http, day, start + day * DAY_MS, on_user_day)
                for day in (range(cfg.days) if days is None else days)
            ]

    async def _day(
        self,
        http: httpx.AsyncClient,
        day: int,
        day_ms: int,
        on_user_day: Callable[[int], None] | None,
    ) -> DaySummary:
        summary = DaySummary(day)
        queue: asyncio.Queue[SimUser] = asyncio.Queue()
        for user in self.users:
            queue.put_nowait(user)

        async def worker() -> None:
            while not queue.empty():
                user = queue.get_nowait()
                await self._user_day(http, user, day, day_ms, summary)
                if on_user_day is not None:
                    on_user_day(1)

        await asyncio.gather(*(worker() for _ in range(max(1, self.config.concurrency))))
        return summary

    def _rng(self, user: SimUser, day: int) -> random.Random:
        return random.Random(f"{self.config.seed}:{user.id}:{day}")

    async def _user_day(
        self, http: httpx.AsyncClient, user: SimUser, day: int, day_ms: int, s: DaySummary
    ) -> None:
        rng = self._rng(user, day)
        if day > 0 and not returns(user, rng):
            return
        s.active_users += 1
        sessions = 1 + (rng.random() < 0.35) + (rng.random() < 0.1)
        hours = sorted(rng.uniform(7, 23) for _ in range(sessions))
        for h in hours:
            await self._session(http, user, rng, day_ms + int(h * HOUR_MS), s)

    async def _session(
        self,
        http: httpx.AsyncClient,
        user: SimUser,
        rng: random.Random,
        t: int,
        s: DaySummary,
        *,
        live: bool = False,
    ) -> bool:
        """One session from simulated time ``t``; ``live``: in real time, ``speedup`` times
        faster than the watching it stands for (a page's events go out once their time came).
        Returns whether the feed said the user's catalog ran out."""
        cfg = self.config
        pace = cfg.speedup if live else 1.0
        s.sessions += 1
        energy = user.patience
        position = 0
        cursor: str | None = None
        matches: list[float] = []
        exhausted = False
        for _ in range(cfg.max_pages):
            if live:
                if self._halting():
                    break
                t = max(t, now_ms())
            params: dict[str, Any] = {"count": cfg.page_size}
            if cursor:
                params["cursor"] = cursor
            try:
                r = await http.get(f"/v1/users/{user.id}/feed", params=params)
            except httpx.HTTPError as e:
                s.error(f"feed: {type(e).__name__}: {e}")
                break
            if r.status_code != 200:
                s.error(f"feed {r.status_code}: {r.text[:200]}")
                break
            page = r.json()
            s.feeds += 1
            s.fallbacks += page.get("fallback") is not None
            exhausted = bool(page.get("exhausted"))
            s.exhausted += exhausted
            request_id = page["request_id"]
            events: list[dict[str, Any]] = []
            for item in page.get("items") or []:
                video = item["video"]
                vid = video["id"]
                m, re = react(user, video, self.quality.get(vid, 0.4), position, rng)
                matches.append(m)
                position += 1
                s.views += 1
                s.videos.add(vid)
                s.watch_ms += re.watch_ms
                s.completes += re.completion >= 0.9
                s.skips += re.skip
                s.likes += re.like
                end = t + int(re.watch_ms / pace)
                events.extend(self._events_for(user, vid, video, request_id, t, end, re))
                t = end + int(rng.randint(300, 1500) / pace)
                # Good videos restore a little energy, poor ones drain it.
                energy += 0.35 * m - 0.3 * (1 - m) - 0.04
                if re.not_interested or re.report:
                    energy -= 0.5
                if energy <= 0:
                    break
            if events:
                # Live: the page's events go out once the last of them happened; on halt they
                # have not happened yet, so they never do.
                if live and await pause(
                    self._halt, (max(e["ts"] for e in events) - now_ms()) / 1000
                ):
                    break
                await self._send(http, events, s)
            cursor = page.get("cursor")
            if energy <= 0 or page.get("exhausted") or (not cursor and not page.get("items")):
                break
        if matches:
            user.satisfaction = sum(matches) / len(matches)
        return exhausted

    def _events_for(
        self,
        user: SimUser,
        vid: str,
        video: dict[str, Any],
        request_id: str,
        t: int,
        end: int,
        re: Reaction,
    ) -> list[dict[str, Any]]:
        def ev(type_: str, at: int, **extra: Any) -> dict[str, Any]:
            # Random ids: a second run with the same seed must add events, not be deduplicated.
            return {
                "event_id": f"sim-{uuid.uuid4().hex}",
                "user_id": user.id,
                "type": type_,
                "video_id": vid,
                "ts": at,
                "request_id": request_id,
                **extra,
            }

        out = [ev("impression", t), ev("play", end, watch_ms=re.watch_ms)]
        if re.skip:
            out.append(ev("skip", end))
        if re.like:
            out.append(ev("like", end))
        if re.share:
            out.append(ev("share", end))
        if re.comment:
            out.append(ev("comment", end, extra={"text": "nice"}))
        if re.follow and video.get("creator_id"):
            out.append(ev("follow", end, creator_id=video["creator_id"]))
        if re.report:
            out.append(ev("report", end))
        if re.not_interested:
            out.append(ev("not_interested", end))
        return out

    async def _send(
        self, http: httpx.AsyncClient, events: list[dict[str, Any]], s: DaySummary
    ) -> None:
        for i in range(0, len(events), 1000):
            batch = events[i : i + 1000]
            try:
                r = await http.post("/v1/events", json={"events": batch})
            except httpx.HTTPError as e:
                s.error(f"events: {type(e).__name__}: {e}")
                continue
            if r.status_code not in (200, 422):
                s.error(f"events {r.status_code}: {r.text[:200]}")
                continue
            body = r.json()
            s.events_sent += int(body.get("stored", 0)) + int(body.get("duplicates", 0))
            rejected = body.get("rejected") or []
            s.events_rejected += len(rejected)
            if rejected:
                s.error(f"events rejected: {rejected[0]}")
