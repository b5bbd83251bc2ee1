"""Mounting the web pages on the API app (``create_app`` calls :func:`install`)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from fyp.api.deps import Services
from fyp.web import dashboard, feed
from fyp.web.state import HERE, WebState


def install(app: FastAPI, services: Services) -> None:
    """Serve ``/`` (swipe feed), ``/dashboard`` and ``/static`` when ``web.enabled``."""
    if not services.settings.web.enabled:
        return
    app.state.web = WebState(services)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(feed.router)
    app.include_router(dashboard.router)
