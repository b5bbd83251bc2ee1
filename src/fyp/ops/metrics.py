"""Prometheus metrics: one definition of every metric, hooks to update them, the exposition.

With several worker processes (``fyp serve --workers N``) prometheus-client runs in its
multiprocess mode: each worker writes its samples to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (set by ``fyp serve`` before the workers start) and ``/metrics``,
whichever worker answers it, merges the files of all of them. Counters and histograms are
summed; per-worker gauges (model version, online-state size) keep a ``pid`` label.

Label values are bounded on purpose: routes are templates (``/v1/users/{user_id}/feed``), never
raw paths, and stage names come from code, so a scrape stays small however much traffic there is.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Request latency: from 1 ms (a cached read) to 10 s (the ingest timeout's order of magnitude).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A pipeline stage has a budget of tens of milliseconds: finer buckets at the low end.
STAGE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

REQUEST_SECONDS = Histogram(
    "fyp_http_request_duration_seconds",
    "HTTP request latency by route template, until the last body byte is sent.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS = Counter(
    "fyp_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
EVENTS_INGESTED = Counter("fyp_events_ingested", "Events newly stored in the event log.")
EVENTS_DUPLICATE = Counter("fyp_events_duplicate", "Events received again (same event_id).")
EVENTS_REJECTED = Counter("fyp_events_rejected", "Events refused as invalid (reported by index).")
INGEST_REFUSED = Counter(
    "fyp_ingest_refused",
    "Event batches answered 429/503 without being acknowledged, by reason.",
    ["reason"],
)
MODEL_VERSION = Gauge(
    "fyp_model_version",
    "1 for the model version this worker serves.",
    ["version"],
    multiprocess_mode="liveall",
)
ONLINE_STATE_SIZE = Gauge(
    "fyp_online_state_size",
    "Entries in the online state (users, videos, ...), as this worker last saw it.",
    ["kind"],
    multiprocess_mode="liveall",
)
STAGE_SECONDS = Histogram(
    "fyp_pipeline_stage_duration_seconds",
    "Time spent in each feed pipeline stage.",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
STAGE_DROPPED = Counter(
    "fyp_pipeline_stage_dropped", "Candidates removed by each stage (filters).", ["stage"]
)
STAGE_FAILURES = Counter(
    "fyp_pipeline_stage_failures",
    "Stages skipped because they failed, overran their budget or broke their contract.",
    ["stage", "reason"],
)
FEED_FALLBACKS = Counter(
    "fyp_feed_fallbacks", "Feeds served from a fallback instead of the full pipeline.", ["reason"]
)
LEASE_HELD = Gauge(
    "fyp_lease_held",
    "1 while this process holds the named lease.",
    ["name"],
    multiprocess_mode="liveall",
)

_model_lock = threading.Lock()
_model_version: str | None = None


# -- hooks for the other parts -----------------------------------------------------------------


# A labelled child per stage name, looked up once: ``labels()`` validates and locks on every
# call (about 2 us, twenty-odd times a feed); the stage names are the pipeline's, a fixed few.
_STAGE_TIMERS: dict[str, Histogram] = {}


def observe_stage(name: str, seconds: float, dropped: int = 0, failed: str | None = None) -> None:
    """Record one run of a pipeline stage.

    Args:
        name: the stage's ``name`` (its metrics label).
        seconds: wall time the stage took.
        dropped: candidates it removed (only filters drop).
        failed: why it was skipped (``"error"``, ``"timeout"``, ``"contract"``), or None.
    """
    timer = _STAGE_TIMERS.get(name)
    if timer is None:
        timer = _STAGE_TIMERS[name] = STAGE_SECONDS.labels(name)
    timer.observe(seconds)
    if dropped:
        STAGE_DROPPED.labels(name).inc(dropped)
    if failed is not None:
        STAGE_FAILURES.labels(name, failed).inc()


def observe_fallback(reason: str) -> None:
    """Count a feed served from a fallback; ``reason`` should be a short fixed word."""
    FEED_FALLBACKS.labels(reason).inc()


def set_model_version(version: str | None) -> None:
    """Report the model version this worker now serves (None: no model)."""
    global _model_version
    with _model_lock:
        if version == _model_version:
            return
        if _model_version is not None:
            MODEL_VERSION.remove(_model_version)
        if version is not None:
            MODEL_VERSION.labels(version).set(1)
        _model_version = version


def set_online_state_size(kind: str, size: int) -> None:
    """Report how many entries of one kind (``users``, ``videos``, ...) the online state holds."""
    ONLINE_STATE_SIZE.labels(kind).set(size)


def record_ingest(stored: int, duplicates: int, rejected: int) -> None:
    """Count the outcome of one ingested batch."""
    if stored:
        EVENTS_INGESTED.inc(stored)
    if duplicates:
        EVENTS_DUPLICATE.inc(duplicates)
    if rejected:
        EVENTS_REJECTED.inc(rejected)


def record_ingest_refused(reason: str) -> None:
    """Count a batch refused before it was stored (``overload``, ``timeout``, ``store_down``)."""
    INGEST_REFUSED.labels(reason).inc()


def set_lease_held(name: str, held: bool) -> None:
    LEASE_HELD.labels(name).set(1 if held else 0)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(method, route).observe(seconds)
    REQUESTS.labels(method, route, str(status)).inc()


# -- exposition --------------------------------------------------------------------------------


def exposition(multiprocess_dir: Path | None) -> tuple[bytes, str]:
    """The text exposition of every metric and its content type.

    Args:
        multiprocess_dir: prometheus-client's multiprocess directory when several workers
            share it (their samples are merged); None for this process's own registry.
    """
    if multiprocess_dir is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    collector = multiprocess.MultiProcessCollector  # untyped in prometheus-client
    collector(registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_exited(multiprocess_dir: Path | None) -> None:
    """Drop this worker's live gauges from the shared directory when it shuts down."""
    if multiprocess_dir is not None:
        dead = multiprocess.mark_process_dead
        dead(os.getpid(), str(multiprocess_dir))  # type: ignore[no-untyped-call]
