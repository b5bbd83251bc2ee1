"""One feed request end to end: the user, their experiment arms, online state and served set
→ the pipeline → the response body, the served marks and the side effects to run after."""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fyp.config import FeedSettings, Settings
from fyp.events.online import OnlineUpdater
from fyp.experiments.assignment import NoExperiments
from fyp.filters.moderation_filter import servable
from fyp.models import User
from fyp.ops import metrics
from fyp.pipeline.candidate import Candidate
from fyp.pipeline.clients import FeedClients
from fyp.pipeline.query import Assigner, Query, age_of, effective_settings
from fyp.pipeline.runner import (
    Pipeline,
    PipelineResult,
    close_side_effects,
    run_pipeline,
    run_side_effects,
)
from fyp.storage.cache import OnlineUnavailable, UserState
from fyp.types import now_ms

log = logging.getLogger("fyp.feed")
DAY_MS = 86_400_000
TOP_SIGNALS = 4
_CURSOR = re.compile(r"^o(\d{1,9})$")


class UnknownUser(LookupError):
    pass


class BadCursor(ValueError):
    pass


@dataclass
class FeedResponse:
    body: dict[str, Any]
    after: Callable[[], None]  # the side effects, to run once the response is sent
    # whether ``after`` may wait on I/O (run it on a worker thread) or returns at once
    after_blocks: bool = True


