"""Request metrics: latency and status per route template, as a plain ASGI middleware."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fyp.ops import metrics

UNMATCHED = "<unmatched>"


class RequestMetrics:
    """Times every HTTP request until its last body byte is sent.

    The label is the route's template (``/v1/users/{user_id}/feed``), read from the scope the
    router filled in, so label values stay bounded; paths no route matched share one label.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering
        sent: float | None = None  # when the last body byte went out

        async def timed_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                sent = time.perf_counter()

        try:
            await self.app(scope, receive, timed_send)
        finally:
            # Background tasks run after the body is sent, still inside the app call: they are
            # not the request's latency (the feed's served-log write is one).
            end = sent if sent is not None else time.perf_counter()
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            metrics.observe_request(scope.get("method", "GET"), template, status, end - start)
