"""The ranker's trees compiled to native code: the same predictions, or LightGBM's when not."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fyp.training import native_trees, ranker
from tests.training.test_ranker import planted


def _trained(seed: int = 0) -> ranker.Ranker:
    model = ranker.train(planted(3000, seed), min_positives=20, rounds=40)
    assert model is not None
    return model


def _rows(n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(9)
    x = rng.uniform(-0.2, 1.2, (n, 2))
    x[rng.uniform(0, 1, x.shape) < 0.2] = np.nan  # missing features take the default branch
    return x


def test_compiled_trees_predict_what_lightgbm_predicts(tmp_path: Path) -> None:
    model = _trained()
    model.build_native = True
    model.save(tmp_path / "ranker")
    assert {p.name for p in (tmp_path / "ranker").glob("*.so")} == {"like.so", "skip.so"}
    again = ranker.Ranker.load(tmp_path / "ranker")
    assert again.native is not None and again.native.actions == ["like", "skip"]
    x = _rows()
    native = again.predict(x)
    for action, booster in again.boosters.items():
        np.testing.assert_array_equal(native[action], booster.predict(x, num_threads=1))
        assert native[action].shape == (len(x),)
    empty = again.predict(np.zeros((0, 2)))
    assert all(v.shape == (0,) for v in empty.values())


def test_a_library_built_from_another_model_is_not_used(tmp_path: Path) -> None:
    model = _trained()
    model.build_native = True
    model.save(tmp_path / "ranker")
    other = _trained(seed=5)  # same actions, other trees
    other.boosters["like"].save_model(str(tmp_path / "ranker" / "like.txt"))
    again = ranker.Ranker.load(tmp_path / "ranker")
    assert again.native is None
    x = _rows()
    np.testing.assert_array_equal(
        again.predict(x)["like"], other.boosters["like"].predict(x, num_threads=1)
    )


def test_without_a_compiler_the_lightgbm_models_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = _trained()
    model.build_native = True
    model.save(tmp_path / "ranker")
    folder = tmp_path / "ranker"
    assert not list(folder.glob("*.so")) and not (folder / native_trees.MANIFEST).exists()
    again = ranker.Ranker.load(folder)
    assert again.native is None
    x = _rows()
    np.testing.assert_array_equal(
        again.predict(x)["skip"], model.boosters["skip"].predict(x, num_threads=1)
    )


def test_not_asked_no_libraries(tmp_path: Path) -> None:
    _trained().save(tmp_path / "ranker")
    assert not list((tmp_path / "ranker").glob("*.so"))
    assert ranker.Ranker.load(tmp_path / "ranker").native is None
