"""The training job: event log -> signals -> models -> a new version, activated.

``fyp train`` runs it once; with ``training.schedule_seconds > 0`` the server runs it in a
background thread (:class:`ScheduledTrainer`) whenever new events have arrived since the last
version. Several servers on one store would each train: run ``fyp train`` from one place (cron)
instead when scaling out. Training shares the server's CPU and, in its pure-Python steps, its
GIL: on a busy server prefer the separate process.
"""

from __future__ import annotations

import logging
import resource
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from fyp.config import Settings
from fyp.leases import HeldLease, Lease, LeaseBusy
from fyp.models import VideoBrief
from fyp.storage.data import DataStore, ServedRow
from fyp.training import content, embeddings, neighbours, ranker
from fyp.training.artefacts import ModelRegistry, Models, build_index, index_kind, localize
from fyp.training.columns import LogPage, read_catalog, read_log
from fyp.training.signals import Interactions, SignalBuilder

log = logging.getLogger("fyp.training")


class Progress(Protocol):
    """Reports the trainer's steps (the CLI draws progress bars; the server logs)."""

    def start(self, step: str, total: int | None = None) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...


class QuietProgress:
    def start(self, step: str, total: int | None = None) -> None:
        log.debug("training step %s", step)

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class TrainResult:
    version: str
    path: Path
    manifest: dict[str, Any]
    activated: bool


class NothingToTrain(RuntimeError):
    """The log holds no usable positive interaction yet."""


def _peak_mb() -> float:
    # ru_maxrss is KiB on Linux: the process's peak so far, training included.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class _Timer:
    progress: Progress
    timings: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)  # the process's peak after each step

    @contextmanager
    def step(self, name: str, total: int | None = None) -> Iterator[None]:
        self.progress.start(name, total)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 3)
            self.peaks[name] = _peak_mb()
            self.progress.finish()


