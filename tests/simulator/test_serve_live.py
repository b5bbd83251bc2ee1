"""``fyp serve --simulate N`` on a tiny demo world: live traffic arrives through the real API,
the dashboard sees it, and the server stops promptly and cleanly with the audience running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from fyp import demo
from fyp.auth import create_key
from fyp.catalog import Catalog
from fyp.config import CatalogSettings, IngestSettings
from fyp.events import EventIngestor
from fyp.importers.runner import ImportKind, run_import
from fyp.storage.data import open_data_store
from tests.server import free_port

pytestmark = pytest.mark.slow


def tiny_demo(var: Path) -> tuple[str, str, int]:
    """A small demo world in ``var`` with the keys file `fyp demo` writes; (db url, admin key,
    events stored)."""
    url = f"sqlite:///{var / 'fyp.db'}"
    store = open_data_store(url)
    store.migrate()
    world = demo.build(creators=10, videos=80, users=10)
    catalog, ingestor = Catalog(store, CatalogSettings()), EventIngestor(store, IngestSettings())
    for kind, rows in (
        (ImportKind.users, world.users),
        (ImportKind.videos, world.videos),
        (ImportKind.events, world.events),
    ):
        run_import(kind, rows, store, catalog, ingestor, source=f"test:{kind.value}")
    _, admin = create_key(store, "admin", "demo admin")
    _, app_key = create_key(store, "app", "demo app")
    n = store.count_events()
    store.close()
    (var / "demo-keys.env").write_text(f"FYP_DEMO_ADMIN_KEY={admin}\nFYP_DEMO_APP_KEY={app_key}\n")
    return url, admin, n


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s}s: {what}")


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_with_a_live_audience(tmp_path: Path, stop_with: signal.Signals) -> None:
    db, admin, demo_events = tiny_demo(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FYP_DATABASE_URL": db,
        "FYP_VAR_DIR": str(tmp_path),
        # Days of 2 s, watching 500x faster: a summary line within seconds.
        "FYP_SIMULATOR__DAY_SECONDS": "2",
        "FYP_SIMULATOR__SPEEDUP": "500",
        "FYP_SIMULATOR__MAX_SESSIONS_PER_S": "10",
        "FYP_FEED__STAGE_BUDGET_MS": "5000",  # a busy machine must not turn into errors here
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fyp", "serve", "--port", str(port), "--simulate", "12"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        store = open_data_store(db)

        def live_events() -> int:
            return store.count_events() - demo_events

        # Nobody but the simulated audience talks to this server.
        wait_for(lambda: live_events() > 100, 15, "simulated events in the store")
        rows = store.read_served(0, 1000)
        assert rows and all(r.user_id.startswith("live_u") for _, r in rows)
        before = live_events()
        wait_for(lambda: live_events() > before, 5, "events keep coming")
        store.close()

        overview = httpx.get(
            f"{base}/v1/analytics/overview",
            params={"hours": 1, "step_minutes": 1},
            headers={"Authorization": f"Bearer {admin}"},
        ).json()
        assert overview["totals"]["active_users"] >= 5
        assert sum(overview["series"]["events_per_minute"][-2:]) > 0
        assert overview["totals"]["by_type"].get("play", 0) > 0

        wait_for(lambda: "simulated day 0:" in log.read_text(), 10, "a per-day summary line")
        t0 = time.monotonic()
        proc.send_signal(stop_with)
        proc.wait(10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert took < 5, text
    assert proc.returncode in (0, -signal.SIGTERM), text
    assert "Traceback" not in text and "ERROR" not in text, text
    notice = "simulated audience on: 12 users request feeds and send events through the API"
    assert notice in text and "turn it off: --simulate 0" in text
    assert "simulated audience on: 12 users (live_u...) over 80 videos" in text
    day0 = next(line for line in text.splitlines() if "simulated day 0:" in line)
    assert "12 active users" in day0 and " 0 errors" in day0
    assert "GET /v1/users/" not in text  # the access log stays quiet while it runs
