from __future__ import annotations

import pytest
from pydantic import ValidationError

from fyp.config import FeedSettings, deep_merge
from fyp.experiments.spec import ExperimentRecord, ExperimentSpec, validate_overrides


def spec(**kw: object) -> ExperimentSpec:
    body: dict[str, object] = {"name": "e1", "arms": [{"name": "a"}, {"name": "b"}], **kw}
    return ExperimentSpec.model_validate(body)


def test_defaults_salt_and_control() -> None:
    s = spec()
    assert s.salt == "e1"
    assert s.control == "a"
    assert s.primary_metric == "watch_ms_per_user"
    assert spec(salt="fixed").salt == "fixed"


def test_overrides_merge_into_feed_settings() -> None:
    feed = validate_overrides({"blend": {"share": 9.0}, "exploration_share": 0.25})
    assert feed.blend.share == 9.0
    assert feed.blend.like == FeedSettings().blend.like  # untouched siblings keep their value
    assert feed.exploration_share == 0.25
    base = FeedSettings(diversity=0.7)
    assert validate_overrides({}, base).diversity == 0.7


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"blend": {"shares": 9}}, "blend.shares"),
        ({"explore": 0.5}, "explore"),
        ({"exploration_share": 2.0}, "exploration_share"),
        ({"quotas": {"trending": -1}}, "quotas.trending"),
        ({"random_scores": "maybe"}, "random_scores"),
    ],
)
def test_bad_overrides_are_refused_with_their_key(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        validate_overrides(overrides)
    with pytest.raises(ValidationError, match=message.replace(".", r"\.")):
        spec(arms=[{"name": "a"}, {"name": "b", "overrides": overrides}])


@pytest.mark.parametrize(
    "body",
    [
        {"arms": [{"name": "a"}]},
        {"arms": [{"name": "a"}, {"name": "a"}]},
        {"arms": [{"name": "a", "weight": 0}, {"name": "b"}]},
        {"traffic": 0},
        {"traffic": 1.5},
        {"name": "Has Spaces"},
        {"primary_metric": "revenue"},
        {"colour": "blue"},
    ],
)
def test_invalid_specs(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        spec(**body)


def test_deep_merge() -> None:
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}, "e": 4}) == {
        "a": {"b": 3, "c": 2},
        "d": 1,
        "e": 4,
    }
    assert deep_merge({"a": {"b": 1}}, {"a": 5}) == {"a": 5}


def test_record_round_trips_through_its_document() -> None:
    r = ExperimentRecord(spec=spec(hypothesis="h"), state="running", created_ms=1, buckets=(0, 10))
    back = ExperimentRecord.from_row(r.document(), r.state, 1, None, None)
    assert back == r
