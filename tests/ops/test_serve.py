"""`fyp serve --workers N` start-up decisions (the multi-process run is in test_cluster.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fyp.cli import app
from fyp.config import Settings


def test_several_workers_refuse_a_per_process_memory_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FYP_DATABASE_URL", "memory://")
    monkeypatch.setenv("FYP_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "memory:// cannot be shared" in result.output


def test_several_workers_migrate_once_and_share_a_metrics_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    # The command sets these for its workers: make sure they are undone after the test.
    for name in ("FYP_AUTO_MIGRATE", "PROMETHEUS_MULTIPROC_DIR", "FYP_SERVER__METRICS_DIR"):
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append((target, kw)))
    monkeypatch.setenv("FYP_DATABASE_URL", f"sqlite:///{tmp_path / 'fyp.db'}")
    monkeypatch.setenv("FYP_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("FYP_SERVER__GRACEFUL_SHUTDOWN_S", "7")
    monkeypatch.setenv("FYP_SERVER__LOG_FORMAT", "json")
    stale = tmp_path / "metrics" / "counter_999999.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    keep = tmp_path / "metrics" / "notes.txt"  # not prometheus-client's: left alone
    keep.write_text("mine")
    result = CliRunner().invoke(app, ["serve", "--workers", "3", "--port", "9999"])
    assert result.exit_code == 0, result.output
    [(target, kw)] = calls
    assert target == "fyp.api.app:create_app_from_env" and kw["factory"] is True
    assert kw["workers"] == 3 and kw["port"] == 9999
    assert kw["timeout_graceful_shutdown"] == 7
    assert kw["log_config"]["formatters"]["main"]["()"].__name__ == "JsonFormatter"
    assert (tmp_path / "fyp.db").exists()  # migrated in the parent ...
    assert os.environ["FYP_AUTO_MIGRATE"] == "false"  # ... so the workers do not race to
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert metrics_dir == (tmp_path / "metrics").resolve()
    assert os.environ["FYP_SERVER__METRICS_DIR"] == str(metrics_dir)
    assert not stale.exists()  # a previous run's samples would be summed in
    assert keep.read_text() == "mine"


def test_fyp_redis_url_selects_the_shared_online_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FYP_REDIS_URL", raising=False)
    assert Settings().online.backend == "memory"
    monkeypatch.setenv("FYP_REDIS_URL", "redis://cache.internal:6380/2")
    online = Settings().online
    assert (online.backend, online.redis_url) == ("redis", "redis://cache.internal:6380/2")
