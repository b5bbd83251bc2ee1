"""`fyp serve --workers N` start-up decisions (the multi-process run is in test_cluster.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fyp.__main__ import HUGE_PAGES, huge_pages_env, prepare
from fyp.cli import app
from fyp.config import ServerSettings, Settings
from tests.server import ServerProcess


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
    from fyp.ops import supervisor

    # The command sets these for its workers: make sure they are undone after the test.
    for name in ("FYP_AUTO_MIGRATE", "PROMETHEUS_MULTIPROC_DIR", "FYP_SERVER__METRICS_DIR"):
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    calls: list[Any] = []

    def run_workers(config: Any) -> bool:
        calls.append(config)
        return True  # stopped by a signal

    monkeypatch.setattr(supervisor, "run_workers", run_workers)
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
    [config] = calls
    assert config.app == "fyp.api.app:create_app_from_env" and config.factory is True
    assert config.workers == 3 and config.port == 9999
    assert config.timeout_graceful_shutdown == 7
    assert config.timeout_worker_healthcheck == ServerSettings().worker_healthcheck_s
    assert config.log_config["formatters"]["main"]["()"].__name__ == "JsonFormatter"
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


# -- huge pages: `fyp serve` re-executes itself with glibc's malloc asking for them --


def test_huge_pages_env_adds_the_tunable_once_and_keeps_an_operators_own() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc tunables are Linux-only")
    assert huge_pages_env({}) == {"GLIBC_TUNABLES": HUGE_PAGES}
    got = huge_pages_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "X": "1"})
    assert got == {"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{HUGE_PAGES}", "X": "1"}
    assert huge_pages_env({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) is None  # theirs wins
    assert huge_pages_env({"GLIBC_TUNABLES": HUGE_PAGES}) is None  # already re-executed


@pytest.mark.parametrize(
    ("args", "env", "execs"),
    [
        (["serve", "--workers", "2"], {}, True),
        (["serve"], {"FYP_SERVER__MALLOC_HUGE_PAGES": "false"}, False),
        (["serve"], {"GLIBC_TUNABLES": HUGE_PAGES}, False),  # the re-executed process: no loop
        (["serve", "--help"], {}, False),
        (["train"], {}, False),
        ([], {}, False),
    ],
)
def test_only_serve_is_re_executed_and_only_when_wanted(
    args: list[str], env: dict[str, str], execs: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc tunables are Linux-only")
    monkeypatch.delenv("FYP_SERVER__MALLOC_HUGE_PAGES", raising=False)
    monkeypatch.setenv("FYP_SERVER__COMPILED", "false")  # its own tests: test_compiled.py
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    environ = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"} | env
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    prepare(args, environ, lambda exe, argv, e: calls.append((exe, argv, dict(e))))
    if not execs:
        assert calls == []
        return
    [(exe, argv, new_env)] = calls
    assert exe == sys.executable and argv == [sys.executable, *sys.orig_argv[1:]]
    assert new_env["GLIBC_TUNABLES"] == HUGE_PAGES
    assert {k: v for k, v in new_env.items() if k != "GLIBC_TUNABLES"} == environ


@pytest.mark.parametrize("workers", [1, 2])
def test_a_served_process_and_its_workers_run_with_huge_pages_asked_for(
    tmp_path: Path, workers: int
) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("/proc and glibc tunables are Linux-only")
    server = ServerProcess(f"sqlite:///{tmp_path / 'fyp.db'}", tmp_path, workers=workers)
    server.env.pop("GLIBC_TUNABLES", None)  # as a shell without it starts it
    server.env.pop("FYP_SERVER__MALLOC_HUGE_PAGES", None)
    server.start(timeout_s=60)
    try:
        assert server.proc is not None
        # exec keeps the pid; several workers come with multiprocessing's resource tracker
        pids = [server.proc.pid, *_children(server.proc.pid)]
        assert len(pids) >= 1 + (workers if workers > 1 else 0)
        for pid in pids:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"GLIBC_TUNABLES={HUGE_PAGES}".encode() in environ, pid
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def test_a_serving_app_collects_its_youngest_objects_as_settings_say(tmp_path: Path) -> None:
    import gc

    from fastapi.testclient import TestClient

    from fyp.api.app import create_app

    before = gc.get_threshold()
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url="memory://",
        server=ServerSettings(gc_threshold=12_345),
        _env_file=None,
    )  # type: ignore[call-arg]
    try:
        gc.set_threshold(700, 7, 9)
        with TestClient(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
            # the youngest generation as configured; the older ones as they were
            assert gc.get_threshold() == (12_345, 7, 9)
    finally:
        gc.set_threshold(*before)


# -- a store that is down while a worker starts ------------------------------------------------


def _flaky(fn: Any, failures: int, calls: list[float]) -> Any:
    """``fn``, failing its first ``failures`` calls as an unreachable store does."""
    import time

    from fyp.storage.data import StoreUnavailable

    def call(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        if len(calls) <= failures:
            raise StoreUnavailable("connection refused")
        return fn(*args, **kwargs)

    return call


def _start_up_settings(tmp_path: Path, wait_s: float) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url="memory://",
        server=ServerSettings(startup_store_wait_s=wait_s),
        _env_file=None,
    )  # type: ignore[call-arg]


def test_a_worker_waits_out_a_short_store_outage_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient

    from fyp.api.app import build_services, create_app
    from fyp.models.catalog import VideoIn

    settings = _start_up_settings(tmp_path, wait_s=10.0)
    services = build_services(settings)
    services.store.upsert_videos([VideoIn(id="v1", creator_id="c1")], "approved")
    app = create_app(settings, services)
    assert services.feed is not None
    catalog = services.feed.clients.catalog
    calls: list[float] = []
    catalog.preload = _flaky(catalog.preload, 3, calls)  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="fyp.api"), TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
    assert len(calls) == 4  # three refused, then loaded
    assert catalog.snapshot().by_id.keys() == {"v1"}
    retried = [r for r in caplog.records if "at start-up (catalog index)" in r.message]
    assert len(retried) == 3


def test_a_worker_gives_up_on_a_store_that_stays_down(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fyp.api.app import build_services, create_app
    from fyp.storage.data import StoreUnavailable

    settings = _start_up_settings(tmp_path, wait_s=0.6)
    services = build_services(settings)
    app = create_app(settings, services)
    assert services.feed is not None
    catalog = services.feed.clients.catalog
    calls: list[float] = []
    catalog.preload = _flaky(catalog.preload, 10**6, calls)  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable, match="connection refused"), TestClient(app):
        pass
    assert len(calls) >= 2 and 0.5 <= calls[-1] - calls[0] <= 3.0


def test_without_a_wait_a_worker_fails_at_once(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fyp.api.app import build_services, create_app
    from fyp.storage.data import StoreUnavailable

    settings = _start_up_settings(tmp_path, wait_s=0.0)
    services = build_services(settings)
    app = create_app(settings, services)
    assert services.feed is not None
    calls: list[float] = []
    catalog = services.feed.clients.catalog
    catalog.preload = _flaky(catalog.preload, 1, calls)  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable), TestClient(app):
        pass
    assert len(calls) == 1


def test_a_warm_up_the_store_cuts_short_still_starts_the_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient

    from fyp.api.app import build_services, create_app

    settings = _start_up_settings(tmp_path, wait_s=10.0)
    services = build_services(settings)
    app = create_app(settings, services)
    assert services.feed is not None
    updater = services.feed.updater
    calls: list[float] = []
    updater.warm_videos = _flaky(updater.warm_videos, 1, calls)  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="fyp.api"), TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
    assert len(calls) == 1  # not retried: a second pass would count its events twice
    assert any("warm-up cut short" in r.message for r in caplog.records)


def test_a_server_whose_worker_fails_to_start_exits_with_an_error(tmp_path: Path) -> None:
    """uvicorn's supervisor stops every worker when one fails its start-up and returns as if
    asked to stop: ``fyp serve`` must not exit 0 then, or a process manager that restarts on
    failure only would leave it down. (A stop by SIGTERM exits 0: tests/ops/test_cluster.py.)"""
    import subprocess
    import time

    from tests.server import free_port

    env = {
        **os.environ,
        "FYP_DATABASE_URL": "postgresql+psycopg://fyp@127.0.0.1:1/nothing",  # refused
        "FYP_AUTO_MIGRATE": "false",
        "FYP_VAR_DIR": str(tmp_path),
        "FYP_SERVER__STARTUP_STORE_WAIT_S": "0",
        "FYP_SERVER__DB_CONNECT_TIMEOUT_S": "1",
        "FYP_SERVER__WORKER_HEALTHCHECK_S": "2",
        "FYP_SERVER__COMPILED": "false",
        "FYP_SIMULATOR__USERS": "0",
    }
    cmd = [sys.executable, "-m", "fyp", "serve", "--workers", "2", "--port", str(free_port())]
    t = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t
    out = done.stdout + done.stderr
    assert "failed to start" in out, out[-3000:]
    assert done.returncode == 1, out[-3000:]
    assert "the server stopped by itself" in out
    assert took < 60, took
