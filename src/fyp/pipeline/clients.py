"""What the feed needs from the model artefacts, as small Protocols (tests pass fakes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fyp.pipeline.catalog_index import CatalogIndex
from fyp.storage.cache import OnlineState
from fyp.storage.data import DataStore


class RankerLike(Protocol):
    """Per-action probability models over named features (missing features as NaN)."""

    feature_names: list[str]

    @property
    def actions(self) -> list[str]: ...

    def predict(self, x: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.float64]]: ...


class ModelsLike(Protocol):
    """One loaded model version (``fyp.training.artefacts.Models`` satisfies it)."""

    version: str

    @property
    def ranker(self) -> Any: ...

    def user_vector(
        self, recent: Sequence[tuple[str, float]]
    ) -> npt.NDArray[np.float32] | None: ...

    @property
    def video_ids(self) -> Sequence[str]:  # row -> video id
        ...

    def search_rows(self, vector: npt.ArrayLike, k: int) -> tuple[list[int], list[float]]: ...

    def affinity(
        self, vector: npt.ArrayLike, video_ids: Sequence[str]
    ) -> npt.NDArray[np.float64]: ...

    def neighbours(self, video_id: str, k: int) -> list[tuple[str, float]]: ...

    def similar_content(self, video_id: str, k: int) -> list[tuple[str, float]]: ...

    def next_items(self, recent_video_ids: Sequence[str], k: int) -> list[tuple[str, float]]: ...


class ModelSource(Protocol):
    """Hands out the active models, or None (``ModelRegistry`` satisfies it)."""

    def current(self) -> ModelsLike | None: ...


class NoModels:
    """No trained models: every model-backed source returns nothing."""

    def current(self) -> ModelsLike | None:
        return None


@dataclass
class FeedClients:
    """The dependencies a feed's stages are built with."""

    store: DataStore
    online: OnlineState
    catalog: CatalogIndex
    models: ModelSource
