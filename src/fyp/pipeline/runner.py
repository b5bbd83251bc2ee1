"""Runs a feed pipeline and enforces the stage contracts.

Sources run concurrently and are merged by video (every source that found a video is kept in
``sources``; the one that ranked it best is its reason). Then hydrators, filters and scorers run
in order, and the selector picks the page. A stage that raises, overruns its time budget
(``FeedSettings.stage_budget_ms``) or breaks its contract is skipped and logged; if ranking
cannot be trusted the page falls back to trending/fresh order and says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import operator
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query
from fyp.pipeline.stages import Filter, Hydrator, Scorer, Selector, SideEffect, Source
from fyp.storage.cache import OnlineUnavailable

log = logging.getLogger("fyp.feed")
T = TypeVar("T")
# Every field a hydrator or scorer may set: the ones it declares (``writes``; all of these when
# it declares none) are saved before it runs and put back if it is skipped (failed, overran,
# broke its contract), so a skipped stage leaves no trace. Stages replace dict fields instead
# of mutating them, so saving the references is enough.
_FIELDS = tuple(f.name for f in dataclasses.fields(Candidate) if f.name != "video_id")


_Saved = tuple[tuple[str, ...], list[tuple[object, ...]]]  # (fields, each candidate's values)


def _save(stage: object, cands: list[Candidate]) -> _Saved:
    fields = tuple(getattr(stage, "writes", None) or _FIELDS)
    # Annotated: typeshed types a many-name attrgetter as returning tuples, and compiled
    # (fyp.ops.compiled) the call would be checked as one.
    get: Callable[[Candidate], Any] = operator.attrgetter(*fields)
    if len(fields) == 1:
        return fields, [(get(c),) for c in cands]
    return fields, list(map(get, cands))


def _restore(cands: list[Candidate], saved: _Saved) -> None:
    fields, values = saved
    for c, row in zip(cands, values, strict=True):
        for name, value in zip(fields, row, strict=True):
            setattr(c, name, value)


class StageOverrun(Exception):
    pass


@dataclass
class Pipeline:
    """A feed declared as data (see ``fyp.pipeline.feeds``)."""

    name: str
    sources: list[Source]
    hydrators: list[Hydrator]
    filters: list[Filter]
    scorers: list[Scorer]
    selector: Selector
    fallback_selector: Selector
    side_effects: list[SideEffect]
    fallback_sources: tuple[str, ...] = ("trending", "fresh", "backfill")


@dataclass
class PipelineResult:
    selected: list[Candidate]
    scored: list[Candidate]
    removed: dict[str, list[Candidate]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    fallback: str | None = None
    exhausted: bool = False
    retrieved: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


class _Run:
    def __init__(self, query: Query) -> None:
        self.query = query
        self.budget_ms = query.settings.stage_budget_ms
        self.skipped: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    def skip(self, name: str, why: str) -> None:
        self.skipped[name] = why
        log.warning("feed stage %s skipped for request %s: %s", name, self.query.request_id, why)

    def _check_time(
        self, name: str, t0: float, t1: float | None = None, required: bool = False
    ) -> None:
        ms = ((t1 if t1 is not None else time.perf_counter()) - t0) * 1000
        self.timings[name] = ms
        if ms > self.budget_ms:
            if required:
                log.warning(
                    "feed stage %s overran its budget (%.1f ms > %g ms) but is required: kept",
                    name,
                    ms,
                    self.budget_ms,
                )
                return
            raise StageOverrun(f"took {ms:.1f} ms, budget {self.budget_ms:g} ms")

    def _failed(self, name: str, e: Exception) -> None:
        if isinstance(e, OnlineUnavailable):  # an outage, not a bug: no traceback per request
            self.skip(name, f"failed: {type(e).__name__}: {e}")
            return
        log.exception("feed stage %s failed", name)
        self.skip(name, f"failed: {type(e).__name__}: {e}")

    async def timed_async(
        self, name: str, work: Callable[[], Awaitable[T]], required: bool = False
    ) -> T | None:
        # Timed from when the stage starts running: concurrent stages wait for each other's
        # turns, and that wait is not this stage's time. asyncio.timeout cancels the stage at
        # its first await past the budget without a task of its own (wait_for made one per
        # stage); a stage that never awaits is checked when it returns.
        t0 = time.perf_counter()
        try:
            if required:
                result = await work()
            else:
                async with asyncio.timeout(self.budget_ms / 1000):
                    result = await work()
            self._check_time(name, t0, time.perf_counter(), required)
            return result
        except TimeoutError:
            self.skip(name, f"overran its budget of {self.budget_ms:g} ms")
        except StageOverrun as overrun:  # a name of its own: compiled, one name has one type
            self.skip(name, f"overran: {overrun}")
        except Exception as e:
            self._failed(name, e)
        return None

    def timed(self, name: str, work: Callable[[], T], required: bool = False) -> T | None:
        t0 = time.perf_counter()
        try:
            result = work()
            self._check_time(name, t0, None, required)
            return result
        except StageOverrun as overrun:  # a name of its own: compiled, one name has one type
            self.skip(name, f"overran: {overrun}")
        except Exception as e:
            self._failed(name, e)
        return None


def _same(before: list[Candidate], after: object) -> bool:
    return (
        isinstance(after, list)
        and len(after) == len(before)
        and all(a is b or a.video_id == b.video_id for a, b in zip(before, after, strict=True))
    )


def merge_sources(
    found: list[tuple[str, list[Candidate]]], cap: int | None = None
) -> list[Candidate]:
    """One candidate per video; its reason is the source that ranked it best (ties: first),
    its ``sources`` every source's score for it. With ``cap``, only the ``cap`` best placed
    are kept (``cap_candidates``), and only they get their ``sources`` mapping: the sources
    find about 870 videos a request at a million, of which 300 go on."""
    merged: dict[str, Candidate] = {}
    # (source, score) in the order found, for the videos that more than one source found
    also: dict[str, list[tuple[str, float]]] = {}
    for _, cands in found:
        n = max(1, len(cands))
        for i, c in enumerate(cands):
            frac = i / n
            have = merged.get(c.video_id)
            if have is None:
                c.rank_frac = frac
                merged[c.video_id] = c
                continue
            seen = also.get(c.video_id)
            if seen is None:  # ``have`` still holds what its first source found
                seen = also[c.video_id] = [(have.source, have.source_score)]
            seen.append((c.source, c.source_score))
            have.exploration = have.exploration or c.exploration
            if frac < have.rank_frac:
                have.source, have.source_score, have.rank_frac = c.source, c.source_score, frac
    out = list(merged.values())
    if cap is not None:
        out = cap_candidates(out, cap)
    for c in out:
        seen = also.get(c.video_id)
        if seen is None:
            c.sources = {c.source: c.source_score}
        else:
            sources: dict[str, float] = {}
            for name, score in seen:
                sources.setdefault(name, score)
            c.sources = sources
    return out


def cap_candidates(cands: list[Candidate], n: int) -> list[Candidate]:
    """The ``n`` best-placed candidates: each source's top share, in merge order otherwise."""
    if len(cands) <= n:
        return cands
    keep = {id(c) for c in sorted(cands, key=lambda c: c.rank_frac)[:n]}
    return [c for c in cands if id(c) in keep]


