from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from fyp.cli import app
from fyp.evaluation.data import load_tiktok, temporal_leave_one_out
from fyp.evaluation.harness import evaluate
from fyp.evaluation.recipes import FypEmbedding, NextItem


def synthetic_tiktok(folder: Path, users: int = 80, items: int = 60, seed: int = 0) -> None:
    """Interactions in the release's format: 4 taste clusters, one valid and one test item."""
    rng = np.random.default_rng(seed)
    (folder / "tiktok").mkdir(parents=True)
    rows = []
    for u in range(users):
        cluster = u % 4
        pool = [i for i in range(items) if i % 4 == cluster]
        picked = rng.choice(pool, size=6, replace=False).tolist()
        rows += [(u, i, "train") for i in picked[:4]]
        rows += [(u, picked[4], "valid"), (u, picked[5], "test")]
    with (folder / "tiktok" / "interactions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "split"])
        w.writerows(rows)
    # content features that carry the cluster
    base = rng.standard_normal((4, 16))
    feats = base[np.arange(items) % 4] + 0.3 * rng.standard_normal((items, 16))
    np.save(folder / "tiktok" / "image_feat.npy", feats.astype(np.float16))
    np.save(folder / "tiktok" / "audio_feat.npy", feats[:, ::-1].astype(np.float16))


def test_eval_tiktok_json_has_the_published_shape(tmp_path: Path) -> None:
    synthetic_tiktok(tmp_path)
    result = CliRunner().invoke(app, ["eval", "tiktok", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1  # exactly one JSON object on stdout
    d = json.loads(lines[0])
    assert d["dataset"] == "tiktok" and d["k"] == 20
    names = [m["name"] for m in d["models"]]
    assert names[0] == "fyp" and "popularity" in names
    assert any(n.startswith("implicit-als") for n in names)
    for m in d["models"]:
        assert {"recall", "precision", "ndcg", "train_s"} <= set(m)
        assert 0 <= m["recall"] <= 1 and 0 <= m["precision"] <= 1 and 0 <= m["ndcg"] <= 1
    assert d["command"].startswith("fyp ")
    assert [p["name"] for p in d["published"]][-1].startswith("DiffMM")
    # the clusters are learnable: the engine beats popularity on this split
    by_name = {m["name"]: m for m in d["models"]}
    assert by_name["fyp"]["recall"] > by_name["popularity"]["recall"]


def test_eval_tiktok_without_data_says_where_to_point(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "tiktok", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2


def test_temporal_leave_one_out_holds_out_each_users_latest() -> None:
    split = temporal_leave_one_out(
        "t", users=[0, 0, 0, 0, 1, 1], items=[5, 2, 3, 4, 1, 2], ts=[4, 1, 2, 3, 1, 2]
    )
    assert split.test[0].tolist() == [5] and split.valid[0].tolist() == [4]
    assert sorted(split.train[0].indices.tolist()) == [2, 3]
    assert split.test[1].size == 0 and split.train[1].nnz == 2  # too short: all train


def test_fold_in_scores_equal_the_trained_users(tmp_path: Path) -> None:
    synthetic_tiktok(tmp_path)
    split = load_tiktok(tmp_path)
    model = FypEmbedding(binary=True)
    r = evaluate(model, split, "valid", k=10)
    assert r.metrics.users == 80 and r.metrics.recall > 0


def test_next_item_recovers_an_ordered_chain() -> None:
    # every user walks 0 -> 1 -> 2 -> ... from a random start; the next one is the test item
    rng = np.random.default_rng(0)
    users, items, ts = [], [], []
    for u in range(50):
        start = int(rng.integers(0, 10))
        for step in range(5):
            users.append(u)
            items.append(start + step)
            ts.append(step)
    split = temporal_leave_one_out("chain", users, items, ts)
    seqs = [np.sort(split.train[u].indices).astype(np.int64) for u in range(50)]
    # Leave-one-out also holds out valid, so the test item is two steps after the last train
    # item: only a window over 1 can reach it (popularity breaks the ties otherwise).
    recall = {
        w: evaluate(NextItem(seqs, window=w), split, "test", k=3).metrics.recall for w in (1, 3)
    }
    assert recall[3] > 0.7
    assert recall[3] > recall[1] + 0.3


def test_eval_tiktok_scores_the_live_model_trained_from_the_import(tmp_path: Path) -> None:
    synthetic_tiktok(tmp_path / "data")
    env = {
        "FYP_VAR_DIR": str(tmp_path / "var"),
        "FYP_DATABASE_URL": f"sqlite:///{tmp_path / 'fyp.db'}",
        "FYP_DATA_DIR": str(tmp_path / "data"),
    }
    runner = CliRunner()
    for args in (["import", "tiktok"], ["train", "--no-evaluate"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["eval", "tiktok", "--json", "--active-model"], env=env)
    assert result.exit_code == 0, result.output
    rows = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    live = rows["fyp-live"]
    assert live["users"] == 80 and live["recall"] > rows["popularity"]["recall"]
