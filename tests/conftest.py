"""Shared fixtures: settings, a data store over every backend, an API client with keys.

PostgreSQL tests use the server on 127.0.0.1:5432 (database ``test``) in a schema of their own.
Under ``CI=true`` an unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fyp.api.app import build_services, create_app
from fyp.api.deps import Services
from fyp.auth import create_key
from fyp.config import Settings
from fyp.storage.data import DataStore, open_data_store
from fyp.storage.data.schema import metadata

PG_SERVER = os.environ.get("FYP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["memory", "sqlite", "postgres"]


def _unavailable(what: str, error: Exception) -> None:
    if IN_CI:
        pytest.fail(f"{what} is unreachable under CI=true: {error}")
    pytest.skip(f"{what} unreachable: {error}")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, migrated once per session."""
    schema = f"fyp_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as e:
        engine.dispose()
        _unavailable("PostgreSQL", e)
    url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    store = open_data_store(url)
    store.migrate()
    store.close()
    yield url
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "fyp.db"
    store = open_data_store(f"sqlite:///{path}")
    store.migrate()
    store.close()
    return path


def make_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> DataStore:
    if backend == "memory":
        return open_data_store("memory://")
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "fyp.db"
        shutil.copy(template, path)
        return open_data_store(f"sqlite:///{path}")
    url: str = request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return open_data_store(url)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DataStore]:
    """A migrated, empty data store on each backend."""
    s = make_store(request.param, request, tmp_path)
    yield s
    s.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", database_url="memory://", _env_file=None)  # type: ignore[call-arg]


@dataclass
class Api:
    """A test client wired to a store, with one key of each scope."""

    client: TestClient
    services: Services
    admin: dict[str, str]
    app: dict[str, str]

    @property
    def store(self) -> DataStore:
        return self.services.store


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    """The API on the memory store; see ``api_on`` for other backends."""
    yield from _api(settings, open_data_store("memory://"))


def _api(settings: Settings, store: DataStore) -> Iterator[Api]:
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


@pytest.fixture(params=BACKENDS)
def api_on(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[Api]:
    """The API on each backend."""
    yield from _api(settings, make_store(request.param, request, tmp_path))
