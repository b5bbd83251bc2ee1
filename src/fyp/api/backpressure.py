"""Back-pressure on the store: refuse early rather than queue, time out rather than hang.

Event batches run on threads of their own, at most ``ingest_max_inflight`` per worker: a batch
over the limit is answered 429 at once, and a batch not committed within ``store_timeout_s`` is
answered 503. Both carry Retry-After and neither acknowledges anything: a commit that lands
after a 503 was not acknowledged, and the client's retry is absorbed by event-id idempotency.
A slot is freed when its thread finishes, not when the client gets its answer, so threads stuck
on a dead connection keep counting against the limit and a worker never piles up more of them.

Other short store calls on the request path (API-key lookups) go through a small pool with the
same timeout, so a PostgreSQL that stops answering (paused, partitioned) yields 503s rather than
requests that hang and threads that pile up without bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from fyp.api.errors import ApiError
from fyp.config import ServerSettings
from fyp.ops import metrics
from fyp.storage.data import StoreUnavailable

T = TypeVar("T")

_LOOKUP_THREADS = 4


class StoreGate:
    def __init__(self, settings: ServerSettings | None = None) -> None:
        cfg = settings or ServerSettings()
        self.max_inflight = cfg.ingest_max_inflight
        self.timeout_s = cfg.store_timeout_s
        self.retry_after = str(cfg.retry_after_s)
        self._lock = threading.Lock()
        self._inflight = 0
        self._running: set[Future[Any]] = set()
        self._ingest = ThreadPoolExecutor(cfg.ingest_max_inflight, thread_name_prefix="ingest")
        self._lookups = ThreadPoolExecutor(_LOOKUP_THREADS, thread_name_prefix="lookup")

    @property
    def inflight(self) -> int:
        return self._inflight

    async def ingest(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on an ingest thread, or raise the 429/503 ApiError saying why not."""
        with self._lock:
            if self._inflight >= self.max_inflight:
                metrics.record_ingest_refused("overload")
                raise ApiError(
                    429,
                    "overloaded",
                    f"this worker is already storing {self.max_inflight} batches; retry shortly",
                    headers={"Retry-After": self.retry_after},
                )
            self._inflight += 1
        try:
            future = self._ingest.submit(self._call, fn, *args)
        except BaseException:
            self._release()
            raise
        self._track(future)
        try:
            return await self._wait(future)
        except ApiError:
            metrics.record_ingest_refused("timeout")
            raise
        except StoreUnavailable:
            metrics.record_ingest_refused("store_down")
            raise

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a short store read (queued on a small pool) with the same timeout."""
        future = self._lookups.submit(fn, *args)
        self._track(future)
        return await self._wait(future)

    async def _wait(self, future: Future[T]) -> T:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except TimeoutError:
            raise ApiError(
                503,
                "store_timeout",
                f"the store did not answer within {self.timeout_s:g}s; nothing was acknowledged, "
                "retry later (event ids make resending events safe)",
                headers={"Retry-After": self.retry_after},
            ) from None

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._inflight -= 1

    def _track(self, future: Future[Any]) -> None:
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)

    def close(self, timeout_s: float | None = None) -> None:
        """Wait (at most ``timeout_s``) for running store calls to finish, then stop.

        Called on graceful shutdown before the store closes, so a batch whose client already
        gave up (503) still ends its transaction cleanly instead of being cut mid-commit.
        """
        with self._lock:
            running = set(self._running)
        wait(running, timeout=timeout_s)
        self._ingest.shutdown(wait=False, cancel_futures=True)
        self._lookups.shutdown(wait=False, cancel_futures=True)
