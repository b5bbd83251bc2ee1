"""Helpers shared by the API tests: seeding, an app built from custom settings, error checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.testclient import TestClient

from fyp.api.app import build_services, create_app
from fyp.auth import create_key
from fyp.config import Settings
from fyp.models import User, VideoIn
from fyp.storage.data import DataStore, open_data_store
from tests.conftest import Api

TS = "2026-01-01T00:00:00Z"


def seed(store: DataStore) -> None:
    """Users u1, u2 and creator c1; videos v1 (10 s) and v2 by c1."""
    store.upsert_users([User(id="u1"), User(id="u2"), User(id="c1")])
    store.upsert_videos(
        [VideoIn(id="v1", creator_id="c1", duration_ms=10_000), VideoIn(id="v2", creator_id="c1")],
        "approved",
    )


def event(event_id: str, /, **fields: Any) -> dict[str, Any]:
    """A valid ``like`` of v1 by u1, with ``fields`` replaced (None removes a field)."""
    base: dict[str, Any] = {
        "event_id": event_id,
        "user_id": "u1",
        "type": "like",
        "video_id": "v1",
        "ts": TS,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def with_settings(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """``settings`` with fields of its sections replaced, e.g. ``api={"max_body_bytes": 1024}``."""
    update = {
        name: getattr(settings, name).model_copy(update=fields) for name, fields in sections.items()
    }
    return settings.model_copy(update=update)


@contextmanager
def serve(settings: Settings, store: DataStore | None = None) -> Iterator[Api]:
    """The API over ``store`` (a fresh memory store by default), with an admin and an app key."""
    store = store or open_data_store("memory://")
    services = build_services(settings, store)
    _, admin = create_key(store, "admin", "test admin")
    _, app_key = create_key(store, "app", "test app")
    with TestClient(create_app(settings, services)) as client:
        yield Api(
            client=client,
            services=services,
            admin={"Authorization": f"Bearer {admin}"},
            app={"Authorization": f"Bearer {app_key}"},
        )


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with the one JSON error shape and ``code``; returns the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"].strip()
    return error


def assert_healthy(api: Api) -> None:
    r = api.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
