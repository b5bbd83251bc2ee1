from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fyp.auth import create_key
from fyp.cli import app
from fyp.storage.data import open_data_store
from tests.server import ServerProcess

pytestmark = pytest.mark.slow


def test_simulate_against_a_real_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fyp.db'}"
    store = open_data_store(url)
    store.migrate()
    _, admin = create_key(store, "admin", "sim")
    _, app_key = create_key(store, "app", "sim")
    store.close()
    server = ServerProcess(url, tmp_path / "var")
    server.start()
    try:
        # no COLUMNS: the table must stay readable in a pipe or a file (80 columns)
        env = {"FYP_DATABASE_URL": url, "FYP_VAR_DIR": str(tmp_path)}
        args = ["simulate", "--users", "10", "--days", "1", "--url", server.url, "--setup"]
        args += ["--key", app_key, "--admin-key", admin, "--videos", "150", "--page-size", "10"]
        r = CliRunner().invoke(app, args, env=env)
        assert r.exit_code == 0, r.output
        assert "simulated audience, per day" in r.output
        assert "watch min/session" in r.output and "…" not in r.output
        rows = [line for line in r.output.splitlines() if line.startswith("│")]
        assert len(rows) == 1  # one per day
        assert rows[0].split("│")[2].strip() == "10"  # everyone is active on day 0
        assert rows[0].split("│")[-2].strip() == "0"  # no errors
    finally:
        server.stop()
    store = open_data_store(url)
    assert store.count_events() > 0
    assert store.read_served(0, 1)
    store.close()


def test_simulate_needs_a_key(tmp_path: Path) -> None:
    env = {"FYP_VAR_DIR": str(tmp_path), "FYP_DATABASE_URL": "memory://"}
    r = CliRunner().invoke(app, ["simulate", "--users", "1"], env=env)
    assert r.exit_code == 2 and "no app key" in r.output
