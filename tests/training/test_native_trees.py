"""The ranker's trees compiled to native code: the same predictions, or LightGBM's when not."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from fyp.training import native_trees, ranker
from tests.training.test_ranker import planted

pytestmark = pytest.mark.skipif(
    not (shutil.which("gcc") or shutil.which("clang")), reason="no C compiler to build with"
)


class _Refuse:
    """A booster that must not be asked: the compiled trees answer instead."""

    def predict(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("LightGBM was asked although compiled trees were loaded")


def _libraries(folder: Path) -> set[str]:
    return {p.name.split("-")[0] for p in folder.glob("*.so")}


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
    assert _libraries(tmp_path / "ranker") == {"like", "skip"}
    again = ranker.Ranker.load(tmp_path / "ranker")
    assert again.native is not None and again.native.actions == ["like", "skip"]
    x = _rows()
    want = {a: b.predict(x, num_threads=1) for a, b in again.boosters.items()}
    empty = again.predict(np.zeros((0, 2)))
    assert all(v.shape == (0,) for v in empty.values())
    again.boosters = {a: _Refuse() for a in again.boosters}
    native = again.predict(x)
    assert set(native) == {"like", "skip"}
    for action, values in want.items():
        np.testing.assert_array_equal(native[action], values)
        assert native[action].shape == (len(x),)
    one = again.predict(x[:1])
    assert one["like"].shape == (1,) and one["like"][0] == want["like"][0]


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
    assert not _libraries(folder) and not (folder / native_trees.MANIFEST).exists()
    again = ranker.Ranker.load(folder)
    assert again.native is None
    x = _rows()
    np.testing.assert_array_equal(
        again.predict(x)["skip"], model.boosters["skip"].predict(x, num_threads=1)
    )


def test_not_asked_no_libraries(tmp_path: Path) -> None:
    _trained().save(tmp_path / "ranker")
    assert not _libraries(tmp_path / "ranker")
    assert ranker.Ranker.load(tmp_path / "ranker").native is None


def test_a_changed_library_is_not_used(tmp_path: Path) -> None:
    model = _trained()
    model.build_native = True
    folder = tmp_path / "ranker"
    model.save(folder)
    lib = next(folder.glob("like-*.so"))
    lib.write_bytes(lib.read_bytes() + b"\0")  # the model is unchanged, its library is not
    assert ranker.Ranker.load(folder).native is None
    lib.unlink()
    assert ranker.Ranker.load(folder).native is None


def test_a_library_that_scores_otherwise_than_lightgbm_is_not_kept(tmp_path: Path) -> None:
    # zero_as_missing sends a 0 down the missing branch, which the generated code does not:
    # the probe rows at build time catch it, whatever the cause
    data = planted(3000, 0)
    x = data.x.copy()
    x[::7, 0] = 0.0
    params = {"objective": "binary", "zero_as_missing": True, "verbose": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, data.labels["like"]), num_boost_round=20)
    model = ranker.Ranker(["affinity", "noise"], {"like": booster}, build_native=True)
    folder = tmp_path / "ranker"
    model.save(folder)
    assert not _libraries(folder) and not (folder / native_trees.MANIFEST).exists()
    assert ranker.Ranker.load(folder).native is None
