"""API keys and scopes: 401 without a working key, 403 for the wrong scope, JSON errors always."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from fyp.auth import KEY_PREFIX, hash_key
from fyp.config import Settings
from tests.api.support import assert_error, assert_healthy, event, seed, serve, with_settings
from tests.conftest import Api

# Every write of the catalog, the graph, moderation and keys needs an admin key.
ADMIN_ROUTES: list[tuple[str, str, Any]] = [
    ("PUT", "/v1/users/u9", {}),
    ("POST", "/v1/users", {"users": [{"id": "u9"}]}),
    ("PUT", "/v1/users/u1/following/c1", None),
    ("DELETE", "/v1/users/u1/following/c1", None),
    ("PUT", "/v1/users/u1/blocks/c1", None),
    ("DELETE", "/v1/users/u1/blocks/c1", None),
    ("PUT", "/v1/videos/v9", {"creator_id": "c1"}),
    ("POST", "/v1/videos", {"videos": [{"id": "v9", "creator_id": "c1"}]}),
    ("POST", "/v1/videos/v1/moderation", {"state": "removed"}),
    ("POST", "/v1/videos/v1/comments", {"user_id": "u1", "text": "hi"}),
    ("POST", "/v1/keys", {"scope": "admin"}),
    ("GET", "/v1/keys", None),
    ("DELETE", "/v1/keys/abc", None),
]
APP_ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/events", [event("e1")]),
    ("GET", "/v1/users/u1", None),
    ("GET", "/v1/users/u1/following", None),
    ("GET", "/v1/users/u1/blocks", None),
    ("GET", "/v1/videos", None),
    ("GET", "/v1/videos/v1", None),
    ("GET", "/v1/videos/v1/comments", None),
]


@pytest.fixture
def api(api: Api) -> Api:
    seed(api.store)
    return api


@pytest.fixture
def uncached(settings: Settings) -> Iterator[Api]:
    """The API with key lookups never cached, so revocation is seen at once."""
    with serve(with_settings(settings, api={"key_cache_seconds": 0})) as api:
        seed(api.store)
        yield api


def _snapshot(api: Api) -> tuple[object, ...]:
    s = api.store
    return (
        s.count_events(),
        s.get_user("u9"),
        s.get_video("v9"),
        s.get_video("v1"),
        s.following("u1"),
        s.blocked("u1"),
        s.comments("v1"),
        len(s.list_api_keys()),
    )


def test_every_documented_v1_route_needs_a_key(api: Api) -> None:
    """Walks the OpenAPI paths, so a route added later is checked too (before its body is)."""
    paths = api.client.get("/openapi.json").json()["paths"]
    checked = 0
    for template, operations in paths.items():
        if not template.startswith("/v1"):
            continue
        path = re.sub(r"\{[^}]+\}", "x", template)
        for method in operations:
            r = api.client.request(method.upper(), path, json={"not": "valid"})
            assert_error(r, 401, "unauthorized")
            checked += 1
    assert checked >= len(ADMIN_ROUTES) + len(APP_ROUTES)
    assert api.store.count_events() == 0


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES + APP_ROUTES)
def test_no_key_is_401_everywhere(api: Api, method: str, path: str, body: object) -> None:
    before = _snapshot(api)
    r = api.client.request(method, path, json=body)
    error = assert_error(r, 401, "unauthorized")
    assert "missing API key" in error["message"]
    assert _snapshot(api) == before
    assert_healthy(api)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer fyp_not-a-real-key"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "fyp_no_scheme"},
        {"X-API-Key": "fyp_not-a-real-key"},
        {"X-API-Key": ""},
    ],
)
def test_malformed_or_unknown_key_is_401(api: Api, headers: dict[str, str]) -> None:
    r = api.client.post("/v1/events", json=[event("e1")], headers=headers)
    assert_error(r, 401, "unauthorized")
    assert api.store.count_events() == 0
    assert_healthy(api)


def test_x_api_key_header_works(api: Api) -> None:
    secret = api.app["Authorization"].removeprefix("Bearer ")
    r = api.client.post("/v1/events", json=[event("e1")], headers={"X-API-Key": secret})
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    admin = api.admin["Authorization"].removeprefix("Bearer ")
    assert api.client.get("/v1/keys", headers={"X-API-Key": admin}).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_app_key_on_an_admin_route_is_403_and_changes_nothing(
    api: Api, method: str, path: str, body: object
) -> None:
    before = _snapshot(api)
    r = api.client.request(method, path, json=body, headers=api.app)
    error = assert_error(r, 403, "forbidden")
    assert "'admin'" in error["message"]
    assert _snapshot(api) == before
    assert_healthy(api)


@pytest.mark.parametrize(("method", "path", "body"), APP_ROUTES)
def test_admin_key_works_on_app_routes(api: Api, method: str, path: str, body: object) -> None:
    r = api.client.request(method, path, json=body, headers=api.admin)
    assert r.status_code == 200, r.text
    as_app = api.client.request(method, path, json=body, headers=api.app)
    assert as_app.status_code == 200, as_app.text


def test_revoked_key_stops_working(uncached: Api) -> None:
    api = uncached
    created = api.client.post("/v1/keys", json={"scope": "app", "name": "temp"}, headers=api.admin)
    assert created.status_code == 201
    key_id, secret = created.json()["id"], created.json()["key"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/v1/users/u1", headers=headers).status_code == 200

    r = api.client.delete(f"/v1/keys/{key_id}", headers=api.admin)
    assert r.status_code == 204
    assert_error(api.client.get("/v1/users/u1", headers=headers), 401, "unauthorized")
    assert_error(
        api.client.post("/v1/events", json=[event("e1")], headers=headers), 401, "unauthorized"
    )
    assert api.store.count_events() == 0
    listed = {k["id"]: k for k in api.client.get("/v1/keys", headers=api.admin).json()["keys"]}
    assert listed[key_id]["revoked"] is True
    # revoking twice, or an unknown key, is a 404
    assert_error(api.client.delete(f"/v1/keys/{key_id}", headers=api.admin), 404, "not_found")
    assert_error(api.client.delete("/v1/keys/nope", headers=api.admin), 404, "not_found")
    # the other keys are untouched
    assert api.client.get("/v1/users/u1", headers=api.app).status_code == 200


def test_created_key_secret_works_with_its_scope(api: Api) -> None:
    r = api.client.post("/v1/keys", json={"scope": "app", "name": "mobile"}, headers=api.admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "scope", "name", "created_at", "key"}
    assert (body["scope"], body["name"]) == ("app", "mobile")
    assert body["key"].startswith(KEY_PREFIX)
    headers = {"Authorization": f"Bearer {body['key']}"}
    assert api.client.post("/v1/events", json=[event("e1")], headers=headers).json()["stored"] == 1
    assert_error(api.client.get("/v1/keys", headers=headers), 403, "forbidden")

    admin = api.client.post("/v1/keys", json={"scope": "admin"}, headers=api.admin).json()
    admin_headers = {"X-API-Key": admin["key"]}
    assert api.client.get("/v1/keys", headers=admin_headers).status_code == 200
    assert admin["key"] != body["key"]


@pytest.mark.parametrize("body", [{"scope": "root"}, {}, {"scope": "app", "extra": 1, "name": 5}])
def test_key_create_with_a_bad_scope_is_422(api: Api, body: dict[str, object]) -> None:
    before = len(api.store.list_api_keys())
    r = api.client.post("/v1/keys", json=body, headers=api.admin)
    assert_error(r, 422, "invalid_request")
    assert len(api.store.list_api_keys()) == before


def test_key_list_never_shows_secrets(api: Api) -> None:
    made = api.client.post("/v1/keys", json={"scope": "app", "name": "x"}, headers=api.admin)
    secrets = [
        made.json()["key"],
        api.admin["Authorization"].removeprefix("Bearer "),
        api.app["Authorization"].removeprefix("Bearer "),
    ]
    r = api.client.get("/v1/keys", headers=api.admin)
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert len(keys) == 3
    assert {k["scope"] for k in keys} == {"admin", "app"}
    for k in keys:
        assert set(k) == {"id", "scope", "name", "created_at", "revoked"}
    for secret in secrets:
        assert secret not in r.text
        assert hash_key(secret) not in r.text
    assert KEY_PREFIX not in r.text


def test_the_secret_is_stored_only_as_a_hash(api: Api) -> None:
    made = api.client.post("/v1/keys", json={"scope": "app"}, headers=api.admin).json()
    found = api.store.find_api_key(hash_key(made["key"]))
    assert found is not None
    assert found.id == made["id"]
    assert api.store.find_api_key(made["key"]) is None


def test_a_long_key_name_is_kept_or_refused_never_a_server_error(api_on: Api) -> None:
    # The store keeps at most 200 characters of a name (api_keys.name is VARCHAR(200)).
    name = "n" * 300
    r = api_on.client.post("/v1/keys", json={"scope": "app", "name": name}, headers=api_on.admin)
    assert r.status_code in (201, 422), r.text
    listed = api_on.client.get("/v1/keys", headers=api_on.admin).json()["keys"]
    if r.status_code == 201:
        assert name in {k["name"] for k in listed}
    else:
        assert_error(r, 422, "invalid_request")
        assert len(listed) == 2
    assert_healthy(api_on)
