"""The per-request query every stage reads, and the experiment assignment that shapes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fyp.config import FeedSettings, deep_merge
from fyp.models import User
from fyp.pipeline.clients import ModelsLike
from fyp.storage.cache import UserState


class AssignmentLike(Protocol):
    @property
    def arms(self) -> dict[str, str]: ...
    @property
    def overrides(self) -> dict[str, Any]: ...


class Assigner(Protocol):
    """Assigns a user to experiment arms (``fyp.experiments.assignment`` provides them; its
    ``NoExperiments`` is the default)."""

    def assign(self, user_id: str) -> AssignmentLike: ...


def effective_settings(base: FeedSettings, overrides: dict[str, Any]) -> FeedSettings:
    """The FeedSettings an arm's overrides produce (validated; raises ValueError if invalid)."""
    if not overrides:
        return base
    return FeedSettings.model_validate(deep_merge(base.model_dump(), overrides))


def age_of(user: User, now_year: int) -> int | None:
    """Age in years from birth_year, else the lower bound of age_band; None when unknown."""
    if user.birth_year is not None:
        return now_year - user.birth_year
    band = user.age_band
    if band is None:
        return None
    if band == "under_13":
        return 12
    return int(band.split("_")[0])


@dataclass
class Query:
    """Everything a stage may know about one feed request.

    Attributes:
        served: videos served to the user within the never-repeat horizon.
        state: the user's online state (recent engagements, affinities, negatives).
        forced: a video id that must reach scoring regardless of sources (the explain endpoint).
    """

    request_id: str
    user: User
    count: int
    offset: int
    now_ms: int
    settings: FeedSettings
    arms: dict[str, str]
    state: UserState
    served: set[str]
    following: set[str]
    blocked: set[str]
    age: int | None
    adult_age: int = 18
    region_strict: bool = False
    language_strict: bool = False
    forced: str | None = None
    models: ModelsLike | None = None
    user_vector: npt.NDArray[np.float32] | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> str | None:
        return self.user.region

    @property
    def language(self) -> str | None:
        return self.user.language

    def positives(self, n: int = 20) -> list[str]:
        """The newest distinct positively engaged videos, newest first."""
        out: list[str] = []
        for vid, w in reversed(self.state.recent):
            if w > 0 and vid not in out:
                out.append(vid)
                if len(out) == n:
                    break
        return out