class FeedService:
    """Serves feeds and explanations for one process.

    Args:
        settings: the whole Settings (feed knobs, serving, ingest.auto_create_users).
        clients: store, online state, catalog index and models.
        pipeline: the feed (``build_for_you``).
        updater: rebuilds a cold user's online state from the log.
        assigner: experiment assignment (no experiments by default).
    """

    def __init__(
        self,
        settings: Settings,
        clients: FeedClients,
        pipeline: Pipeline,
        updater: OnlineUpdater,
        assigner: Assigner | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.pipeline = pipeline
        self.updater = updater
        self.assigner: Assigner = assigner or NoExperiments()
        self.clock = clock

    def close(self) -> None:
        """Flush buffered side effects (call before closing the store)."""
        close_side_effects(self.pipeline)

    # -- query ---------------------------------------------------------------------------------

    def _user(self, user_id: str) -> User:
        store = self.clients.store
        user = store.get_user(user_id)
        if user is None and self.settings.ingest.auto_create_users:
            store.create_missing_users([user_id])
            user = store.get_user(user_id)
        if user is None:
            raise UnknownUser(user_id)
        return user

    def _settings_for(
        self, user_id: str, assigner: Assigner | None
    ) -> tuple[FeedSettings, dict[str, str]]:
        a = (assigner or self.assigner).assign(user_id)
        try:
            return effective_settings(self.settings.feed, a.overrides), dict(a.arms)
        except ValueError:
            log.exception("invalid experiment overrides for %s; serving the defaults", user_id)
            return self.settings.feed, dict(a.arms)

    def build_query(
        self,
        user_id: str,
        count: int | None,
        cursor: str | None,
        forced: str | None = None,
        assigner: Assigner | None = None,
    ) -> Query:
        offset = 0
        if cursor:
            m = _CURSOR.match(cursor)
            if m is None:
                raise BadCursor(cursor)
            offset = int(m.group(1))
        user = self._user(user_id)
        fs, arms = self._settings_for(user_id, assigner)
        n = max(1, min(count or fs.default_count, fs.max_count))
        now = self.clock()
        c = self.clients
        c.catalog.snapshot()  # a stale index reloads here, outside the stages' budgets
        degraded: str | None = None
        try:
            state = c.online.user_state(user_id, now)
            if not state.warm and self.updater.warm_user(user_id, now):
                state = c.online.user_state(user_id, now)
        except OnlineUnavailable as e:
            # Serve without live signals rather than fail: the durable store still answers.
            state, degraded = UserState(), str(e)
        served: set[str] = set()
        if fs.never_repeat_days > 0:
            since = now - int(fs.never_repeat_days * DAY_MS)
            found: set[str] | None = None
            if degraded is None:
                try:
                    found = c.online.served_since(user_id, since)
                except OnlineUnavailable as e:
                    degraded = str(e)
            if found is None:
                # Cold (a restart of the in-process state, or expired) or unreachable: the
                # durable served log knows.
                found = c.store.served_video_ids(user_id, since)
                if degraded is None:
                    try:
                        c.online.prime_served(user_id, dict.fromkeys(found, now))
                    except OnlineUnavailable as e:
                        degraded = str(e)
            served = found
        models = c.models.current()
        vector = None
        if models is not None and state.recent:
            try:
                vector = models.user_vector(state.recent)
            except Exception:
                log.exception("user vector failed for %s", user_id)
        serving = self.settings.serving
        notes: dict[str, Any] = {"degraded": degraded} if degraded else {}
        return Query(
            request_id=f"r_{uuid.uuid4().hex}",
            user=user,
            count=n,
            offset=offset,
            now_ms=now,
            settings=fs,
            arms=arms,
            state=state,
            served=served,
            following=set(c.store.following(user_id)),
            blocked=set(c.store.blocked(user_id)),
            age=age_of(user, datetime.fromtimestamp(now / 1000, UTC).year),
            adult_age=serving.adult_age,
            region_strict=serving.region_strict,
            language_strict=serving.language_strict,
            forced=forced,
            models=models,
            user_vector=vector,
            notes=notes,
        )

    # -- feed ----------------------------------------------------------------------------------

    async def feed(
        self,
        user_id: str,
        count: int | None,
        cursor: str | None,
        assigner: Assigner | None = None,
    ) -> FeedResponse:
        """One page; ``assigner`` overrides the service's own (the app passes its current one)."""
        t0 = time.perf_counter()
        query = self.build_query(user_id, count, cursor, assigner=assigner)
        result = await run_pipeline(self.pipeline, query, query.count)
        _observe(query, result)
        items, served = self._items(query, result)
        if served and query.settings.never_repeat_days > 0:
            try:
                self.clients.online.mark_served(
                    query.user.id, [c.video_id for c in served], query.now_ms
                )
            except OnlineUnavailable as e:
                # The served log (a side effect) still records them durably.
                query.notes.setdefault("degraded", str(e))
        fallback = result.fallback
        if "degraded" in query.notes:  # the root cause of any stage failure too
            fallback = (
                f"online state unavailable ({query.notes['degraded']}); served without live "
                "signals, from the catalog and the durable served log"
            )
        body = {
            "request_id": query.request_id,
            "user_id": query.user.id,
            "items": items,
            "cursor": f"o{query.offset + len(items)}",
            "exhausted": result.exhausted,
            "fallback": fallback,
            "arms": query.arms,
        }
        log.debug(
            "feed %s for %s: %d items from %d candidates in %.1f ms",
            query.request_id,
            user_id,
            len(items),
            result.retrieved,
            (time.perf_counter() - t0) * 1000,
        )

        def after() -> None:
            run_side_effects(self.pipeline, query, served)

        blocks = any(
            getattr(se, "blocks", True) for se in self.pipeline.side_effects if se.enabled(query)
        )
        return FeedResponse(body, after, after_blocks=blocks)

    def _items(
        self, query: Query, result: PipelineResult
    ) -> tuple[list[dict[str, Any]], list[Candidate]]:
        items: list[dict[str, Any]] = []
        served: list[Candidate] = []
        # Re-read the records: a moderation change since the index was built wins.
        docs = self.clients.store.video_documents([c.video_id for c in result.selected])
        for c in result.selected:
            doc = docs.get(c.video_id)
            if doc is None or not servable(doc["moderation"], doc["allowed_regions"], query):
                continue
            items.append({"position": len(items), "video": doc, "reasons": _reasons(c)})
            served.append(c)
        return items, served

    # -- explain -------------------------------------------------------------------------------

    async def explain(
        self, user_id: str, video_id: str, assigner: Assigner | None = None
    ) -> dict[str, Any]:
        """The score parts of one video for one user, as the feed would compute them now."""
        query = self.build_query(user_id, None, None, forced=video_id, assigner=assigner)
        result = await run_pipeline(self.pipeline, query, query.count)
        removed_by = next(
            (
                name
                for name, cs in result.removed.items()
                if any(c.video_id == video_id for c in cs)
            ),
            None,
        )
        ranked = sorted(
            result.scored, key=lambda c: -c.score if math.isfinite(c.score) else math.inf
        )
        found = next((c for c in ranked if c.video_id == video_id), None)
        if found is None and removed_by is not None:
            found = next(c for c in result.removed[removed_by] if c.video_id == video_id)
        page = [c.video_id for c in result.selected]
        out: dict[str, Any] = {
            "user_id": user_id,
            "video_id": video_id,
            "eligible": removed_by is None and found is not None,
            "removed_by": removed_by,
            "in_page": video_id in page,
            "page_position": page.index(video_id) if video_id in page else None,
            "rank": ranked.index(found) if found is not None and found in ranked else None,
            "candidates": len(result.scored),
            "fallback": result.fallback,
            "skipped": result.skipped,
            "arms": query.arms,
            "models": query.models.version if query.models is not None else None,
        }
        if found is not None:
            out.update(
                source=found.source,
                sources=dict(found.sources),
                score=found.score if math.isfinite(found.score) else None,
                parts=dict(found.parts),
                predictions=dict(found.predictions),
                features={k: v for k, v in found.features.items() if math.isfinite(v)},
            )
        return out


def _failure_kind(why: str) -> str:
    if "overran" in why:
        return "timeout"
    if "contract" in why:
        return "contract"
    return "error"


def _observe(query: Query, result: PipelineResult) -> None:
    """Stage timings, drops, failures, fallbacks and the model version, as metrics."""
    for name, ms in result.timings_ms.items():
        why = result.skipped.get(name)
        dropped = len(result.removed.get(name, ()))
        metrics.observe_stage(name, ms / 1000, dropped, _failure_kind(why) if why else None)
    for name, why in result.skipped.items():
        if name not in result.timings_ms:  # raised or was cut off: no timing recorded
            budget_s = query.settings.stage_budget_ms / 1000
            metrics.observe_stage(name, budget_s, 0, _failure_kind(why))
    if result.fallback is not None:
        metrics.observe_fallback("stage_failed")
    if "degraded" in query.notes:
        metrics.observe_fallback("online_state")
    metrics.set_model_version(query.models.version if query.models is not None else None)


def _reasons(c: Candidate) -> dict[str, Any]:
    signals = sorted(
        ((name, value) for name, value in c.parts.items() if value),
        key=lambda nv: -abs(nv[1]),
    )[:TOP_SIGNALS]
    return {
        "source": c.source,
        "sources": sorted(c.sources, key=lambda s: s != c.source),
        "exploration": c.exploration,
        "score": round(c.score, 6) if math.isfinite(c.score) else None,
        "signals": [
            {
                "name": f"p_{name}" if name in c.predictions else name,
                "value": round(c.predictions.get(name, value), 6),
            }
            for name, value in signals
        ],
        "repeat": c.repeat,
    }
