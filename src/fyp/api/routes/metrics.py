from __future__ import annotations

import logging

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fyp.api.deps import Services, ServicesDep
from fyp.ops import metrics
from fyp.storage.cache import OnlineUnavailable

router = APIRouter(tags=["health"])
log = logging.getLogger("fyp.api")


def _refresh(services: Services) -> None:
    # The registry re-reads the active pointer at most every reload_seconds, so this is cheap;
    # it keeps the gauge right even in a worker that served no feed since the last swap.
    try:
        models = services.models.current()
    except Exception:  # a scrape must not fail because a model failed to load
        log.exception("model registry failed during a metrics scrape")
        return
    metrics.set_model_version(None if models is None else models.version)
    if services.online is not None:
        try:
            for kind, n in services.online.sizes().items():
                metrics.set_online_state_size(kind, n)
        except OnlineUnavailable as e:  # the scrape still answers; the gauge keeps its value
            log.warning("online state size unavailable during a metrics scrape: %s", e)


@router.get(
    "/metrics",
    summary="Prometheus metrics of every worker",
    description=(
        "Request latency per route, events ingested/duplicate/rejected, refused batches, "
        "pipeline stage timings and drops, model version and online-state size. No key is "
        "needed (like /healthz): expose the port to your scraper's network only."
    ),
)
async def prometheus_metrics(services: ServicesDep) -> Response:
    await run_in_threadpool(_refresh, services)
    body, content_type = metrics.exposition(services.settings.server.metrics_dir)
    return Response(body, media_type=content_type)