def new_version() -> str:
    """Sortable by creation time, unique across machines."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}-{secrets.token_hex(3)}"


def _served_rows(store: DataStore, page: int) -> list[ServedRow]:
    rows: list[ServedRow] = []
    seq = 0
    while True:
        chunk = store.read_served(seq, page)
        rows += [r for _, r in chunk]
        if len(chunk) < page:
            return rows
        seq = chunk[-1][0]


class Trainer:
    """Builds one model version from the store.

    Args:
        settings: ``training`` section (weights, hyper-parameters, where models go).
        store: any DataStore; read only.
        registry: where the version is published (default: one over ``settings``).
        progress: step reporting.
    """

    def __init__(
        self,
        settings: Settings,
        store: DataStore,
        registry: ModelRegistry | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.cfg = settings.training
        self.store = store
        self.registry = registry or ModelRegistry(settings)
        self.progress = progress or QuietProgress()

    def run(self, activate: bool = True, evaluate: bool | None = None) -> TrainResult:
        """Train, publish and (by default) activate a version.

        Args:
            activate: point ACTIVE at the new version (and prune old ones).
            evaluate: record the temporal leave-one-out (default ``training.evaluate``).
        """
        # One trainer at a time across every machine sharing the store: a second one gets
        # LeaseBusy at once, and one whose lease lapsed mid-run (it stalled, another took over)
        # stops before publishing, so no half-finished or competing version is ever activated.
        lease = Lease(self.store, "trainer", self.settings.server.trainer_lease_s)
        with lease.hold() as held, threadpool_limits(self.cfg.threads):
            return self._run(activate, self.cfg.evaluate if evaluate is None else evaluate, held)

    def _run(self, activate: bool, evaluate: bool, held: HeldLease) -> TrainResult:
        cfg = self.cfg
        t_start = time.perf_counter()
        timer = _Timer(self.progress)
        with timer.step("catalog"):
            videos = read_catalog(self.store)
        with timer.step("served log"):
            served = _served_rows(self.store, cfg.page_size)
        served_pairs = {(r.user_id, r.video_id) for r in served}
        served_users = {r.user_id for r in served}
        outcomes = ranker.OutcomeIndex()
        builder = SignalBuilder(
            cfg.weights,
            lambda ids: self.store.video_briefs(ids),
            [v.id for v in videos],
            known={v.id: VideoBrief(v.creator_id, v.duration_ms) for v in videos},
        )
        total = self.store.count_events()
        with timer.step("events", total):
            for page in read_log(self.store, cfg.page_size):
                builder.add_log(page)
                self.progress.advance(len(page))
                if served_users:
                    _add_outcomes(outcomes, page, served_users, served_pairs)
        with timer.step("signals"):
            data = builder.build()
            served_briefs = builder.briefs_for({r.video_id for r in served})
            del builder  # its columns: a few hundred MB at ten million events
        if data.weights.nnz == 0:
            raise NothingToTrain("the event log holds no positive interaction to learn from")
        n_items = len(data.video_ids)
        by_id = {v.id: v for v in videos}
        del videos

        with timer.step("content vectors"):
            vectors = catalog_content(self.settings, data.video_ids, by_id)
            k_content = max(cfg.content_neighbours, cfg.embedding.content_neighbours)
            if vectors is None:
                content_idx = np.full((n_items, k_content), -1, np.int64)
                content_val = np.zeros((n_items, k_content), np.float32)
            else:
                content_idx, content_val = content.nearest(vectors, k_content)
        with timer.step("embeddings", cfg.embedding.iterations):
            model, _ = embeddings.fit(
                data.weights,
                cfg.embedding,
                None if vectors is None else content_idx,
                on_iteration=lambda _: self.progress.advance(1),
            )
        with timer.step("ann index"):
            kind = index_kind(n_items, cfg.index_kind, cfg.exact_index_below)
            index = build_index(
                model.item_factors,
                kind,
                cfg.hnsw_m,
                cfg.hnsw_ef_search,
                cfg.ivf_nprobe,
                cfg.embedding.seed,
            )
            index_rows = localize(index)
        with timer.step("item neighbours"):
            item_nb = neighbours.co_engagement(
                data.weights, cfg.item_neighbours, data.sequences, cfg.item_history_cap
            )
        with timer.step("next-item transitions"):
            next_nb = neighbours.transitions(
                data.sequences, n_items, cfg.sequence_neighbours, cfg.sequence_window
            )
        with timer.step("ranker"):
            rdata = ranker.join(
                served,
                outcomes,
                served_briefs,
                cfg.weights.complete_threshold,
                int(cfg.outcome_window_s * 1000),
            )
            rank_model = ranker.train(
                rdata,
                cfg.ranker_min_positives,
                cfg.ranker_rounds,
                cfg.ranker_leaves,
                cfg.embedding.seed,
                cfg.ranker_learning_rate,
            )
            if rank_model is not None:
                rank_model.build_native = cfg.native_ranker
        metrics: dict[str, Any] = {}
        if evaluate:
            with timer.step("offline evaluation"):
                metrics = offline_metrics(
                    data, None if vectors is None else content_idx, self.settings
                )

        k_c = cfg.content_neighbours
        manifest: dict[str, Any] = {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_window": {
                "first_seq": data.first_seq,
                "last_seq": data.last_seq,
                "first_ts_ms": data.first_ts_ms,
                "last_ts_ms": data.last_ts_ms,
            },
            "counts": {
                "events": int(sum(data.counts.values())),
                "events_by_type": data.counts,
                "users": len(data.user_ids),
                "videos": n_items,
                "positives": int(data.weights.nnz),
                "negatives": int(data.negatives.nnz),
                "served_rows": len(served),
            },
            "index": {
                "kind": kind,
                "ef_search": cfg.hnsw_ef_search,
                "nprobe": cfg.ivf_nprobe,
                "order": "rows" if index_rows is None else "breadth-first",
            },
            "ranker": _ranker_summary(rank_model, rdata),
            "metrics": metrics,
            "settings": cfg.model_dump(mode="json"),
        }
        models = Models(
            new_version(),
            data.video_ids,
            model,
            index,
            {
                "item": item_nb,
                "content": (content_idx[:, :k_c].astype(np.int32), content_val[:, :k_c]),
                "next": next_nb,
            },
            rank_model,
            manifest,
            index_rows,
        )
        with timer.step("publish"):
            manifest["timings_s"] = {**timer.timings, "total": 0.0}
            manifest["timings_s"]["total"] = round(time.perf_counter() - t_start, 3)
            manifest["peak_memory_mb"] = _peak_mb()
            # where the peak grew: the process's peak as each step ended
            manifest["peak_memory_mb_by_step"] = dict(timer.peaks)
            held.check()
            path = self.registry.publish(models)
            if activate:
                self.registry.activate(models.version)
                self.registry.prune(cfg.keep_versions)
        return TrainResult(models.version, path, manifest, activate)


class ContentFields(Protocol):
    """What content vectors are made of (a ``Video`` or a :class:`CatalogVideo` has it)."""

    @property
    def creator_id(self) -> str: ...
    @property
    def caption(self) -> str: ...
    @property
    def hashtags(self) -> list[str]: ...
    @property
    def sound_id(self) -> str | None: ...


def _add_outcomes(
    outcomes: ranker.OutcomeIndex,
    page: LogPage,
    served_users: set[str],
    served_pairs: set[tuple[str, str]],
) -> None:
    """The page's events that may be outcomes of served items: the served users' events on
    served videos, and their events naming no video (creator follows)."""
    for i, user in enumerate(page.user_id):
        if user not in served_users:
            continue
        video = page.video_id[i]
        if video is None or (user, video) in served_pairs:
            outcomes.add_row(
                user,
                video,
                page.type[i],
                page.ts_ms[i],
                page.request_id[i],
                page.watch_ms[i],
                page.creator_id[i],
            )


def catalog_content(
    settings: Settings, video_ids: list[str], by_id: Mapping[str, ContentFields]
) -> content.F32 | None:
    """Content vectors for ``video_ids``: dense features where the data folder has them, and
    hashed text of hashtags, caption, creator and sound; None when the catalog carries no
    content signal at all (then no content table and no content pseudo-users)."""
    dense = content.tiktok_features(settings.data_dir, video_ids)
    docs: list[list[str]] = []
    for vid in video_ids:
        v = by_id.get(vid)
        docs.append(
            []
            if v is None
            else content.video_tokens(v.hashtags, v.caption, v.creator_id, v.sound_id)
        )
    text = content.text_content(docs, seed=settings.training.embedding.seed)
    try:
        return content.combine(dense, text)
    except ValueError:
        return None


def _ranker_summary(model: ranker.Ranker | None, data: ranker.RankerData) -> dict[str, Any]:
    positives = {a: int(y.sum()) for a, y in data.labels.items()}
    if model is None:
        why = (
            "no served rows with features"
            if data.rows == 0 or not data.feature_names
            else ("no action had enough positive outcomes")
        )
        return {"trained": False, "why": why, "rows": data.rows, "positives": positives}
    return {
        "trained": True,
        "rows": data.rows,
        "features": model.feature_names,
        "actions": model.actions,
        "skipped": model.skipped,
        "positives": positives,
        "metrics": model.metrics,
    }


def offline_metrics(
    data: Interactions, content_idx: Any, settings: Settings, min_users: int = 20
) -> dict[str, Any]:
    """Temporal leave-one-out on the log's positives (each user's latest positive is test):
    the engine's embedding retrieval beside popularity, and the next-item signal alone."""
    from fyp.evaluation.baselines import Popularity
    from fyp.evaluation.data import temporal_leave_one_out
    from fyp.evaluation.harness import evaluate
    from fyp.evaluation.recipes import FypEmbedding, NextItem

    users, items, times = [], [], []
    for u, (seq, ts) in enumerate(zip(data.sequences, data.times, strict=True)):
        users += [u] * len(seq)
        items += seq.tolist()
        times += ts.tolist()
    if not users:
        return {"skipped": "no ordered positives"}
    weights = np.asarray(data.weights[np.asarray(users), np.asarray(items)]).ravel()
    split = temporal_leave_one_out("log", users, items, times, weights.astype(np.float64))
    split = _pad_items(split, len(data.video_ids))
    _sample_users(split, settings.training.eval_max_users, settings.training.embedding.seed)
    evaluated = sum(1 for t in split.test if t.size)
    if evaluated < min_users:
        return {"skipped": f"{evaluated} users with 3+ positives (< {min_users})"}
    train_seqs = [s[:-2] if s.size >= 3 else s for s in data.sequences]
    out: dict[str, Any] = {"protocol": "temporal leave-one-out", "k": 20, "users": evaluated}
    for model in (
        FypEmbedding(settings.training.embedding, content_idx),
        Popularity(),
        NextItem(train_seqs, settings.training.sequence_window),
    ):
        r = evaluate(model, split, "test", k=20)
        out[model.name] = {
            "recall": round(r.metrics.recall, 4),
            "ndcg": round(r.metrics.ndcg, 4),
            "hr": round(r.metrics.hit_rate, 4),
            "coverage": round(r.metrics.coverage, 4),
            "fit_s": round(r.fit_s, 3),
        }
    return out


