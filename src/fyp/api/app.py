"""The ASGI application: services wired once, routes mounted, one error shape."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fyp import __version__
from fyp.api import docs, errors
from fyp.api.deps import Services
from fyp.api.limits import BodySizeLimit
from fyp.api.routes import events, health, keys, users, videos
from fyp.auth import KeyChecker
from fyp.catalog import Catalog
from fyp.config import Settings
from fyp.events import EventIngestor
from fyp.storage.data import DataStore, open_data_store

log = logging.getLogger("fyp.api")


def build_services(settings: Settings, store: DataStore | None = None) -> Services:
    store = store or open_data_store(settings.resolved_database_url())
    return Services(
        settings=settings,
        store=store,
        ingestor=EventIngestor(store, settings.ingest),
        catalog=Catalog(store, settings.catalog),
        keys=KeyChecker(store, settings.api.key_cache_seconds),
    )


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the app; ``services`` is for tests that share a store with the app."""
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            services.store.migrate()
        log.info("fyp %s serving, store %s", __version__, _redact(services.store.url))
        yield
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
    for module in (health, events, users, videos, keys):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (several workers): settings from ``FYP_*``."""
    return create_app(Settings())


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