async def run_pipeline(p: Pipeline, query: Query, k: int) -> PipelineResult:
    """Run ``p`` for ``query`` and return the selected page of at most ``k`` candidates."""
    run = _Run(query)

    # -- sources --
    async def one(src: Source, q: Query = query) -> tuple[str, list[Candidate]]:
        got = await run.timed_async(src.name, lambda: src.get_candidates(q))
        return src.name, got or []

    active = [s for s in p.sources if s.enabled(query)]
    found = list(await asyncio.gather(*(one(s) for s in active)))
    fallback: str | None = None
    lost = [src for src in active if src.name in run.skipped and _reason(src) in p.fallback_sources]
    if lost:
        # The sources the fallback ranks by failed too: ask them again without a budget, so
        # a hiccup (a GC pause, a slow Redis) degrades the page instead of emptying it.
        names = ", ".join(src.name for src in lost)
        fallback = f"{names} {run.skipped[lost[0].name]}; retried without a budget"
        for src in lost:
            try:
                found.append((src.name, await src.get_candidates(query)))
            except Exception as e:
                log.warning("feed fallback source %s failed again: %s", src.name, e)
    cands = merge_sources(found, query.settings.max_candidates)
    if query.forced and all(c.video_id != query.forced for c in cands):
        cands.append(Candidate(query.forced, source="explain", sources={"explain": 0.0}))
    retrieved = len(cands)

    cands = await _hydrate(run, p, query, cands)

    # -- filters (fail closed) --
    removed: dict[str, list[Candidate]] = {}
    cands, broken = _filter(run, p.filters, query, cands, removed)
    if broken:
        fallback = f"{broken} failed; nothing could be checked, so nothing is served"
    exhausted = False
    if len(cands) < k and not broken and any(f.relaxable for f in p.filters):
        # The eligible catalog ran out: top the page up with videos served before (the ones a
        # relaxable filter such as never-repeat removed), marked as repeats.
        exhausted = True
        have = {c.video_id for c in cands}
        again = [c for f in p.filters if f.relaxable for c in removed.get(f.name, [])]
        if len(again) < k - len(cands) and query.served:
            # Sources skip served videos, so ask them again as if nothing had been served.
            everything = dataclasses.replace(query, served=set())
            found_again = await asyncio.gather(*(one(s, everything) for s in active))
            known = have | {c.video_id for c in again}
            extra = [
                c
                for c in merge_sources(list(found_again))
                if c.video_id in query.served and c.video_id not in known
            ]
            again.extend(await _hydrate(run, p, query, extra))
        strict = [f for f in p.filters if not f.relaxable]
        back, _ = _filter(run, strict, query, again, {})
        for c in back:
            c.repeat = True
        cands.extend(back)

    # -- scorers --
    ranking_failed: str | None = None
    for s in p.scorers:
        if not s.enabled(query):
            continue
        before, saved = cands, _save(s, cands)
        given = list(before)
        out_s = run.timed(s.name, lambda s=s, given=given: s.score(query, given))  # type: ignore[misc]
        if out_s is None:
            _restore(before, saved)
            ranking_failed = ranking_failed or s.name
            continue
        if not _same(before, out_s):
            _restore(before, saved)
            run.skip(s.name, "broke its contract (dropped or reordered candidates)")
            ranking_failed = ranking_failed or s.name
            continue
        cands = out_s
    if ranking_failed is not None:
        fallback = f"{ranking_failed} {run.skipped[ranking_failed]}; ranked by trending and fresh"
        _fallback_scores(p, cands)

    # -- selection --
    selector = p.fallback_selector if ranking_failed else p.selector
    selected = run.timed(selector.name, lambda: selector.select(query, cands, k))
    if selected is not None and not _valid_selection(cands, selected, k):
        run.skip(selector.name, "broke its contract (not a subset of at most k)")
        selected = None
    if selected is None:
        if ranking_failed is None:
            fallback = f"{selector.name} {run.skipped[selector.name]}; ranked by trending and fresh"
            _fallback_scores(p, cands)
        selected = p.fallback_selector.select(query, cands, k)

    return PipelineResult(
        selected=selected,
        scored=cands,
        removed=removed,
        skipped=run.skipped,
        fallback=fallback,
        exhausted=exhausted,
        retrieved=retrieved,
        timings_ms=run.timings,
    )


