"""The runner enforces the stage contracts: failures, overruns and contract breaches are skipped
and logged; filters fail closed; ranking failures fall back to trending/fresh order."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import pytest

from fyp.config import FeedSettings
from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.runner import (
    Pipeline,
    PipelineResult,
    cap_candidates,
    merge_sources,
    run_pipeline,
)
from fyp.pipeline.stages import FilterResult, StageBase
from fyp.selectors.top_k_score_selector import TopKScoreSelector
from tests.pipeline.support import cand, make_query


class ListSource(StageBase):
    def __init__(self, reason: str, cands: list[Candidate], sleep_s: float = 0.0) -> None:
        self.reason = reason
        self.name = f"{reason}Source"
        self.cands = cands
        self.sleep_s = sleep_s

    async def get_candidates(self, query: Query) -> list[Candidate]:
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        return [Candidate(c.video_id, self.reason, c.source_score, meta=c.meta) for c in self.cands]


class ScoreByIndex(StageBase):
    def score(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        for c in cands:
            c.score = -int(c.video_id[1:])
        return cands


class DroppingScorer(StageBase):
    def score(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        return cands[1:]


class SlowHydrator(StageBase):
    async def hydrate(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        time.sleep(0.03)  # blocking work the event loop cannot interrupt
        for c in cands:
            c.features = {"slow": 1.0}
        return cands


class AwaitingHydrator(StageBase):
    """Writes half its features, then waits on something slow (a remote store)."""

    async def hydrate(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        for c in cands[: len(cands) // 2]:
            c.features = {"half": 1.0}
        await asyncio.sleep(0.5)
        return cands


class DropOdd(StageBase):
    def filter(self, query: Query, cands: list[Candidate]) -> FilterResult:
        keep = [c for c in cands if int(c.video_id[1:]) % 2 == 0]
        return FilterResult(keep, [c for c in cands if c not in keep])


class BrokenFilter(StageBase):
    def filter(self, query: Query, cands: list[Candidate]) -> FilterResult:
        raise RuntimeError("cannot check")


def pipeline(**kw: object) -> Pipeline:
    fields: dict[str, object] = {
        "name": "test",
        "sources": [ListSource("trending", [cand(i) for i in range(10)])],
        "hydrators": [],
        "filters": [],
        "scorers": [ScoreByIndex()],
        "selector": TopKScoreSelector(),
        "fallback_selector": TopKScoreSelector(),
        "side_effects": [],
    }
    fields.update(kw)
    return Pipeline(**fields)  # type: ignore[arg-type]


def run(p: Pipeline, k: int = 5, **query: object) -> object:
    return asyncio.run(run_pipeline(p, make_query(**query), k))


def test_a_plain_run_selects_the_top_k() -> None:
    res = asyncio.run(run_pipeline(pipeline(), make_query(), 3))
    assert [c.video_id for c in res.selected] == ["v0", "v1", "v2"]
    assert res.fallback is None and res.skipped == {}


def test_a_scorer_that_drops_candidates_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = pipeline(scorers=[DroppingScorer()])
    with caplog.at_level(logging.WARNING, logger="fyp.feed"):
        res = asyncio.run(run_pipeline(p, make_query(), 3))
    assert "DroppingScorer" in res.skipped
    assert "contract" in res.skipped["DroppingScorer"]
    assert any("DroppingScorer" in r.getMessage() for r in caplog.records)
    assert len(res.scored) == 10  # nothing was dropped
    assert res.fallback is not None and "trending" in res.fallback
    # Fallback order: the trending source's own order.
    assert [c.video_id for c in res.selected] == ["v0", "v1", "v2"]


def test_a_stage_overrunning_its_budget_is_skipped() -> None:
    fs = FeedSettings(stage_budget_ms=10)
    p = pipeline(hydrators=[SlowHydrator()])
    res = asyncio.run(run_pipeline(p, make_query(settings=fs), 3))
    assert "SlowHydrator" in res.skipped and "overran" in res.skipped["SlowHydrator"]
    assert all(c.features == {} for c in res.scored)
    assert len(res.selected) == 3


def test_a_slow_async_source_is_cut_off_and_the_others_still_serve() -> None:
    fs = FeedSettings(stage_budget_ms=20)
    slow = ListSource("embedding", [cand(50)], sleep_s=0.5)
    p = pipeline(sources=[slow, ListSource("affinity", [cand(i) for i in range(4)])])
    t0 = time.perf_counter()
    res = asyncio.run(run_pipeline(p, make_query(settings=fs), 3))
    assert time.perf_counter() - t0 < 0.3
    assert "embeddingSource" in res.skipped
    assert [c.video_id for c in res.selected] == ["v0", "v1", "v2"]


def test_an_awaiting_hydrator_is_cut_off_at_its_budget_and_rolled_back() -> None:
    """Hydrators run in the request's own task: the budget cancels the stage, not the
    request, and what the stage wrote before it was cut off is undone."""
    fs = FeedSettings(stage_budget_ms=20)
    p = pipeline(hydrators=[AwaitingHydrator()])

    async def request() -> tuple[PipelineResult, bool]:
        res = await run_pipeline(p, make_query(settings=fs), 3)
        task = asyncio.current_task()
        return res, task is not None and task.cancelling() > 0

    t0 = time.perf_counter()
    res, cancelling = asyncio.run(request())
    assert time.perf_counter() - t0 < 0.3 and not cancelling
    assert "overran its budget" in res.skipped["AwaitingHydrator"]
    assert all(c.features == {} for c in res.scored)
    assert len(res.selected) == 3


class Tagger(StageBase):
    writes = ("source_score",)

    async def hydrate(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        for c in cands:
            c.source_score = float(c.video_id[1:])
        return cands


class HalfThenFail(StageBase):
    """Writes the features of half the candidates (the field it declares), then raises."""

    writes = ("features",)

    async def hydrate(self, query: Query, cands: list[Candidate]) -> list[Candidate]:
        for c in cands[: len(cands) // 2]:
            c.features = {"half": 1.0}
        raise RuntimeError("feature store went away")


def test_a_failing_hydrator_is_rolled_back_in_the_fields_it_declares() -> None:
    p = pipeline(hydrators=[Tagger(), HalfThenFail()])
    res = asyncio.run(run_pipeline(p, make_query(), 3))
    assert "HalfThenFail" in res.skipped and "Tagger" not in res.skipped
    assert all(c.features == {} for c in res.scored)
    # what the stage before it wrote stays
    assert all(c.source_score == float(c.video_id[1:]) for c in res.scored)
    assert len(res.selected) == 3


def test_a_failing_fallback_source_is_retried_without_budget() -> None:
    fs = FeedSettings(stage_budget_ms=20)
    slow = ListSource("trending", [cand(i) for i in range(5)], sleep_s=0.05)
    res = asyncio.run(run_pipeline(pipeline(sources=[slow]), make_query(settings=fs), 3))
    assert len(res.selected) == 3
    assert res.fallback is not None and "trendingSource" in res.fallback


def test_filters_drop_and_a_failing_filter_fails_closed() -> None:
    res = asyncio.run(run_pipeline(pipeline(filters=[DropOdd()]), make_query(), 3))
    assert [c.video_id for c in res.selected] == ["v0", "v2", "v4"]
    assert [c.video_id for c in res.removed["DropOdd"]][:2] == ["v1", "v3"]
    res = asyncio.run(run_pipeline(pipeline(filters=[BrokenFilter()]), make_query(), 3))
    assert res.selected == []
    assert res.fallback is not None and "BrokenFilter" in res.fallback


def test_disabled_stages_do_not_run() -> None:
    fs = FeedSettings(disabled_stages=["ScoreByIndex"])
    res = asyncio.run(run_pipeline(pipeline(), make_query(settings=fs), 3))
    assert "ScoreByIndex" not in res.timings_ms
    assert all(math.isnan(c.score) for c in res.scored)


def test_merge_keeps_every_source_and_the_best_ranked_as_reason() -> None:
    a = [Candidate("x", "trending", 1.0), Candidate("y", "trending", 0.5)]
    b = [Candidate("y", "affinity", 3.0)]
    merged = {c.video_id: c for c in merge_sources([("T", a), ("A", b)])}
    assert merged["y"].source == "affinity"
    assert merged["y"].sources == {"trending": 0.5, "affinity": 3.0}
    assert merged["x"].source == "trending"


def test_the_candidate_cap_keeps_each_sources_best_share() -> None:
    big = [Candidate(f"e{i}", "embedding", 1.0 - i / 100) for i in range(100)]
    small = [Candidate(f"f{i}", "fresh", 1.0) for i in range(10)]
    merged = merge_sources([("E", big), ("F", small)])
    kept = cap_candidates(merged, 55)
    ids = [c.video_id for c in kept]
    assert len(kept) == 55
    assert {i for i in ids if i.startswith("e")} == {f"e{i}" for i in range(50)}
    assert {i for i in ids if i.startswith("f")} == {f"f{i}" for i in range(5)}
    assert ids == [c.video_id for c in merged if c.video_id in set(ids)]  # order kept
    assert cap_candidates(merged, 500) == merged


def test_a_capped_merge_keeps_the_same_candidates_and_their_sources() -> None:
    """The merge with a cap gives only the kept candidates their ``sources``; they are the
    ones, in the order, with the scores, that capping the full merge keeps."""

    def found() -> list[tuple[str, list[Candidate]]]:
        emb = [Candidate(f"v{i}", "embedding", 1.0 - i / 100) for i in range(40)]
        trend = [Candidate(f"v{i}", "trending", i / 10) for i in range(30, 0, -3)]
        fresh = [Candidate(f"v{i}", "fresh", 0.5, exploration=True) for i in (5, 41, 42, 5)]
        return [("E", emb), ("T", trend), ("F", fresh)]

    full = cap_candidates(merge_sources(found()), 20)
    capped = merge_sources(found(), 20)
    assert [c.video_id for c in capped] == [c.video_id for c in full]
    assert [(c.source, c.source_score, c.rank_frac) for c in capped] == [
        (c.source, c.source_score, c.rank_frac) for c in full
    ]
    assert [c.sources for c in capped] == [c.sources for c in full]
    v5 = next(c for c in capped if c.video_id == "v5")
    assert v5.sources == {"embedding": 0.95, "fresh": 0.5} and v5.exploration
    assert next(c for c in capped if c.video_id == "v27").sources == {
        "embedding": 0.73,
        "trending": 2.7,
    }


def test_the_pipeline_ranks_at_most_max_candidates() -> None:
    fs = FeedSettings(max_candidates=4)
    res = asyncio.run(run_pipeline(pipeline(), make_query(settings=fs), 3))
    assert res.retrieved == 4 and len(res.scored) <= 4 and len(res.selected) == 3


class SlowFilter(DropOdd):
    def filter(self, query: Query, cands: list[Candidate]) -> FilterResult:
        time.sleep(0.03)
        return super().filter(query, cands)


class SlowRequiredHydrator(SlowHydrator):
    required = True


def test_slow_required_stages_and_filters_are_kept_not_skipped() -> None:
    fs = FeedSettings(stage_budget_ms=10)
    p = pipeline(hydrators=[SlowRequiredHydrator()], filters=[SlowFilter()])
    res = asyncio.run(run_pipeline(p, make_query(settings=fs), 3))
    assert res.skipped == {}
    assert [c.video_id for c in res.selected] == ["v0", "v2", "v4"]  # the filter ran
    assert all(c.features == {"slow": 1.0} for c in res.scored)
