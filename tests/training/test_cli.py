from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fyp.cli import app
from fyp.config import Settings
from fyp.storage.data import open_data_store
from fyp.training import ModelRegistry
from tests.training.support import clustered_world, load


def test_train_list_activate_and_eval_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fyp.db'}"
    env = {"FYP_VAR_DIR": str(tmp_path / "var"), "FYP_DATABASE_URL": url}
    settings = Settings(var_dir=tmp_path / "var", database_url=url, _env_file=None)  # type: ignore[call-arg]
    store = open_data_store(url)
    store.migrate()
    load(store, settings, clustered_world(topics=3, per_topic=10, users=30))
    store.close()
    runner = CliRunner()

    first = runner.invoke(app, ["train"], env=env)
    assert first.exit_code == 0, first.output
    assert "model version" in first.stdout and "peak memory" in first.stdout
    second = runner.invoke(app, ["train", "--no-activate", "--no-evaluate"], env=env)
    assert second.exit_code == 0, second.output

    reg = ModelRegistry(settings)
    old, new = reg.versions()
    assert reg.active_version() == old  # the second run did not activate
    listing = runner.invoke(app, ["models", "list"], env=env)
    assert old in listing.stdout and new in listing.stdout
    assert runner.invoke(app, ["models", "activate", new], env=env).exit_code == 0
    assert reg.active_version() == new
    assert runner.invoke(app, ["models", "activate", "nope"], env=env).exit_code == 1

    ev = runner.invoke(app, ["eval", "log", "--json"], env=env)
    assert ev.exit_code == 0, ev.output
    d = json.loads(ev.stdout)
    assert d["protocol"] == "temporal leave-one-out" and d["users"] == 30
    assert {"fyp", "popularity", "fyp-next-item"} <= set(d)
