"""``Candidate``'s hand-written constructor agrees with its dataclass fields (compiled by mypyc,
the generated one would run as Python: ``fyp.ops.compiled``)."""

from __future__ import annotations

import dataclasses
import math

from fyp.pipeline.candidate import NO_VALUES, Candidate
from fyp.pipeline.catalog_index import VideoMeta


def _same(a: object, b: object) -> bool:
    return a is b or a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))  # type: ignore[arg-type]


def test_the_constructor_defaults_are_the_fields_defaults() -> None:
    c = Candidate("v1", "trending")
    assert (c.video_id, c.source) == ("v1", "trending")
    for f in dataclasses.fields(Candidate):
        if f.default is not dataclasses.MISSING:
            assert _same(getattr(c, f.name), f.default), f.name
    assert c.sources is NO_VALUES and c.features is NO_VALUES


def test_every_field_is_set_by_its_name_and_by_its_position() -> None:
    meta = VideoMeta(
        id="v1",
        creator_id="c1",
        hashtags=("dance",),
        sound_id=None,
        duration_ms=None,
        language=None,
        region=None,
        created_ms=0,
        moderation="approved",
        allowed_regions=None,
    )
    values = {
        "video_id": "v1",
        "source": "fresh",
        "source_score": 0.25,
        "sources": {"fresh": 0.25},
        "rank_frac": 0.5,
        "exploration": True,
        "meta": meta,
        "features": {"x": 1.0},
        "predictions": {"like": 0.1},
        "parts": {"like": 0.2},
        "score": 1.5,
        "repeat": True,
    }
    names = [f.name for f in dataclasses.fields(Candidate)]
    assert sorted(names) == sorted(values)
    by_name = Candidate(**values)  # type: ignore[arg-type]
    by_position = Candidate(*(values[n] for n in names))  # type: ignore[arg-type]
    for c in (by_name, by_position):
        assert {n: getattr(c, n) for n in names} == values
    assert by_name == by_position
