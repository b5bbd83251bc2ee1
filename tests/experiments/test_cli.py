from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fyp.cli import app


def test_experiment_commands(tmp_path: Path) -> None:
    env = {
        "FYP_DATABASE_URL": f"sqlite:///{tmp_path / 'fyp.db'}",
        "FYP_VAR_DIR": str(tmp_path),
        "COLUMNS": "200",  # rich tables would truncate names at 80
    }
    runner = CliRunner()
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "name": "explore-more",
                "hypothesis": "more exploration widens coverage",
                "arms": [{"name": "a"}, {"name": "b", "overrides": {"exploration_share": 0.3}}],
            }
        )
    )
    r = runner.invoke(app, ["experiments", "create", str(spec)], env=env)
    assert r.exit_code == 0, r.output
    assert '"state": "draft"' in r.output
    assert runner.invoke(app, ["experiments", "create", str(spec)], env=env).exit_code == 1
    r = runner.invoke(app, ["experiments", "start", "explore-more"], env=env)
    assert r.exit_code == 0 and '"state": "running"' in r.output
    r = runner.invoke(app, ["experiments", "list", "--state", "running"], env=env)
    assert "explore-more" in r.output
    r = runner.invoke(app, ["experiments", "results", "explore-more", "--json"], env=env)
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["status"] == "not_enough_data" and res["srm"]["mismatch"] is False
    r = runner.invoke(app, ["experiments", "results", "explore-more"], env=env)
    assert "SRM check passed" in r.output and "not enough data" in r.output
    assert "users per arm: a (control) 0, b 0" in r.output
    assert runner.invoke(app, ["experiments", "stop", "explore-more"], env=env).exit_code == 0
    r = runner.invoke(app, ["experiments", "show", "nope"], env=env)
    assert r.exit_code == 1 and "no experiment" in r.output

    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"name": "x", "arms": [{"name": "a"}, {"name": "b", "overrides": {"nope": 1}}]})
    )
    r = runner.invoke(app, ["experiments", "create", str(bad)], env=env)
    assert r.exit_code == 2 and "unknown feed setting" in r.output
