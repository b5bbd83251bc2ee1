"""The ASGI application: services wired once, routes mounted, one error shape."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from fyp import __version__
from fyp.api import docs, errors
from fyp.api.backpressure import StoreGate  # -- scale --
from fyp.api.deps import Services
from fyp.api.limits import BodySizeLimit
from fyp.api.observe import RequestMetrics  # -- scale --
from fyp.api.routes import analytics as analytics_routes  # -- web --
from fyp.api.routes import events, feed, health, keys, users, videos
from fyp.api.routes import experiments as experiment_routes
from fyp.api.routes import metrics as metrics_routes  # -- scale --
from fyp.auth import KeyChecker
from fyp.catalog import Catalog
from fyp.config import Settings
from fyp.events import EventIngestor
from fyp.events.online import OnlineUpdater
from fyp.experiments.assignment import StoreAssigner
from fyp.ops import metrics  # -- scale --
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.pipeline.clients import FeedClients
from fyp.pipeline.feeds import build_for_you
from fyp.pipeline.service import FeedService
from fyp.storage.cache import open_online_state
from fyp.storage.data import DataStore, StoreUnavailable, open_data_store
from fyp.training.artefacts import ModelRegistry
from fyp.training.trainer import ScheduledTrainer
from fyp.web import install as install_web  # -- web --

log = logging.getLogger("fyp.api")


def build_services(settings: Settings, store: DataStore | None = None) -> Services:
    store = store or open_data_store(
        settings.resolved_database_url(),
        **_store_options(settings),  # -- scale --
    )
    services = Services(
        settings=settings,
        store=store,
        ingestor=EventIngestor(store, settings.ingest),
        catalog=Catalog(store, settings.catalog),
        keys=KeyChecker(store, settings.api.key_cache_seconds),
        assigner=StoreAssigner(store, settings.experiments.cache_seconds),  # -- experiments --
    )
    _wire_feed(services)  # -- feed --
    services.store_gate = StoreGate(settings.server)  # -- scale --
    return services


# -- scale --
def _store_options(settings: Settings) -> dict[str, float]:
    cfg = settings.server
    return {
        "pool_size": cfg.db_pool_size,
        "pool_timeout_s": cfg.db_pool_timeout_s,
        "connect_timeout_s": cfg.db_connect_timeout_s,
        "statement_timeout_s": cfg.db_statement_timeout_s,
    }


# -- feed --
def _wire_feed(services: Services) -> None:
    """Online state, catalog index, models, the For You feed, and the ingest post-commit hook."""
    settings, store = services.settings, services.store
    online = open_online_state(settings.online)
    catalog = CatalogIndex(store, settings.serving.catalog_refresh_s)
    # Hot-swaps load in a background thread: a request never waits for (or blocks the event loop
    # on) a model load; it serves the loaded version until the new one is ready.
    registry = ModelRegistry(settings, background=True)
    clients = FeedClients(store=store, online=online, catalog=catalog, models=registry)
    updater = OnlineUpdater(online, catalog, store, settings)
    services.online = online
    services.models = registry
    services.feed = FeedService(settings, clients, build_for_you(settings, clients), updater)
    if settings.online.backend == "redis":
        # Shared state: any process that stores events (a CLI import too) keeps it current.
        services.ingestor.on_stored = updater.on_stored


def _store_retried(settings: Settings, what: str, fn: Callable[[], None]) -> None:
    """``fn()``, retried while the store is unavailable, for up to
    ``server.startup_store_wait_s`` (then the last error propagates and start-up fails)."""
    deadline = time.monotonic() + settings.server.startup_store_wait_s
    pause = 0.25
    while True:
        try:
            fn()
            return
        except StoreUnavailable as e:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            log.warning(
                "store unavailable at start-up (%s), retrying for %.0f s: %s", what, left, e
            )
            time.sleep(min(pause, left))
            pause = min(2 * pause, 2.0)


def _start_feed(services: Services) -> None:
    if services.feed is None:
        return
    # A serving process keeps its own online state current from the events it stores.
    services.ingestor.on_stored = services.feed.updater.on_stored
    # The catalog index loads now, before the process reports ready and before gc.freeze:
    # loaded by the first feed request instead (Redis, or no warm-up from the log), a million
    # videos held that request for over a minute and were walked by every full collection.
    settings = services.settings
    _store_retried(settings, "catalog index", services.feed.clients.catalog.preload)
    # An in-process online state starts empty: rebuild video counters and trending from the
    # newest logged events (Redis keeps them across restarts). A warm-up the store cuts short
    # is not retried (it would count its events twice): the process serves what it read.
    if settings.online.backend == "memory":
        try:
            n = services.feed.updater.warm_videos()
        except StoreUnavailable as e:
            log.warning("online state warm-up cut short, the store is unavailable: %s", e)
        else:
            if n:
                log.info("online state warmed from %d logged events", n)
    # One BLAS/OpenMP thread per request: on a shared 2-core box a multi-threaded fold-in or
    # dot product contends with itself (measured: query build p50 64 ms -> 4 ms). Loading the
    # models first brings their OpenMP runtime in, so the limit reaches it too.
    if isinstance(services.models, ModelRegistry):
        services.models.refresh()  # the first load happens here, before any request
    else:
        services.models.current()
    threadpool_limits(limits=1)
    # What start-up loaded lives as long as the process: keep it out of the cyclic GC, whose
    # full collections over it otherwise stall a feed request by tens of milliseconds.
    gc.collect()
    gc.freeze()
    # A request's objects die by reference counting when it ends; collecting every 700 new
    # objects scanned them mid-request several times a feed (0.5 ms of its CPU) for nothing.
    gc.set_threshold(services.settings.server.gc_threshold, *gc.get_threshold()[1:])


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the app; ``services`` is for tests that share a store with the app."""
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            _store_retried(settings, "migrations", services.store.migrate)
        log.info("fyp %s serving, store %s", __version__, _redact(services.store.url))
        _start_feed(services)  # -- feed --
        # -- scheduled training -- (a no-op unless settings.training.schedule_seconds > 0)
        trainer = ScheduledTrainer(settings, services.store)
        trainer.start()
        app.state.trainer = trainer
        yield
        # -- scale -- uvicorn has drained in-flight requests; let abandoned batches finish too
        services.store_gate.close(settings.server.graceful_shutdown_s)
        metrics.worker_exited(settings.server.metrics_dir)
        trainer.stop()
        if services.feed is not None:  # -- feed --
            services.feed.close()
        if services.online is not None:
            services.online.close()
        services.store.close()

    app = FastAPI(
        title="fyp",
        version=__version__,
        summary="The For You engine for short-video apps",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    docs.install(app)
    # The router tries routes in this order, each a regex match and more: the two that carry
    # nearly all the traffic come first.
    app.include_router(feed.router)  # -- feed --
    for module in (events, health, users, videos, keys):
        app.include_router(module.router)
    app.include_router(experiment_routes.router)  # -- experiments --
    app.include_router(analytics_routes.router)  # -- web --
    install_web(app, services)  # -- web -- pages at / and /dashboard
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    if settings.server.metrics:  # -- scale --
        app.include_router(metrics_routes.router)
        app.add_middleware(RequestMetrics)
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (several workers): settings from ``FYP_*``."""
    return create_app(Settings())


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