def _sample_users(split: Any, max_users: int, seed: int) -> None:
    """Evaluate at most ``max_users`` users (a seeded sample); everyone still trains."""
    held = [u for u, t in enumerate(split.test) if t.size]
    if len(held) <= max_users:
        return
    keep = set(np.random.default_rng(seed).choice(held, max_users, replace=False).tolist())
    empty = np.zeros(0, np.int64)
    for u in held:
        if u not in keep:
            split.test[u] = empty
            split.valid[u] = empty


def _pad_items(split: Any, n_items: int) -> Any:
    import scipy.sparse as sp

    if split.train.shape[1] < n_items:
        t = split.train
        split.train = sp.csr_matrix((t.data, t.indices, t.indptr), shape=(t.shape[0], n_items))
    return split


class ScheduledTrainer:
    """Retrains in a background thread every ``schedule_seconds`` when the log has grown.

    The thread never raises: failures are logged and retried on the next tick.
    """

    def __init__(
        self,
        settings: Settings,
        store: DataStore,
        on_version: Callable[[TrainResult], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.interval = settings.training.schedule_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_count = -1
        self._on_version = on_version
        self.runs = 0

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="fyp-trainer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def tick(self) -> TrainResult | None:
        count = self.store.count_events()
        if count == self._last_count:
            return None
        try:
            result = Trainer(self.settings, self.store).run()
        except NothingToTrain:
            self._last_count = count
            return None
        except LeaseBusy as e:
            log.info("not training: %s", e)  # another machine trains; it publishes for all
            return None
        self._last_count = count
        self.runs += 1
        log.info("trained model version %s (%s events)", result.version, count)
        if self._on_version is not None:
            self._on_version(result)
        return result

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("scheduled training failed; retrying in %.0fs", self.interval)
