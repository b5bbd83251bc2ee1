"""Drive a simulated audience against a running fyp API over HTTP.

Each simulated day, every user who comes back opens one or more sessions: request a feed page,
react to each item in order (events stamped with simulated times and the response's
``request_id``), send them in one batch, and ask for the next page until bored. Several users run
concurrently (asyncio tasks over one HTTP connection pool), each with its own random stream, so a
user's behaviour depends only on the seed and what the feed showed them.
"""

from __future__ import annotations

import asyncio
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
        self, http: httpx.AsyncClient, user: SimUser, rng: random.Random, t: int, s: DaySummary
    ) -> None:
        cfg = self.config
        s.sessions += 1
        energy = user.patience
        position = 0
        cursor: str | None = None
        matches: list[float] = []
        for _ in range(cfg.max_pages):
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
            s.exhausted += bool(page.get("exhausted"))
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
                events.extend(self._events_for(user, vid, video, request_id, t, re))
                t += re.watch_ms + rng.randint(300, 1500)
                # Good videos restore a little energy, poor ones drain it.
                energy += 0.35 * m - 0.3 * (1 - m) - 0.04
                if re.not_interested or re.report:
                    energy -= 0.5
                if energy <= 0:
                    break
            if events:
                await self._send(http, events, s)
            cursor = page.get("cursor")
            if energy <= 0 or page.get("exhausted") or (not cursor and not page.get("items")):
                break
        if matches:
            user.satisfaction = sum(matches) / len(matches)

    def _events_for(
        self,
        user: SimUser,
        vid: str,
        video: dict[str, Any],
        request_id: str,
        t: int,
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

        end = t + re.watch_ms
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
