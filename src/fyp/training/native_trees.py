"""The ranker's trees as native code: each action's saved LightGBM model compiled into a shared
library next to it (treelite reads the model, tl2cgen writes it as C and builds it with the
system's C compiler). The predictions are LightGBM's own, bit for bit, in about a third of the
time for a feed's few hundred rows (docs/benchmarks.md); LightGBM walks every tree through its
generic predictor, row by row, and pays its set-up once per model and call.

Optional by design: without a C compiler, or when a library does not match the model it was
built from (``native.json`` holds each model file's digest), the LightGBM models serve.
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


def build(folder: Path, actions: Sequence[str], threads: int = 1) -> bool:
    """Compile ``folder``'s saved models (``<action>.txt``) into ``<action>.so`` and write the
    manifest last. Returns False, logged, when it cannot; the models then serve as they are."""
    try:
        import tl2cgen
        import treelite

        toolchain = _toolchain()
        digests: dict[str, str] = {}
        for action in actions:
            source = folder / f"{action}.txt"
            model = treelite.frontend.load_lightgbm_model(str(source))
            tl2cgen.export_lib(
                model,
                toolchain=toolchain,
                libpath=folder / f"{action}.so",
                params={"parallel_comp": max(1, threads)},
                nthread=max(1, threads),
            )
            digests[action] = _digest(source)
    except Exception as e:
        for action in actions:
            (folder / f"{action}.so").unlink(missing_ok=True)
        log.warning("ranker trees not compiled, LightGBM will serve them: %s", e)
        return False
    manifest = {"tl2cgen": tl2cgen.__version__, "models": digests}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
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
            if built.get(action) != _digest(folder / f"{action}.txt"):
                raise RuntimeError(f"the library of {action!r} was built from another model")
            predictors[action] = tl2cgen.Predictor(folder / f"{action}.so", nthread=1)
    except Exception as e:
        log.warning("compiled ranker trees in %s not used, LightGBM serves: %s", folder, e)
        return None
    return NativeTrees(predictors)
