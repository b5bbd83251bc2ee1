"""The web routes without a browser: sessions, login, access control, forms."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fyp.api.app import build_services, create_app
from fyp.auth import create_key
from fyp.config import Settings, WebSettings
from fyp.storage.data import open_data_store
from fyp.training import ModelRegistry, Trainer
from fyp.web.session import COOKIE
from tests.conftest import Api
from tests.web.conftest import load_demo


def login(api: Api) -> None:
    key = api.admin["Authorization"].split()[1]
    r = api.client.post(
        "/dashboard/login",
        data={"api_key": key, "next": "/dashboard/models"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/models"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_the_feed_page_and_a_session_with_an_app_key_only(api: Api) -> None:
    page = api.client.get("/")
    assert page.status_code == 200
    assert "/static/feed.js" in page.text
    assert api.client.get("/static/feed.js").status_code == 200
    r = api.client.post(
        "/web/session", json={"region": "gb", "language": "EN", "interests": ["Dance"]}
    )
    assert r.status_code == 200
    body = r.json()
    user = api.store.get_user(body["user_id"])
    assert user is not None and user.region == "GB" and user.interests == ["dance"]
    # The browser gets an app key: it may read feeds, never administer.
    auth = {"Authorization": f"Bearer {body['key']}"}
    assert api.client.get(f"/v1/users/{body['user_id']}", headers=auth).status_code == 200
    assert api.client.get("/v1/experiments", headers=auth).status_code == 403
    again = api.client.post("/web/session", json={"user_id": body["user_id"]}).json()
    assert again == body
    missing = api.client.post("/web/session", json={"user_id": "nobody"})
    assert missing.status_code == 404


def test_the_public_feed_can_be_turned_off(settings: Settings) -> None:
    settings.web = WebSettings(public_feed=False)
    services = build_services(settings, open_data_store("memory://"))
    with TestClient(create_app(settings, services)) as client:
        assert client.get("/").status_code == 404
        assert client.post("/web/session", json={}).status_code == 404


def test_dashboard_pages_need_a_session(api: Api) -> None:
    for path in ("/dashboard", "/dashboard/trending", "/dashboard/models"):
        r = api.client.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/dashboard/login?next=")
    r = api.client.post("/dashboard/moderation/v1", data={"decision": "remove"},
                        follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and "login" in r.headers["location"]
    api.client.cookies.set(COOKIE, "forged.token")
    assert api.client.get("/dashboard", follow_redirects=False).status_code == 303


def test_login_refuses_app_keys_and_never_redirects_off_site(api: Api) -> None:
    app_key = api.app["Authorization"].split()[1]
    r = api.client.post("/dashboard/login", data={"api_key": app_key})
    assert "not valid" in r.text
    assert COOKIE not in r.cookies
    admin = api.admin["Authorization"].split()[1]
    r = api.client.post(
        "/dashboard/login",
        data={"api_key": admin, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/dashboard"


def test_password_login_only_when_configured(settings: Settings) -> None:
    store = open_data_store("memory://")
    settings.web = WebSettings(admin_user="pm", admin_password="pw")  # type: ignore[arg-type]
    with TestClient(create_app(settings, build_services(settings, store))) as client:
        bad = client.post("/dashboard/login", data={"username": "pm", "password": "nope"})
        assert "not valid" in bad.text
        ok = client.post(
            "/dashboard/login", data={"username": "pm", "password": "pw"}, follow_redirects=False
        )
        assert ok.status_code == 303
        assert client.get("/dashboard/models").status_code == 200
    settings.web = WebSettings()
    with TestClient(create_app(settings, build_services(settings, store))) as client:
        r = client.post("/dashboard/login", data={"username": "", "password": ""})
        assert "not valid" in r.text


def test_experiment_form_creates_starts_and_refuses_bad_specs(api: Api) -> None:
    login(api)
    form = {
        "name": "form-exp",
        "primary_metric": "like_rate",
        "guardrails": "skip_rate",
        "traffic": "50",
        "layer": "default",
        "arm0_name": "control",
        "arm0_overrides": "",
        "arm1_name": "more-explore",
        "arm1_weight": "2",
        "arm1_overrides": '{"exploration_share": 0.3}',
        "start": "1",
    }
    r = api.client.post("/dashboard/experiments", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    exp = api.client.get("/v1/experiments/form-exp", headers=api.admin).json()
    assert exp["state"] == "running"
    assert exp["traffic"] == 0.5 and exp["primary_metric"] == "like_rate"
    assert exp["guardrails"] == ["skip_rate"]
    assert exp["arms"][1] == {
        "name": "more-explore", "weight": 2.0, "overrides": {"exploration_share": 0.3},
    }  # fmt: skip
    page = api.client.get("/dashboard/experiments/form-exp")
    assert page.status_code == 200 and "Sample ratio check" in page.text
    dup = api.client.post("/dashboard/experiments", data=form)
    assert "exists already" in dup.text
    bad = api.client.post(
        "/dashboard/experiments", data={**form, "name": "x2", "arm1_overrides": "{oops"}
    )
    assert "not valid JSON" in bad.text
    assert api.client.get("/v1/experiments/x2", headers=api.admin).status_code == 404
    stop = api.client.post("/dashboard/experiments/form-exp/stop", follow_redirects=False)
    assert stop.status_code == 303
    assert api.client.get("/v1/experiments/form-exp", headers=api.admin).json()["state"] == (
        "stopped"
    )


def test_models_page_without_models(api: Api) -> None:
    login(api)
    page = api.client.get("/dashboard/models")
    assert "No models trained yet" in page.text
    r = api.client.post("/dashboard/models/nope/activate")
    assert r.status_code == 404


def test_models_page_lists_versions_and_rolls_back(settings: Settings) -> None:
    store = open_data_store("memory://")
    load_demo(store)
    older = Trainer(settings, store).run(activate=True, evaluate=False).version
    newer = Trainer(settings, store).run(activate=True, evaluate=False).version
    services = build_services(settings, store)
    _, admin = create_key(store, "admin", "t")
    with TestClient(create_app(settings, services)) as client:
        client.post("/dashboard/login", data={"api_key": admin})
        page = client.get("/dashboard/models").text
        assert older in page and newer in page
        assert page.count("Roll back") == 1  # only the version that is not active
        r = client.post(f"/dashboard/models/{older}/activate", follow_redirects=False)
        assert r.status_code == 303
    assert ModelRegistry(settings).active_version() == older
