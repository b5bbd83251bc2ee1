from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

SPEC: dict[str, Any] = {
    "name": "share-boost",
    "hypothesis": "Weighting shares more raises watch time",
    "primary_metric": "watch_ms_per_user",
    "guardrails": ["skip_rate"],
    "traffic": 0.5,
    "arms": [
        {"name": "control"},
        {"name": "shares", "overrides": {"blend": {"share": 8.0}}},
    ],
}


def test_lifecycle(api: Api) -> None:
    c = api.client
    r = c.post("/v1/experiments", json=SPEC, headers=api.admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "draft" and body["control"] == "control"
    assert body["salt"] == "share-boost" and body["layer"] == "default"
    assert c.post("/v1/experiments", json=SPEC, headers=api.admin).status_code == 409

    r = c.get("/v1/experiments/share-boost/results", headers=api.admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_started"

    r = c.post("/v1/experiments/share-boost/start", headers=api.admin)
    assert r.status_code == 200
    assert r.json()["state"] == "running" and r.json()["buckets"] == [0, 5000]
    assert r.json()["started_ms"] > 0
    assert c.post("/v1/experiments/share-boost/start", headers=api.admin).status_code == 409
    # The app's assigner sees it at once (start invalidates this process's cache).
    arms = [api.services.assigner.assign(f"u{i}").arms for i in range(400)]
    assert 150 < sum(1 for a in arms if a) < 250

    listed = c.get("/v1/experiments?state=running", headers=api.admin).json()["experiments"]
    assert [e["name"] for e in listed] == ["share-boost"]
    assert c.get("/v1/experiments?state=draft", headers=api.admin).json() == {"experiments": []}

    r = c.get("/v1/experiments/share-boost/results", headers=api.admin)
    assert r.status_code == 200
    res = r.json()
    assert res["status"] == "not_enough_data"
    assert res["srm"]["mismatch"] is False
    assert res["metrics"][0]["name"] == "watch_ms_per_user" and res["metrics"][0]["primary"]
    assert res["metrics"][0]["comparisons"][0]["status"] == "not_enough_data"

    r = c.post("/v1/experiments/share-boost/stop", headers=api.admin)
    assert r.json()["state"] == "stopped"
    assert c.post("/v1/experiments/share-boost/stop", headers=api.admin).status_code == 409
    assert api.services.assigner.assign("u1").arms == {}
    assert c.get("/v1/experiments/share-boost", headers=api.admin).json()["state"] == "stopped"


def test_unknown_override_is_a_clear_422(api: Api) -> None:
    bad = {**SPEC, "arms": [{"name": "a"}, {"name": "b", "overrides": {"blend": {"shares": 8}}}]}
    r = api.client.post("/v1/experiments", json=bad, headers=api.admin)
    assert r.status_code == 422
    assert "unknown feed setting(s): blend.shares" in r.json()["error"]["message"]


def test_layer_full_and_not_found(api: Api) -> None:
    c = api.client
    for name in ("one", "two"):
        spec = {**SPEC, "name": name, "traffic": 0.6}
        assert c.post("/v1/experiments", json=spec, headers=api.admin).status_code == 201
    assert c.post("/v1/experiments/one/start", headers=api.admin).status_code == 200
    r = c.post("/v1/experiments/two/start", headers=api.admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "layer_full"
    for path in ("", "/start", "/stop", "/results"):
        method = c.get if path in ("", "/results") else c.post
        r = method(f"/v1/experiments/nope{path}", headers=api.admin)
        assert r.status_code == 404, path


@pytest.mark.parametrize("path", ["/v1/experiments", "/v1/experiments/x/results"])
def test_admin_scope_only(api: Api, path: str) -> None:
    assert api.client.get(path, headers=api.app).status_code == 403
    assert api.client.get(path).status_code == 401
