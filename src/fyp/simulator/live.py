"""A simulated audience that keeps a running server busy, in real time, until it is stopped.

``fyp serve --simulate N`` starts one beside the server so a demo world has live activity: it
reads the server's catalog through ``GET /v1/videos``, draws N users with hidden tastes over
those videos' hashtags, creators and sounds, registers them through ``POST /v1/users``, then
plays them with :meth:`Simulation.live` over the real HTTP API (feeds and event batches) on its
own thread and event loop. It logs one summary line per simulated day.

The first N users keep their ids (and so their history on the server) from one start to the
next; a user who has seen the whole catalog leaves, and a newcomer with a new id
(``live_n`` + random hex) and fresh tastes joins instead, so a small catalog never runs dry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections import deque
from typing import Any

import httpx

from fyp.config import SimulatorSettings
from fyp.simulator.audience import SimUser, newcomer, population
from fyp.simulator.catalog import from_videos
from fyp.simulator.runner import DaySummary, SimConfig, Simulation, pause

log = logging.getLogger("fyp.simulator")
USER_PREFIX = "live_u"
NEWCOMER_PREFIX = "live_n"


class LiveAudience:
    """``start`` it once the server answers (or with ``wait_ready``, before); ``stop`` ends it
    within a moment: no new request starts, the ones in flight are answered, nothing is left
    running.

    Args:
        settings: the simulator section of the settings (``users`` > 0).
        url: the server's base URL.
        key: an app key (feeds, events, the catalog listing).
        admin_key: an admin key (to register the simulated users).
        wait_ready: poll ``/readyz`` before starting (when the server starts elsewhere).
        transport: an httpx transport, for tests.
    """

    def __init__(
        self,
        settings: SimulatorSettings,
        *,
        url: str,
        key: str,
        admin_key: str,
        wait_ready: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.config = SimConfig(
            url=url,
            key=key,
            admin_key=admin_key,
            concurrency=settings.concurrency,
            page_size=settings.page_size,
            seed=settings.seed,
            timeout_s=10.0,
            day_s=settings.day_seconds,
            speedup=settings.speedup,
            max_sessions_per_s=settings.max_sessions_per_s,
        )
        self.wait_ready = wait_ready
        self.transport = transport
        self.days: deque[DaySummary] = deque(maxlen=100)  # the latest summaries
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run on a daemon thread with its own event loop."""
        if self._thread is not None:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="fyp-simulator", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Halt the audience and wait for its thread (cancelling it after ``timeout_s``);
        True when it has ended."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return True
        # RuntimeError: the loop already closed, the audience ended on its own.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._halt.set)
        thread.join(timeout_s)
        if thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._cancel)
            thread.join(1.0)
        return not thread.is_alive()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _main(self) -> None:
        assert self._loop is not None
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            self._task = loop.create_task(self.run())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("simulated audience failed; the server keeps running without it")
        finally:
            loop.close()

    async def run(self) -> None:
        """Set the audience up over the server's catalog, then play it until halted."""
        cfg, halt = self.config, self._halt
        try:
            if self.wait_ready and not await self._ready():
                return
            videos = await self._catalog()
            if halt.is_set():
                return
            if not videos:
                log.warning(
                    "simulated audience off: the server has no approved video "
                    "(load a catalog first, e.g. `fyp demo`)"
                )
                return
            catalog = from_videos(videos, seed=cfg.seed)
            users = population(catalog, self.settings.users, seed=cfg.seed, prefix=USER_PREFIX)
            sim = Simulation(catalog, users, cfg, transport=self.transport)
            await sim.register_users()
            if halt.is_set():
                return
        except httpx.HTTPStatusError as e:
            r = e.response
            log.warning(
                "simulated audience off: %s %s answered %d: %s",
                r.request.method,
                r.request.url.path,
                r.status_code,
                r.text[:200],
            )
            return
        except httpx.HTTPError as e:
            log.warning("simulated audience off: %s: %s", type(e).__name__, e)
            return
        log.info(
            "simulated audience on: %d users (%s...) over %d videos, a simulated day every %gs, "
            "at most %g sessions/s",
            len(users),
            USER_PREFIX,
            len(catalog.videos),
            cfg.day_s,
            cfg.max_sessions_per_s,
        )

        def join() -> SimUser:
            token = uuid.uuid4().hex[:12]
            return newcomer(catalog, f"{NEWCOMER_PREFIX}{token}", seed=int(token, 16))

        await sim.live(self._log_day, join, halt=halt)

    def _log_day(self, d: DaySummary) -> None:
        self.days.append(d)
        log.info(
            "simulated day %d: %d active users, %d sessions, %d feeds, %d events, "
            "completion %.0f%%, skips %.0f%%, %d likes, %d newcomers, %d errors%s",
            d.day,
            d.active_users,
            d.sessions,
            d.feeds,
            d.events_sent,
            100 * d.completion_rate,
            100 * d.skip_rate,
            d.likes,
            d.newcomers,
            d.errors,
            f" (first: {d.error_examples[0]})" if d.error_examples else "",
        )

    def _client(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.config.url,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=self.config.timeout_s,
            transport=self.transport,
        )

    async def _ready(self) -> bool:
        """Wait until the server is ready (True) or the audience halts (False)."""
        async with self._client("") as http:
            while True:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                if await pause(self._halt, 0.5):
                    return False

    async def _catalog(self) -> list[dict[str, Any]]:
        videos: list[dict[str, Any]] = []
        after: str | None = None
        async with self._client(self.config.key) as http:
            while True:
                params: dict[str, Any] = {"moderation": "approved", "limit": 1000}
                if after:
                    params["after"] = after
                r = await http.get("/v1/videos", params=params)
                r.raise_for_status()
                page = r.json()
                videos += page["videos"]
                after = page.get("next")
                if not after:
                    return videos
