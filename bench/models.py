"""What the online path pays for the trained models, and what each ANN index keeps.

* the per-call cost of ``Models.user_vector`` (fold-in), ``search``, ``neighbours`` and
  ``next_items`` on the active model version under ``settings.training.models_dir`` (train one
  first: ``fyp import tiktok && fyp train``), ``--calls`` calls each, p50/p99;
* the ANN indexes ``fyp.training.artefacts.build_index`` makes, over ``--vectors`` synthetic
  low-rank 128-d vectors with queries shaped like folded-in users (sums of 20 video vectors):
  build time, share of the exact top ``--k`` kept, p50 query time;
* ``Ranker.predict`` over 1,000 candidates for the 7 actions, trained on synthetic rows with
  the trainer's defaults;
* with ``--train-events N``, ``Trainer.run`` (defaults, evaluation included) on a temporary
  SQLite store holding N synthetic events (users with three favourite topics out of 100).

Everything runs on one thread (BLAS, faiss, LightGBM), as a serving worker does.

    .venv/bin/python bench/models.py [--calls 500] [--vectors 100000] [--k 500] [--skip-hnsw]
        [--train-events 1000000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from fyp.config import Settings
from fyp.training import ModelRegistry, ranker
from fyp.training.artefacts import build_index


def timed(f: Callable[[], Any], calls: int) -> str:
    ts = []
    for _ in range(calls):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return f"p50 {np.median(ts) * 1e3:.3f} ms  p99 {np.percentile(ts, 99) * 1e3:.3f} ms"


def online(calls: int) -> None:
    models = ModelRegistry(Settings()).current()
    if models is None:
        print("no active model version: run `fyp train` first (skipping the online figures)")
        return
    rng = np.random.default_rng(0)
    picks = rng.choice(len(models.video_ids), min(50, len(models.video_ids)), replace=False)
    recent = [(models.video_ids[i], 1.0) for i in picks]
    u = models.user_vector(recent)
    assert u is not None
    print(f"model {models.version}: {len(models.video_ids):,} videos, {u.size} factors")
    print(f"  user_vector(50 videos)   {timed(lambda: models.user_vector(recent), calls)}")
    print(f"  user_vector(10 videos)   {timed(lambda: models.user_vector(recent[:10]), calls)}")
    print(f"  search(k=500)            {timed(lambda: models.search(u, 500), calls)}")
    full = models.video_ids[int(np.argmax((models.tables["item"][0] >= 0).sum(axis=1)))]
    n_full = len(models.neighbours(full, 50))
    print(f"  neighbours(k={n_full})         {timed(lambda: models.neighbours(full, 50), calls)}")
    ids = [v for v, _ in recent[:10]]
    print(f"  next_items(10 recent)    {timed(lambda: models.next_items(ids, 50), calls)}")


def ann(n: int, k: int, hnsw: bool) -> None:
    rng = np.random.default_rng(0)
    f, r = 128, 32
    v = (rng.standard_normal((n, r)) @ rng.standard_normal((r, f)) / np.sqrt(r)).astype(np.float32)
    v += 0.1 * rng.standard_normal((n, f)).astype(np.float32)
    q = np.stack([v[rng.choice(n, 20)].sum(0) for _ in range(50)]).astype(np.float32)
    exact = build_index(v, "flat")
    truth = [exact.search(x[None], k)[1][0] for x in q]
    print(f"ANN over {n:,} x {f}, top {k}, 50 queries")
    print(f"  flat                     {timed(lambda: exact.search(q[:1], k), 50)}")
    kinds: list[tuple[str, str, list[int]]] = [("ivf", "nprobe", [16, 32, 64])]
    if hnsw:
        kinds[:0] = [("hnsw", "efSearch", [256, 512]), ("hnsw_sq8", "efSearch", [256, 512])]
    for kind, knob, values in kinds:
        t = time.perf_counter()
        index = build_index(v, kind)
        print(f"  {kind} built in {time.perf_counter() - t:.1f} s")
        for value in values:
            if kind.startswith("hnsw"):
                index.hnsw.efSearch = value
            else:
                index.nprobe = value
            kept, ts = [], []
            for x, best in zip(q, truth, strict=True):
                t = time.perf_counter()
                _, got = index.search(x[None], k)
                ts.append(time.perf_counter() - t)
                kept.append(len(set(got[0]) & set(best)) / k)
            print(
                f"  {kind} {knob} {value:<4}  kept {np.mean(kept):.3f} of the exact top {k}, "
                f"p50 {np.median(ts) * 1e3:.2f} ms"
            )


def ranker_cost() -> None:
    rng = np.random.default_rng(0)
    n, f = 20_000, 20
    x = rng.standard_normal((n, f))
    logit = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - 2
    labels = {
        a: (rng.uniform(size=n) < 1 / (1 + np.exp(-(logit + rng.normal(0, 1, n))))).astype(np.int8)
        for a in ranker.ACTIONS
    }
    data = ranker.RankerData([f"f{i}" for i in range(f)], x, labels, np.arange(n))
    model = ranker.train(data)
    assert model is not None
    trees = {a: b.num_trees() for a, b in model.boosters.items()}
    cands = rng.standard_normal((1000, f))
    print(f"ranker: 7 actions, {f} features, trees {trees}")
    print(f"  predict(1,000 rows)      {timed(lambda: model.predict(cands), 30)}")


def train_scale(n_events: int) -> None:
    """``Trainer.run`` on a fresh SQLite store holding a synthetic log of ``n_events``."""
    import random
    import tempfile
    from datetime import UTC, datetime
    from pathlib import Path

    from fyp.models import User, VideoIn
    from fyp.storage.data import EventRow, open_data_store
    from fyp.training import Trainer

    users, videos, topics = n_events // 50, max(5000, n_events // 20), 100
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            var_dir=Path(tmp), database_url=f"sqlite:///{tmp}/fyp.db", _env_file=None
        )  # type: ignore[call-arg]
        store = open_data_store(settings.resolved_database_url())
        store.migrate()
        rng = random.Random(0)
        people = [User(id=f"c{t}") for t in range(topics)] + [
            User(id=f"u{u}") for u in range(users)
        ]
        store.upsert_users(people)
        topic = [rng.randrange(topics) for _ in range(videos)]
        store.upsert_videos(
            [
                VideoIn(id=f"v{v}", creator_id=f"c{t}", hashtags=[f"t{t}"], duration_ms=15_000)
                for v, t in enumerate(topic)
            ],
            "approved",
        )
        by_topic: dict[int, list[int]] = {}
        for v, t in enumerate(topic):
            by_topic.setdefault(t, []).append(v)
        t0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
        kinds = ["impression", "play", "play", "like", "skip"]
        rows: list[EventRow] = []
        n = 0
        while n < n_events:
            u = rng.randrange(users)
            taste = [rng.randrange(topics) for _ in range(3)]
            for _ in range(50):
                fav = rng.random() < 0.8
                v = rng.choice(by_topic[rng.choice(taste)]) if fav else rng.randrange(videos)
                kind = rng.choice(kinds)
                n += 1
                rows.append(
                    {
                        "event_id": f"e{n}",
                        "user_id": f"u{u}",
                        "video_id": f"v{v}",
                        "creator_id": None,
                        "sound_id": None,
                        "hashtag": None,
                        "type": kind,
                        "ts_ms": t0 + n,
                        "received_ms": t0 + n,
                        "watch_ms": rng.randrange(15_000) if kind == "play" else None,
                        "request_id": None,
                        "extra": None,
                    }
                )
                if len(rows) == 5000:
                    store.append_events(rows)
                    rows = []
        store.append_events(rows)
        print(f"training on {store.count_events():,} synthetic events, {videos:,} videos")
        result = Trainer(settings, store).run()
        m = result.manifest
        steps = ", ".join(f"{k} {v:.1f}" for k, v in m["timings_s"].items())
        print(f"  seconds: {steps}")
        print(f"  peak memory {m['peak_memory_mb']:.0f} MB, counts {m['counts']}")
        store.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--vectors", type=int, default=100_000)
    p.add_argument("--k", type=int, default=500)
    p.add_argument("--skip-hnsw", action="store_true", help="HNSW takes ~37 s per 100k to build")
    p.add_argument(
        "--train-events", type=int, default=0, help="Also time fyp's trainer on N synthetic events."
    )
    args = p.parse_args()
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        online(args.calls)
        ranker_cost()
        ann(args.vectors, args.k, not args.skip_hnsw)
    if args.train_events:
        train_scale(args.train_events)


if __name__ == "__main__":
    main()