async def _hydrate(run: _Run, p: Pipeline, query: Query, cands: list[Candidate]) -> list[Candidate]:
    for h in p.hydrators:
        if not h.enabled(query):
            continue
        before, saved = cands, _save(h, cands)
        given = list(before)
        out = await run.timed_async(
            h.name,
            lambda h=h, given=given: h.hydrate(query, given),  # type: ignore[misc]
            required=getattr(h, "required", False),
        )
        if out is None:
            _restore(before, saved)
            continue
        if not _same(before, out):
            _restore(before, saved)
            run.skip(h.name, "broke its contract (changed the candidates)")
            continue
        cands = out
    return cands


def _filter(
    run: _Run,
    filters: list[Filter],
    query: Query,
    cands: list[Candidate],
    removed: dict[str, list[Candidate]],
) -> tuple[list[Candidate], str | None]:
    for f in filters:
        if not f.enabled(query):
            continue
        # Filters are required: skipping one for being slow would serve unchecked candidates.
        res = run.timed(
            f.name,
            lambda f=f, cands=cands: f.filter(query, cands),  # type: ignore[misc]
            required=True,
        )
        if res is None or len(res.kept) + len(res.removed) != len(cands):
            if res is not None:
                run.skip(f.name, "broke its contract (kept + removed != input)")
            return [], f.name
        removed.setdefault(f.name, []).extend(res.removed)
        cands = res.kept
    return cands, None


def _reason(stage: object) -> str:
    return str(getattr(stage, "reason", ""))


def _fallback_scores(p: Pipeline, cands: list[Candidate]) -> None:
    for c in cands:
        best = max(
            (
                1.0 - c.rank_frac if s == c.source else 0.5
                for s in c.sources
                if s in p.fallback_sources
            ),
            default=0.0,
        )
        c.score = best - (1.0 if c.repeat else 0.0)
        c.parts = {"fallback": c.score}


def _valid_selection(cands: list[Candidate], selected: object, k: int) -> bool:
    if not isinstance(selected, list) or len(selected) > k:
        return False
    ids = {id(c) for c in cands}
    return all(id(c) in ids for c in selected) and len({id(c) for c in selected}) == len(selected)


def run_side_effects(p: Pipeline, query: Query, served: list[Candidate]) -> None:
    """Run the side effects; each failure is logged and the others still run."""
    for se in p.side_effects:
        if not se.enabled(query):
            continue
        try:
            se.run(query, served)
        except Exception:
            log.exception("feed side effect %s failed for request %s", se.name, query.request_id)


def close_side_effects(p: Pipeline) -> None:
    """Let side effects that buffer (the batched served log) finish their writes."""
    for se in p.side_effects:
        close = getattr(se, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("closing feed side effect %s failed", se.name)
