"""/metrics after real traffic, and the hooks other parts report through."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from prometheus_client.parser import text_string_to_metric_families

from fyp.ops import metrics
from tests.api.support import event, seed
from tests.conftest import Api

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: Api) -> Samples:
    r = api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: Samples, name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_and_events_are_counted_per_route_template(api: Api) -> None:
    seed(api.store)
    before = scrape(api)
    batch = [event("m1"), event("m2", user_id="u2"), event("m1"), event("bad", user_id="nobody")]
    r = api.client.post("/v1/events", json={"events": batch}, headers=api.app)
    assert r.status_code == 200, r.text
    for vid in ("v1", "v2", "missing"):
        api.client.get(f"/v1/videos/{vid}", headers=api.admin)
    api.client.get("/no/such/path")
    after = scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("fyp_events_ingested_total") == 2
    assert delta("fyp_events_duplicate_total") == 1
    assert delta("fyp_events_rejected_total") == 1
    # one series per template, not per video id; 200 and 404 are told apart
    route = {"method": "GET", "route": "/v1/videos/{video_id}"}
    assert delta("fyp_http_request_duration_seconds_count", **route) == 3
    assert delta("fyp_http_requests_total", **route, status="200") == 2
    assert delta("fyp_http_requests_total", **route, status="404") == 1
    assert not any("missing" in str(k) for k in after)
    assert delta("fyp_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    post = {"method": "POST", "route": "/v1/events"}
    assert delta("fyp_http_request_duration_seconds_count", **post) == 1
    # the histogram's buckets are cumulative and end with +Inf == count
    inf = value(after, "fyp_http_request_duration_seconds_bucket", **post, le="+Inf")
    assert inf == value(after, "fyp_http_request_duration_seconds_count", **post)


def test_a_scrape_reports_what_the_online_state_holds(api: Api) -> None:
    seed(api.store)
    assert api.services.online is not None
    api.services.online.forget_user("u1")
    before = value(scrape(api), "fyp_online_state_size", kind="users")
    # A user's state is built on their first feed request (a cold user's events alone only
    # update the videos' side).
    r = api.client.get("/v1/users/u1/feed", headers=api.app)
    assert r.status_code == 200, r.text
    r = api.client.post("/v1/events", json={"events": [event("s1")]}, headers=api.app)
    assert r.status_code == 200, r.text
    after = scrape(api)
    sizes = api.services.online.sizes()
    assert value(after, "fyp_online_state_size", kind="users") == sizes["users"] == before + 1
    assert value(after, "fyp_online_state_size", kind="videos") == sizes["videos"] >= 1


def test_pipeline_model_and_online_state_hooks_show_up(api: Api) -> None:
    before = scrape(api)
    metrics.observe_stage("TestOnlyFilter", 0.002, dropped=7)
    metrics.observe_stage("TestOnlyFilter", 0.004, dropped=0, failed="timeout")
    metrics.observe_fallback("test_only")
    metrics.set_online_state_size("test_users", 42)
    after = scrape(api)
    stage = {"stage": "TestOnlyFilter"}

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("fyp_pipeline_stage_duration_seconds_count", **stage) == 2
    assert delta("fyp_pipeline_stage_dropped_total", **stage) == 7
    assert delta("fyp_pipeline_stage_failures_total", **stage, reason="timeout") == 1
    assert delta("fyp_pipeline_stage_failures_total", **stage, reason="error") == 0
    assert delta("fyp_feed_fallbacks_total", reason="test_only") == 1
    assert value(after, "fyp_online_state_size", kind="test_users") == 42


@dataclass
class FakeModels:
    version: str


class FakeRegistry:
    def __init__(self) -> None:
        self.models: FakeModels | None = None

    def current(self) -> FakeModels | None:
        return self.models


def test_the_served_model_version_is_the_only_one_reported(api: Api) -> None:
    registry = FakeRegistry()
    api.services.models = cast(Any, registry)  # only .current().version is read here
    assert not any(k[0] == "fyp_model_version" for k in scrape(api))
    registry.models = FakeModels("2026-01-01T00-00-00-a")
    assert value(scrape(api), "fyp_model_version", version="2026-01-01T00-00-00-a") == 1
    registry.models = FakeModels("2026-01-02T00-00-00-b")  # a hot swap
    after = scrape(api)
    assert value(after, "fyp_model_version", version="2026-01-02T00-00-00-b") == 1
    assert [k for k in after if k[0] == "fyp_model_version"] == [
        ("fyp_model_version", (("version", "2026-01-02T00-00-00-b"),))
    ]


def test_request_latency_ends_with_the_body_not_the_background_work() -> None:
    """A route's background task (the feed's served-log write) runs after the response is sent
    and is not part of the request's latency."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from starlette.background import BackgroundTask
    from starlette.responses import PlainTextResponse

    from fyp.api.observe import RequestMetrics

    app = FastAPI()

    @app.get("/slow-after")
    def slow_after() -> PlainTextResponse:
        return PlainTextResponse("ok", background=BackgroundTask(time.sleep, 0.3))

    app.add_middleware(RequestMetrics)
    labels = {"method": "GET", "route": "/slow-after"}
    seconds = metrics.REQUEST_SECONDS.labels(*labels.values())
    before = _sum(seconds)
    with TestClient(app) as client:
        t = time.perf_counter()
        assert client.get("/slow-after").status_code == 200
        assert time.perf_counter() - t >= 0.3  # the test client waits for the background task
    assert 0 < _sum(seconds) - before < 0.2


def _sum(child: Any) -> float:
    return float(
        next(s.value for m in child.collect() for s in m.samples if s.name.endswith("_sum"))
    )
