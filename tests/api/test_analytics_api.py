from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import Api


def seed(api: Api) -> None:
    api.client.post("/v1/users", json={"users": [{"id": "c1"}, {"id": "u1", "region": "FR"}]},
                    headers=api.admin)  # fmt: skip
    api.client.put("/v1/videos/v1", json={"creator_id": "c1", "hashtags": ["dance"],
                   "duration_ms": 1000}, headers=api.admin)  # fmt: skip
    events: list[dict[str, object]] = [
        {"event_id": "a", "user_id": "u1", "type": "impression", "video_id": "v1"},
        {"event_id": "b", "user_id": "u1", "type": "play", "video_id": "v1", "watch_ms": 1000},
        {"event_id": "c", "user_id": "u1", "type": "like", "video_id": "v1"},
        {"event_id": "d", "user_id": "u1", "type": "report", "video_id": "v1"},
    ]
    now = datetime.now(UTC).isoformat()
    r = api.client.post(
        "/v1/events", json={"events": [{**e, "ts": now} for e in events]}, headers=api.app
    )
    assert r.json()["stored"] == 4


def test_analytics_need_an_admin_key_or_a_dashboard_session(api: Api) -> None:
    assert api.client.get("/v1/analytics/overview").status_code == 401
    assert api.client.get("/v1/analytics/overview", headers=api.app).status_code == 403
    assert api.client.get("/v1/analytics/overview", headers=api.admin).status_code == 200
    key = api.admin["Authorization"].split()[1]
    api.client.post("/dashboard/login", data={"api_key": key})
    assert api.client.get("/v1/analytics/overview").status_code == 200


def test_analytics_answers(api: Api) -> None:
    seed(api)
    h = api.admin
    overview = api.client.get("/v1/analytics/overview?hours=1&step_minutes=5", headers=h).json()
    assert overview["totals"]["events"] == 4
    assert overview["totals"]["completion_rate"] == 1.0
    assert len(overview["series"]["t"]) == 12
    trending = api.client.get("/v1/analytics/trending?hours=1", headers=h).json()
    assert trending["hashtags"][0]["name"] == "dance"
    assert trending["rising"][0]["video_id"] == "v1"
    creators = api.client.get("/v1/analytics/creators", headers=h).json()
    assert creators["creators"][0]["regions"] == {"FR": 1}
    one = api.client.get("/v1/analytics/creators/c1", headers=h).json()
    assert one["videos"][0]["video_id"] == "v1"
    assert api.client.get("/v1/analytics/creators/zz", headers=h).status_code == 404
    queue = api.client.get("/v1/analytics/moderation", headers=h).json()["queue"]
    assert [(q["video"]["id"], q["why"], q["reports"]) for q in queue] == [("v1", "reported", 1)]
    bad = api.client.get("/v1/analytics/overview?hours=0", headers=h)
    assert bad.status_code == 422
