"""The two routes that carry nearly all the traffic stay cheap for the framework to dispatch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter

# FastAPI's own test of whether it awaits a callable or runs it in its thread pool (for the
# endpoint and for every dependency alike): private, so the pinned version is what it is.
from fastapi.dependencies.models import Dependant, _is_coroutine_callable
from fastapi.routing import APIRoute

from fyp.api.routes import events, feed
from tests.conftest import Api

HOT = {("GET", "/v1/users/{user_id}/feed"), ("POST", "/v1/events")}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def test_hot_routes_never_hop_through_the_thread_pool() -> None:
    # FastAPI runs a plain ``def`` endpoint or dependency in its thread pool: a worker thread and
    # two event-loop wake-ups on every request (about 0.3 ms of CPU a feed, measured).
    routes = [
        route
        for route in (*feed.router.routes, *events.router.routes)
        if isinstance(route, APIRoute)
        and any((method, route.path) in HOT for method in route.methods or ())
    ]
    assert len(routes) == len(HOT), [route.path for route in routes]
    for route in routes:
        calls = [route.endpoint, *_calls(route.dependant)]
        sync = [
            getattr(call, "__qualname__", repr(call))
            for call in calls
            if not _is_coroutine_callable(call)
        ]
        assert not sync, f"{route.path} runs sync callables in the thread pool: {sync}"


def test_hot_routes_are_matched_first(api: Api) -> None:
    # Starlette tries routes in order, each a regex match and more: the feed's and the events'
    # routers come before the catalog, user and admin ones, right after the docs' three routes.
    routers: list[APIRouter | None] = [
        getattr(route, "original_router", None)
        for route in api.client.app.routes  # type: ignore[attr-defined]
    ]
    assert routers.index(feed.router) <= 4 and routers.index(events.router) <= 4, routers
