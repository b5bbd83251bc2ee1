"""The ranker's trees as native code: each action's saved LightGBM model compiled into a shared
library next to it (treelite reads the model, tl2cgen writes it as C and builds it with the
system's C compiler). The predictions are LightGBM's own, bit for bit, in about a third of the
time for a feed's few hundred rows (docs/benchmarks.md); LightGBM walks every tree through its
generic predictor, row by row, and pays its set-up once per model and call.

Optional by design: without a C compiler, when a library does not score probe rows exactly as
LightGBM does, or when it does not match the model it was built from (``native.json`` holds
each model file's and each library's digest), the LightGBM models serve. The libraries are
native code that every worker loads: whoever can write the models folder can run code in the
workers (docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger("fyp.training")
MANIFEST = "native.json"
F64 = npt.NDArray[np.float64]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _toolchain() -> str:
    for name in ("gcc", "clang"):  # the two tl2cgen knows on this platform
        if shutil.which(name):
            return name
    raise RuntimeError("no C compiler (gcc or clang) on PATH")


def _probe(width: int) -> F64:
    """Rows a library must score exactly as LightGBM does: missing values, zeros, infinities
    and a spread of ordinary values in every feature (a setting such as ``zero_as_missing``
    that the generated code would not honour shows up here)."""
    rng = np.random.default_rng(0)
    rows = rng.normal(0.0, 2.0, (64, width))
    rows[rng.uniform(0, 1, rows.shape) < 0.15] = np.nan
    rows[rng.uniform(0, 1, rows.shape) < 0.15] = 0.0
    special = np.array([np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-12, -1e-12, 1e12])
    return np.vstack([rows, np.repeat(special[:, None], width, axis=1)])


def build(folder: Path, actions: Sequence[str], threads: int = 1) -> bool:
    """Compile ``folder``'s saved models (``<action>.txt``) into shared libraries, check each
    against LightGBM on probe rows, and write the manifest last. A library's name carries its
    model's digest, so a re-saved model never reuses a library a process already loaded from
    the same path (the dynamic loader would hand back the old one). Returns False, logged, when
    it cannot; the LightGBM models then serve."""
    built: list[Path] = []
    try:
        import lightgbm as lgb
        import tl2cgen
        import treelite

        toolchain = _toolchain()
        models: dict[str, dict[str, str]] = {}
        for action in actions:
            source = folder / f"{action}.txt"
            digest = _digest(source)
            lib = folder / f"{action}-{digest[:16]}.so"
            tl2cgen.export_lib(
                treelite.frontend.load_lightgbm_model(str(source)),
                toolchain=toolchain,
                libpath=lib,
                params={"parallel_comp": max(1, threads)},
                nthread=max(1, threads),
            )
            built.append(lib)
            booster = lgb.Booster(model_file=str(source))
            probe = _probe(booster.num_feature())
            got = NativeTrees({action: tl2cgen.Predictor(lib, nthread=1)}).predict(probe)[action]
            want = np.asarray(booster.predict(probe, num_threads=1), dtype=np.float64)
            if not np.array_equal(got, want, equal_nan=True):
                worst = float(np.nanmax(np.abs(got - want)))
                raise RuntimeError(f"the compiled {action!r} differs from LightGBM by {worst:g}")
            models[action] = {"model": digest, "library": lib.name, "library_sha256": _digest(lib)}
        manifest = {"tl2cgen": tl2cgen.__version__, "models": models}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    except Exception as e:
        for lib in built:
            lib.unlink(missing_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)
        log.warning("ranker trees not compiled, LightGBM will serve them: %s", e)
        return False
    return True


class NativeTrees:
    """The compiled models of one ranker, each action's predictions for a matrix of rows."""

    def __init__(self, predictors: dict[str, Any]) -> None:
        self.predictors = predictors
        # tl2cgen: "may be called by only one thread at a time" (per predictor)
        self._lock = threading.Lock()

    @property
    def actions(self) -> list[str]:
        return list(self.predictors)

    def predict(self, x: F64) -> dict[str, F64]:
        import tl2cgen

        rows = tl2cgen.DMatrix(np.ascontiguousarray(x, dtype=np.float64), dtype="float64")
        with self._lock:
            return {
                a: np.asarray(p.predict(rows), dtype=np.float64).reshape(-1)
                for a, p in self.predictors.items()
            }


def load(folder: Path, actions: Sequence[str]) -> NativeTrees | None:
    """The compiled models in ``folder`` when every action has one built from its model file as
    it is now, else None (logged when libraries are there but cannot serve)."""
    manifest_file = folder / MANIFEST
    if not manifest_file.exists():
        return None
    try:
        import tl2cgen

        manifest = json.loads(manifest_file.read_text())
        if manifest.get("tl2cgen") != tl2cgen.__version__:
            raise RuntimeError(
                f"built by tl2cgen {manifest.get('tl2cgen')}, this is {tl2cgen.__version__}"
            )
        built = manifest.get("models", {})
        predictors = {}
        for action in actions:
            entry = built.get(action) or {}
            if entry.get("model") != _digest(folder / f"{action}.txt"):
                raise RuntimeError(f"the library of {action!r} was built from another model")
            lib = folder / str(entry.get("library"))
            if not lib.is_file() or entry.get("library_sha256") != _digest(lib):
                raise RuntimeError(f"the library of {action!r} is missing or was changed")
            predictors[action] = tl2cgen.Predictor(lib, nthread=1)
    except Exception as e:
        log.warning("compiled ranker trees in %s not used, LightGBM serves: %s", folder, e)
        return None
    return NativeTrees(predictors)
