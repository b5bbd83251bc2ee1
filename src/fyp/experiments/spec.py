"""What an experiment is: its spec (as a product manager writes it) and its stored record."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from fyp.config import FeedSettings, deep_merge

ExperimentState = Literal["draft", "running", "stopped"]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]

# Metrics the results endpoint computes (see fyp.experiments.metrics); a spec may only name these.
MetricName = Literal[
    "watch_ms_per_user",
    "watch_ms_per_session",
    "sessions_per_user",
    "videos_per_session",
    "completion_rate",
    "skip_rate",
    "like_rate",
    "share_rate",
    "comment_rate",
    "follow_rate",
    "report_rate",
    "return_rate",
]

BUCKETS = 10_000  # traffic granularity of a layer: 0.01% of users


def _unknown_keys(over: dict[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    # FeedSettings ignores unknown keys (pydantic's default), so a typo such as
    # {"blend": {"shares": 9}} would validate and silently change nothing: catch it here.
    bad = []
    for key, value in over.items():
        field = model.model_fields.get(key)
        if field is None:
            bad.append(prefix + key)
            continue
        sub = field.annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            bad.extend(_unknown_keys(value, sub, f"{prefix}{key}."))
    return bad


def validate_overrides(overrides: dict[str, Any], feed: FeedSettings | None = None) -> FeedSettings:
    """The feed settings an arm would run with; ValueError names unknown or invalid keys.

    Args:
        overrides: nested dict, e.g. ``{"blend": {"share": 8}, "exploration_share": 0.2}``.
        feed: the base settings (the server's ``settings.feed``); defaults when None.
    """
    unknown = _unknown_keys(overrides, FeedSettings)
    if unknown:
        raise ValueError(f"unknown feed setting(s): {', '.join(sorted(unknown))}")
    base = (feed or FeedSettings()).model_dump()
    try:
        return FeedSettings.model_validate(deep_merge(base, overrides))
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ValueError(f"invalid feed setting(s): {problems}") from None


def _default_guardrails() -> list[MetricName]:
    return ["skip_rate", "report_rate"]


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    weight: float = Field(default=1.0, gt=0, description="Relative share of the experiment.")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Nested feed settings this arm changes, e.g. {'blend': {'share': 8}}.",
    )

    @model_validator(mode="after")
    def _overrides(self) -> Self:
        validate_overrides(self.overrides)
        return self


class ExperimentSpec(BaseModel):
    """An experiment as created through the API. The first arm is the control."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    hypothesis: str = Field(default="", max_length=2000)
    primary_metric: MetricName = "watch_ms_per_user"
    guardrails: list[MetricName] = Field(default_factory=_default_guardrails, max_length=12)
    traffic: float = Field(
        default=1.0, gt=0, le=1, description="Share of the layer's users in the experiment."
    )
    layer: Name = Field(
        default="default",
        description="Experiments in one layer get disjoint users; layers are orthogonal.",
    )
    salt: str = Field(
        default="",
        max_length=100,
        description="Seed of the arm assignment; empty means the experiment's name.",
    )
    arms: list[Arm] = Field(min_length=2, max_length=10)

    @model_validator(mode="after")
    def _arms(self) -> Self:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must be unique")
        if not self.salt:
            self.salt = self.name
        return self

    @property
    def control(self) -> str:
        return self.arms[0].name


class ExperimentRecord(BaseModel):
    """An experiment as stored: the spec, its state, and the layer buckets it holds.

    ``buckets`` is the half-open range ``[lo, hi)`` of the layer's ``BUCKETS`` taken when the
    experiment starts; it never moves while the experiment runs, so a user's assignment is stable.
    """

    spec: ExperimentSpec
    state: ExperimentState = "draft"
    created_ms: int
    started_ms: int | None = None
    stopped_ms: int | None = None
    buckets: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def document(self) -> dict[str, Any]:
        """The JSON stored in the ``spec`` column."""
        doc = self.spec.model_dump(mode="json")
        doc["buckets"] = list(self.buckets) if self.buckets else None
        return doc

    @classmethod
    def from_row(
        cls,
        doc: dict[str, Any],
        state: str,
        created_ms: int,
        started_ms: int | None,
        stopped_ms: int | None,
    ) -> ExperimentRecord:
        spec_doc = dict(doc)
        buckets = spec_doc.pop("buckets", None)
        return cls(
            spec=ExperimentSpec.model_validate(spec_doc),
            state=state,  # type: ignore[arg-type]
            created_ms=created_ms,
            started_ms=started_ms,
            stopped_ms=stopped_ms,
            buckets=tuple(buckets) if buckets else None,
        )
