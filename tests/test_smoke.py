from tests.conftest import Api


def test_health_and_ready(api_on: Api) -> None:
    assert api_on.client.get("/healthz").json() == {"status": "ok"}
    r = api_on.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"
