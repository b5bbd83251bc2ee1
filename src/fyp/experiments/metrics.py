"""Per-arm, per-user metrics of an experiment, from the served log and the event log.

Attribution: an event whose ``request_id`` names a response served inside the experiment
belongs to the arm recorded on that response (whatever the event's own timestamp says: apps and
simulators may send client times). Any other event of an exposed user belongs to the user's
assigned arm if it happened while the experiment ran. A user is *exposed* once the feed served
them a response carrying the experiment: only exposed users are units, so users who never opened
the feed do not dilute the arms.

Per-user behaviour (watch time, sessions, return) uses event timestamps; exposure metrics
(coverage, creator Gini, new videos and creators) use what was served.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from fyp.config import ExperimentSettings
from fyp.experiments import stats
from fyp.experiments.assignment import arm_of
from fyp.experiments.spec import ExperimentRecord, MetricName
from fyp.storage.data import DataStore
from fyp.storage.data.base import Activity
from fyp.types import to_ms

DAY_MS = 86_400_000
VIEW_TYPES = frozenset({"impression", "play", "skip"})


@dataclass
class UserStats:
    """One user's activity in one arm (or in the pre-period)."""

    watch_ms: float = 0.0
    plays: int = 0
    completes: int = 0
    views: set[tuple[str, str]] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    times: list[int] = field(default_factory=list)

    def add(self, e: Activity, duration_ms: int | None, complete_at: float) -> None:
        self.times.append(e.ts_ms)
        if e.type in VIEW_TYPES and e.video_id is not None:
            self.views.add((e.request_id or "", e.video_id))
        if e.type == "play":
            self.plays += 1
            watch = e.watch_ms or 0
            self.watch_ms += watch
            if duration_ms and watch >= complete_at * duration_ms:
                self.completes += 1
        else:
            self.counts[e.type] += 1

    def sessions(self, gap_ms: float) -> int:
        if not self.times:
            return 0
        t = sorted(self.times)
        return 1 + sum(1 for a, b in pairwise(t) if b - a > gap_ms)

    def returned(self) -> float:
        """1 when the user was active on a (UTC) day after their first active day."""
        if not self.times:
            return 0.0
        return float(max(self.times) // DAY_MS > min(self.times) // DAY_MS)


@dataclass
class ArmData:
    users: dict[str, UserStats] = field(default_factory=dict)
    pre: dict[str, UserStats] = field(default_factory=dict)
    served: list[tuple[str, int]] = field(default_factory=list)  # (video_id, served_ms)


@dataclass(frozen=True)
class Metric:
    name: MetricName
    kind: str  # "mean" (per-user values, Welch) or "ratio" (sum/sum, delta method)
    num: Callable[[UserStats, float], float]
    den: Callable[[UserStats, float], float] | None = None
    cuped: bool = False
    description: str = ""


def _views(u: UserStats, _: float) -> float:
    return float(len(u.views))


def _count(kind: str) -> Callable[[UserStats, float], float]:
    return lambda u, _: float(u.counts[kind])


METRICS: list[Metric] = [
    Metric(
        "watch_ms_per_user",
        "mean",
        lambda u, _: u.watch_ms,
        cuped=True,
        description="Total watch time per user (ms).",
    ),
    Metric(
        "sessions_per_user",
        "mean",
        lambda u, g: float(u.sessions(g)),
        cuped=True,
        description="Sessions per user (a pause over the session gap starts a new one).",
    ),
    Metric(
        "watch_ms_per_session",
        "ratio",
        lambda u, _: u.watch_ms,
        lambda u, g: float(u.sessions(g)),
        description="Watch time per session (ms).",
    ),
    Metric(
        "videos_per_session",
        "ratio",
        _views,
        lambda u, g: float(u.sessions(g)),
        description="Distinct videos viewed per session.",
    ),
    Metric(
        "completion_rate",
        "ratio",
        lambda u, _: float(u.completes),
        lambda u, _: float(u.plays),
        description="Plays that reached the completion threshold, per play.",
    ),
    Metric("skip_rate", "ratio", _count("skip"), _views, description="Skips per viewed video."),
    Metric("like_rate", "ratio", _count("like"), _views, description="Likes per viewed video."),
    Metric("share_rate", "ratio", _count("share"), _views, description="Shares per viewed video."),
    Metric(
        "comment_rate", "ratio", _count("comment"), _views, description="Comments per viewed video."
    ),
    Metric(
        "follow_rate", "ratio", _count("follow"), _views, description="Follows per viewed video."
    ),
    Metric(
        "report_rate", "ratio", _count("report"), _views, description="Reports per viewed video."
    ),
    Metric(
        "return_rate",
        "mean",
        lambda u, _: u.returned(),
        description="Share of users active again on a later day than their first.",
    ),
]
METRIC_BY_NAME = {m.name: m for m in METRICS}


@dataclass(frozen=True)
class CatalogInfo:
    creator_of: dict[str, str]
    created_ms: dict[str, int]
    duration_ms: dict[str, int | None]
    creator_first_ms: dict[str, int]
    approved: int
    creators: int


def catalog_info(store: DataStore) -> CatalogInfo:
    creator_of: dict[str, str] = {}
    created: dict[str, int] = {}
    duration: dict[str, int | None] = {}
    first: dict[str, int] = {}
    approved_creators: set[str] = set()
    approved = 0
    after: str | None = None
    while True:
        page = store.list_videos(after=after, limit=1000)
        for v in page:
            ms = to_ms(v.created_at)
            creator_of[v.id] = v.creator_id
            created[v.id] = ms
            duration[v.id] = v.duration_ms
            first[v.creator_id] = min(ms, first.get(v.creator_id, ms))
            if v.moderation == "approved":
                approved += 1
                approved_creators.add(v.creator_id)
        if len(page) < 1000:
            break
        after = page[-1].id
    return CatalogInfo(creator_of, created, duration, first, approved, len(approved_creators))


def collect(
    store: DataStore, exp: ExperimentRecord, cfg: ExperimentSettings, now_ms: int
) -> tuple[dict[str, ArmData], CatalogInfo]:
    """Read the served and event logs once: each arm's users, their pre-period, impressions."""
    arms = {a.name: ArmData() for a in exp.spec.arms}
    catalog = catalog_info(store)
    if exp.started_ms is None:
        return arms, catalog
    start, end = exp.started_ms, exp.stopped_ms or now_ms
    request_arm: dict[str, str] = {}
    exposed: dict[str, str] = {}
    for x in store.experiment_exposures(exp.name, start, end):
        if x.arm not in arms:
            continue
        request_arm[x.request_id] = x.arm
        exposed.setdefault(x.user_id, x.arm)
        arms[x.arm].served.append((x.video_id, x.served_ms))
    pre_start = start - int(cfg.pre_period_days * DAY_MS)
    pre: dict[str, UserStats] = defaultdict(UserStats)
    complete_at = cfg.complete_threshold
    for e in store.users_activity(exposed):
        duration = catalog.duration_ms.get(e.video_id) if e.video_id else None
        arm_name = request_arm.get(e.request_id) if e.request_id else None
        if arm_name is None:
            if start <= e.ts_ms <= end:
                arm_name = arm_of(exp, e.user_id)
            elif pre_start <= e.ts_ms < start:
                pre[e.user_id].add(e, duration, complete_at)
                continue
        if arm_name is None or arm_name not in arms:
            continue
        users = arms[arm_name].users
        stats_ = users.get(e.user_id)
        if stats_ is None:
            stats_ = users[e.user_id] = UserStats()
        stats_.add(e, duration, complete_at)
    for data in arms.values():
        data.pre = {u: pre[u] for u in data.users if u in pre}
    return arms, catalog


def population(data: ArmData, catalog: CatalogInfo, cfg: ExperimentSettings) -> dict[str, Any]:
    """What the arm's impressions did to the catalog: reach, concentration, freshness."""
    n = len(data.served)
    if n == 0:
        return {
            "impressions": 0,
            "coverage": 0.0,
            "creator_gini": None,
            "new_video_share": None,
            "new_creator_share": None,
        }
    new_ms = cfg.new_days * DAY_MS
    per_creator: Counter[str] = Counter()
    new_videos = new_creators = 0
    for vid, ms in data.served:
        creator = catalog.creator_of.get(vid)
        if creator is not None:
            per_creator[creator] += 1
            if ms - catalog.creator_first_ms[creator] <= new_ms:
                new_creators += 1
        created = catalog.created_ms.get(vid)
        if created is not None and ms - created <= new_ms:
            new_videos += 1
    # Creators never shown count as zero exposure: that is what concentration is about.
    zeros = max(catalog.creators - len(per_creator), 0)
    exposure = np.concatenate([np.fromiter(per_creator.values(), float), np.zeros(zeros)])
    distinct = len({vid for vid, _ in data.served})
    return {
        "impressions": n,
        "coverage": distinct / catalog.approved if catalog.approved else None,
        "creator_gini": stats.gini(exposure),
        "new_video_share": new_videos / n,
        "new_creator_share": new_creators / n,
    }


def compare(
    metric: Metric,
    control: ArmData,
    treatment: ArmData,
    cfg: ExperimentSettings,
) -> stats.Comparison:
    gap = cfg.session_gap_minutes * 60_000
    cu, tu = list(control.users.values()), list(treatment.users.values())
    kw: dict[str, Any] = {"min_users": cfg.min_users_per_arm, "alpha": cfg.alpha}
    if metric.den is None:
        a = np.array([metric.num(u, gap) for u in cu], dtype=float)
        b = np.array([metric.num(u, gap) for u in tu], dtype=float)
        if metric.cuped and (control.pre or treatment.pre):
            empty = UserStats()
            xa = [metric.num(control.pre.get(u, empty), gap) for u in control.users]
            xb = [metric.num(treatment.pre.get(u, empty), gap) for u in treatment.users]
            return stats.cuped(a, b, xa, xb, **kw)
        return stats.welch(a, b, **kw)
    den = metric.den
    return stats.delta_ratio(
        [metric.num(u, gap) for u in cu],
        [den(u, gap) for u in cu],
        [metric.num(u, gap) for u in tu],
        [den(u, gap) for u in tu],
        **kw,
    )


def arm_value(metric: Metric, data: ArmData, cfg: ExperimentSettings) -> float | None:
    gap = cfg.session_gap_minutes * 60_000
    users = list(data.users.values())
    if not users:
        return None
    num = sum(metric.num(u, gap) for u in users)
    if metric.den is None:
        return num / len(users)
    den = sum(metric.den(u, gap) for u in users)
    return num / den if den else None


def results(
    store: DataStore, exp: ExperimentRecord, cfg: ExperimentSettings, now_ms: int
) -> dict[str, Any]:
    """Everything ``GET /v1/experiments/{name}/results`` returns (see the route for its shape)."""
    arms, catalog = collect(store, exp, cfg, now_ms)
    spec = exp.spec
    weights = {a.name: a.weight for a in spec.arms}
    srm = stats.srm_check(
        {name: len(d.users) for name, d in arms.items()}, weights, cfg.srm_threshold
    )
    control = arms[spec.control]
    metrics_out = []
    ordered = [spec.primary_metric, *spec.guardrails]
    ordered += [m.name for m in METRICS if m.name not in ordered]
    for name in ordered:
        metric = METRIC_BY_NAME[name]
        comparisons = []
        for arm in spec.arms[1:]:
            comp = compare(metric, control, arms[arm.name], cfg)
            comparisons.append({"arm": arm.name, **comp.to_dict()})
        metrics_out.append(
            {
                "name": name,
                "kind": metric.kind,
                "description": metric.description,
                "primary": name == spec.primary_metric,
                "guardrail": name in spec.guardrails,
                "arms": {a: _json(arm_value(metric, d, cfg)) for a, d in arms.items()},
                "comparisons": comparisons,
            }
        )
    users = {name: len(d.users) for name, d in arms.items()}
    enough = min(users.values()) >= cfg.min_users_per_arm
    return {
        "experiment": spec.name,
        "state": exp.state,
        "control": spec.control,
        "window": {"start_ms": exp.started_ms, "end_ms": exp.stopped_ms or now_ms},
        "computed_ms": now_ms,
        "status": "ok" if enough else "not_enough_data",
        "min_users_per_arm": cfg.min_users_per_arm,
        "arms": [
            {
                "name": a.name,
                "weight": a.weight,
                "users": users[a.name],
                "users_with_pre_period": len(arms[a.name].pre),
            }
            for a in spec.arms
        ],
        "srm": srm.to_dict(),
        "metrics": metrics_out,
        "population": {name: population(d, catalog, cfg) for name, d in arms.items()},
    }


def _json(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else v
